// Package zeek converts Zeek logs into Vigil events: conn, dns, http, ssl,
// ssh, mqtt_connect, mqtt_publish, mqtt_subscribe, modbus, dnp3, notice
// and weird, in Zeek's TSV format (with its #separator, #set_separator,
// #empty_field, #unset_field, #path, #fields and #types headers) or as
// JSON lines (epoch or ISO 8601 times).
//
// The events are the ones Vigil's own sensor emits for the same traffic
// (docs/fields.md): flow records of kind flow, protocol events of kinds
// dns, http, tls, mqtt and modbus with the sensor's field names and
// values, anomalies of Zeek weirds, so learned behaviour, the Sigma rules
// and the entity graph use them unchanged. Their source is "sensor"
// (ingest/nsm says why) and observer.product "zeek"; flow.id is Zeek's
// connection uid, which ties a connection's events together as the
// sensor's flow ids do.
//
// This package reads what it is given and returns events: it does not
// open files, publish or talk to any other stage.
package zeek
