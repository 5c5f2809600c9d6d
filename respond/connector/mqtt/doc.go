// Package mqtt is the broker quarantine connector: it quarantines and
// releases MQTT clients on a Mosquitto broker through its
// dynamic-security plugin ($CONTROL/dynamic-security/v1).
//
// Two modes: "disable" (disableClient / enableClient: the client is
// disconnected and cannot log in again) and "role" (the client gets a
// quarantine role, at a priority above its others, whose ACL denies
// everything but publishing to its own status topic; addClientRole /
// removeClientRole). Mosquitto kicks the client in both cases, so the
// change takes effect at once.
//
// The connector owns one MQTT connection with the dynsec admin account.
// It does not decide what to quarantine: the respond engine does.
package mqtt
