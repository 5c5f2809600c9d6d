// Package suricata converts Suricata's EVE JSON log into Vigil events:
// flow records (kind flow), protocol records (dns, http, tls, mqtt,
// modbus) into the events Vigil's own sensor emits for the same traffic,
// with the sensor's field names and values (docs/fields.md), anomalies
// into protocol anomalies, and alerts into events of kind alert that the
// ids detector (detect/ids) raises as Vigil alerts carrying the
// signature. Events have source "sensor" and observer.product "suricata"
// (ingest/nsm says why); flow.id is Suricata's flow_id in 16 hex digits,
// the sensor's format, so a flow's events share it.
//
// This package reads what it is given and returns events: it does not
// open files, publish or talk to any other stage.
package suricata
