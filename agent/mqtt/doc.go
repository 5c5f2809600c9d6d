// Package mqtt is the agent's minimal MQTT 3.1.1 client, over TLS (mutual,
// with the agent's certificate) or plain TCP: CONNECT with a clean
// session, PUBLISH at QoS 0 or 1 (waiting for PUBACK), SUBSCRIBE, the
// messages of its subscriptions on a channel, and keep-alive pings. It is
// what `transport: mqtt` uses.
//
// It uses the standard library only, and leaves out what the agent does
// not need: QoS 2, retained-message handling, wills, persistent sessions,
// MQTT 5.
package mqtt
