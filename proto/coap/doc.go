// Package coap decodes CoAP (RFC 7252, with Observe RFC 7641 and
// Block-wise transfers RFC 7959) into vigil.Events of kind "coap", with
// fields under coap.* (see docs/fields.md): type, code, message id,
// token, URI path and query, content format, observe and block options.
// Parser decodes UDP datagrams; Stream decodes CoAP over TCP (RFC 8323:
// length-framed messages without type or message id, and the signaling
// messages CSM, Ping, Pong, Release and Abort). Probe and ProbeTCP
// recognise CoAP on other ports. Malformed messages yield anomaly events.
//
// The decoders read their input in place and do no I/O; Parser keeps no
// state, a Stream only where each direction of its connection stands.
package coap
