// Package dns decodes DNS and mDNS messages (RFC 1035; over UDP, and over
// TCP with its two-byte length prefix) into vigil.Events of kind "dns",
// one per query or response, with fields under dns.* (see
// docs/fields.md). Malformed messages yield anomaly events.
//
// The parser reads the sensor's buffers in place and does no I/O.
package dns
