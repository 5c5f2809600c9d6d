// Package agent turns a decoded agent report (wire.Report) into
// vigil.Events. It owns the mapping from the agent protocol to event
// fields; it does no I/O, decoding or publishing (ingest/httpin does).
//
// Convert validates the report with wire.Report.Filter first, so an
// invalid part never becomes an event, and then emits, all with Source
// "agent", the report's device id and the given received time:
//
//   - one "health" event (when the report has a health section or a
//     connection summary), at the report's time, with float64 fields
//     host.cpu.pct, host.memory.pct, host.disk.pct, host.temperature
//     (°C, when reported), host.uptime (seconds, when reported),
//     metric.<name> for each custom metric, and from network.connections
//     host.network.connections, host.network.distinct_remotes,
//     host.network.ingress.bytes and host.network.egress.bytes;
//     plus agent.version (string) when known.
//   - one "inventory" event (when the report has an inventory section or
//     network interfaces), at the report's time, with string fields
//     os.name, os.version, os.kernel, device.firmware.version,
//     device.vendor, device.model and device.class, each only when
//     reported; "software": the components as a JSON array of
//     vigil.Component (name, version, type, source, purl, cpe) and
//     software.count (float64); "interfaces": the interfaces as a JSON
//     array of vigil.NetIdentity (interface, mac, addresses), with host.ip
//     and host.mac ([]string) for matching. A field that is absent was not
//     reported: the inventory stage must keep what it knew rather than
//     erase it. DeviceFromInventory rebuilds a vigil.Device from it.
//   - one "network" event per listening socket, at the report's time:
//     category "network", action "listen", outcome "success",
//     Network.Transport (tcp, udp or sctp; tcp6 is read as tcp),
//     Network.DstIP (the bound address, absent for "*") and
//     Network.DstPort (the listening port; Field("destination.port")),
//     and fields process.name and process.pid when known.
//   - one event per security event, at its own time, with its kind,
//     category, action, outcome and severity, and its fields as strings
//     under their ECS names; network.transport, source.ip, source.port,
//     destination.ip and destination.port are lifted into Event.Network.
//
// Event ids are derived from the device id, the report's time and
// sequence and the part of the report (ingest.DeriveID), so a retried
// report yields the same ids and the store keeps one copy. A security
// event's own id is kept in the field agent.event_id and hashed with the
// device id into Event.ID, so that two devices using the same ids cannot
// shadow each other's events.
package agent
