// Package nsm holds what the converters of network security monitors'
// logs (ingest/zeek, ingest/suricata) share: the names and values Vigil's
// own sensor gives the same facts (Modbus function names and classes, TLS
// versions and cipher codes, MQTT return codes, TCP flag lists), so that
// events made from another monitor's logs are the same events the sensor
// emits and every later stage uses them unchanged.
//
// This package must stay free of I/O and of any other stage.
package nsm
