// Package devmap ties the events of network monitors and log sources to
// the devices of the inventory. Zeek and Suricata records, syslog
// messages and access logs name hosts by address or host name, not by
// Vigil's device id; an Index built from the inventory's devices (their
// interfaces' addresses, their names and ids) gives an event without a
// device id the id of the device it is about, before it is published, so
// that the bus partitions it with the device's other events and the
// baseline, the entity graph, the store and incidents attach it to the
// device.
//
// An event is mapped when it has no device id and is not of kind cloud
// (a cloud record's address is the console user's, not a device's): by
// its host.hostname or host.name (the host that wrote the log), else its
// source address, else its destination address. The field
// device.mapped_from says which (host.hostname, host.name, source.ip,
// destination.ip). An address that two devices claim goes to the one seen
// last.
//
// This package does not read the store: the caller gives the devices
// (Options.Devices) and the next publisher.
package devmap
