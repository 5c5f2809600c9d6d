// Package coap decodes CoAP (RFC 7252, with Observe RFC 7641 and
// Block-wise transfers RFC 7959) UDP datagrams into vigil.Events of kind
// "coap", with fields under coap.* (see docs/fields.md): type, code,
// message id, token, URI path and query, content format, observe and
// block options. Malformed datagrams yield anomaly events.
//
// The parser reads datagrams in place, keeps no state and does no I/O.
package coap
