// Package syslog receives syslog over UDP, TCP (RFC 6587 octet counting
// and newline framing) and TLS (RFC 5425), parses RFC 5424 and RFC 3164
// messages and publishes them as Vigil events of kind syslog, through a
// bounded queue: when the bus pushes back the queue fills and TCP and TLS
// senders are no longer read (TCP flow control pushes back on them), so
// nothing they send is lost; UDP, which has no flow control, drops and
// counts what does not fit. Each source address may be limited to a rate
// of messages.
//
// This package owns the listeners and the parsing; it must not talk to
// detection or storage (it hands events to a Publisher).
package syslog
