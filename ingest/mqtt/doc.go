// Package mqtt is the server side of the agents' MQTT transport. A Source
// connects to a broker, subscribes at QoS 1 to vigil/+/report and
// vigil/+/result, turns each report into vigil.Events (wire decoding, JSON
// or XML by sniffing, gzip when compressed, then ingest/agent.Convert) and
// hands them to a Publisher (the bus). It sends signed commands to
// vigil/<device>/cmd with SendCommand.
//
// The device id of a message is the one in its topic, never the payload's:
// the broker's ACLs bind a device's credentials to its own topics.
//
// Delivery is at least once: acknowledgements are manual and a report is
// acknowledged only after the Publisher took its events (retrying while the
// bus pushes back), and the session is persistent (clean session off), so
// what was not acknowledged is delivered again after a restart. Event ids
// are derived from the report, so a redelivered report is stored once.
// A payload that cannot be read is counted, logged with its topic and
// acknowledged (it would never get better); it never stops the Source.
//
// The package must not read the store or talk to detection: its only way
// out is the Publisher and the result callback.
package mqtt
