// Package baseline is the learned-behaviour detector: it learns, per
// device and per cohort of alike devices, what a device normally does —
// its peers in both directions, ports and services, protocols, and per
// protocol the verbs and objects (Modbus function codes, unit ids, register
// ranges, masters and writers; MQTT client ids, topics and QoS levels;
// AMQP exchanges, routing keys and queues; DDS topics; CoAP methods and
// paths; DNS names; from agents processes, listeners, users, outbound
// destinations and installed software) — its rates per event-time window
// (messages, connections, bytes, failed authentications, writes, idle
// connections, malformed traffic), with hour-of-day and weekend profiles
// once a metric has the history (season.go), and the health and custom
// metrics agents sample (host.go), and the range of each numeric parameter
// of a device's twin or shadow (twin.go). It raises an alert for what is new to
// the device and uncommon in its cohort, for a rate or a health sample
// above the robust bound of its history (median and absolute deviation),
// for a window whose rates are together off while each is under its
// bound (multivar.go), and for a twin value set outside its learned range,
// each alert explaining the feature, the observed
// value, the expected range and the baseline it was judged against.
//
// A cohort is the device class, refined by vendor and model when known
// (from inventory events). A device new to a cohort that has finished
// learning is judged against the cohort from its first event; its own
// baseline takes over once it has learned for the learning period.
// Alerts are held back while neither has finished learning.
//
// The detector also enriches events (detect.Enricher) with baseline.*
// fields — baseline.new_peer, baseline.new_writer, baseline.new_port, ... —
// so Sigma rules that run after it can say "from a writer never seen".
//
// State is per bus partition, bounded per device (see docs/anomaly.md for
// the figures), and can be snapshotted and restored on another detector.
//
// The package must not do I/O, read the wall clock (windows and learning
// run on event time), or keep an event past the call that received it.
// Since all events of a device are in one partition but the peers it talks
// to may be in others, what a partition learns about a receiver (the
// writers of a PLC, the cohort's share of a peer) is learned from the
// events of that partition: a pair (writer, PLC) is always judged in one
// partition, a cohort's shares are per partition.
package baseline
