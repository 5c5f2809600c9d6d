// Package twin reads the device twin and shadow updates of IoT platforms:
// it tells whether an MQTT topic is a shadow or twin update topic (AWS IoT
// Device Shadow, Azure IoT Hub device twin) and flattens the numeric
// parameters of an update document into dotted paths
// (desired.heater.setpoint = 80), bounded in count, depth and input size.
//
// The sensor's MQTT decoder (proto/mqtt), and the Zeek and Suricata
// readers, make twin events of the publishes on these topics (SetFields),
// and ingest/thingsboard of the
// attribute updates of ThingsBoard's audit log; the learned baseline
// (detect/baseline) learns each device's parameter ranges from them.
//
// The package only parses what it is given: no I/O, no state.
package twin
