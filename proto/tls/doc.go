// Package tls decodes the clear-text start of a TLS connection: the
// ClientHello (server name, offered versions, ALPN, cipher suites, JA3 and
// JA4 fingerprints) and the ServerHello (chosen version and cipher, JA3S),
// as vigil.Events of kind "tls" with fields under tls.* (see
// docs/fields.md). Everything after the hellos is encrypted and skipped.
// Malformed handshakes yield anomaly events.
//
// The parser reads the sensor's buffers in place and does no I/O.
package tls
