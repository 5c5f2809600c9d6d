// Package amqp decodes AMQP 0-9-1 (RabbitMQ and others) from a reassembled
// TCP connection into vigil.Events of kind "amqp" with fields under amqp.*
// (see docs/fields.md): connection open (virtual host, user, SASL
// mechanism, client product), authentication failures (connection.close
// with 403 ACCESS_REFUSED), declarations, bindings, consumers and publishes
// (exchange, routing key, body size).
// AMQP 1.0 is decoded too: SASL init (mechanism, user) and outcome
// (authentication failures), open (container id, hostname), attach (link,
// role, address), detach/end/close with their error condition.
// Malformed traffic yields anomaly events.
//
// Passwords in SASL PLAIN responses are never kept. The parser reads the
// sensor's buffers in place and does no I/O.
package amqp
