// Package proto holds what every protocol decoder of the sensor shares: the
// Context a decoder is called with, the Emitter it hands events to, and the
// StreamParser and DatagramParser interfaces that the sensor drives. Each
// protocol lives in its own sub-package (mqtt, modbus, ...), which turns
// bytes into vigil.Events and nothing else.
//
// Decoders must not do I/O, keep global state, or retain the byte slices
// they are given after a call returns: the sensor reuses its buffers. They
// must never panic on any input; malformed input yields an anomaly event.
package proto
