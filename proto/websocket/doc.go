// Package websocket unwraps WebSocket frames (RFC 6455) of an upgraded
// HTTP connection and hands the message bytes to an inner stream parser,
// so that MQTT over WebSocket is decoded like MQTT over TCP. Control
// frames are skipped. Client frames are masked, so payloads are unmasked
// into a per-direction buffer (this is the one decoder that copies).
//
// It does no I/O and keeps no state beyond its connection.
package websocket
