// Package bulk decodes normalized events posted in bulk (POST
// /api/v1/events): newline-delimited JSON, one vigil.Event per line, or a
// JSON array of them. It owns that format and its per-item errors; it does
// no I/O and no publishing.
//
// Each item is an object in the JSON shape of vigil.Event: id, time,
// device_id, source, kind, category, action, outcome, severity, network
// {transport, src_ip, src_port, dst_ip, dst_port} and fields {...}. Keys
// that are not part of that shape are read as ECS-style fields and put into
// Fields, so {"time": ..., "kind": "auth", "user.name": "root"} works as
// well as {"fields": {"user.name": "root"}}; nested objects are flattened
// into dotted names ({"user": {"name": "root"}} is "user.name"). The ECS
// names @timestamp, event.id, event.category, event.action, event.outcome
// and device.id are read as their vigil.Event counterparts, and the 5-tuple
// names (source.ip, destination.port, network.transport, ...) are lifted
// into Event.Network. Field values are strings, numbers, booleans, or
// lists of those (kept as []string).
//
// time (RFC 3339, or a number of Unix seconds) and kind are required;
// device_id is optional. received is ignored: the server sets it. An item
// without an id gets a new one (vigil.NewID); source defaults to "bulk".
//
// A bad item is rejected alone with its line, the byte offset of its line
// and the field at fault; the other items go through.
package bulk
