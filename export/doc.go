// Package export sends Vigil's alerts to the SIEMs teams already run.
//
// An alert is encoded as one JSON document by an Encoder (ECS for Elastic
// and most SIEMs, or OCSF "Detection Finding", class 2004) and delivered
// by a Sink: Splunk's HTTP Event Collector, Elasticsearch's bulk API,
// syslog over TCP or TLS (RFC 5424, octet counting) or a NATS subject.
//
// Reliability does not rest on a queue of this package: an Exporter is the
// handler of a durable consumer group of the bus's alerts stream (one
// group per sink, "export-<name>"), and the bus acknowledges a batch only
// when the handler returns nil, i.e. when the SIEM accepted every alert of
// it. While the SIEM is down the alerts wait in the stream, across
// restarts, bounded by the stream's limits (bus max bytes and age). Within
// one delivery the Exporter retries only the alerts the SIEM refused for
// a transient reason, with backoff; an alert the SIEM refuses for good
// (a 4xx per-item error) is dropped, counted and logged, so that one bad
// document cannot stop the export. Delivery is at least once: a restart
// or a failed batch may resend alerts; Elasticsearch documents carry the
// alert id as _id, so a resend does not duplicate them there.
//
// Incidents are exported too (RunIncidents): every version of every
// incident, read from an IncidentSource (the store, through cmd/) and
// encoded as ECS (event.dataset vigil.incident) or an OCSF Incident
// Finding (class 2005), through a sink of their own; the place moves only
// when the SIEM took them. Per sink, vigil_export_refused_total counts the
// documents a SIEM refused and vigil_export_failures_total the sends that
// failed as a whole.
//
// The package does not decide what is exported nor read the store: it
// encodes and sends what the bus delivers and what the source lists.
package export
