// Package mqtt decodes MQTT 3.1, 3.1.1 and 5 from a reassembled TCP
// connection into vigil.Events of kind "mqtt", one per control packet, with
// fields under mqtt.* (see docs/fields.md), plus protocol anomaly events
// (action "anomaly", field anomaly.event) for malformed, truncated, invalid
// or out-of-state traffic.
//
// The parser reads the sensor's buffers in place and copies only the
// strings an event keeps. It never keeps a password or MQTT 5
// authentication data: CONNECT events say whether a password was present.
// It does no I/O and holds no state beyond its connection.
package mqtt
