// Package inventory keeps the device inventory from the event stream. Its
// Stage consumes every event on the bus (consumer group "inventory") and,
// for each device an event names, creates the device when it is unknown,
// moves FirstSeen and LastSeen, records health samples and applies
// inventory reports (OS, kernel, firmware, vendor, model, class, software,
// network interfaces).
//
// State history for trends comes from two places, neither of them a
// separate table: every health sample is appended to the device's health
// history (store.Devices.AddHealth, read with HealthHistory), and every
// inventory report is an event of kind "inventory" that the store sink keeps
// like any other event, so a firmware or software change over time is read
// with store.EventFilter{DeviceID: id, Kind: "inventory"}. The Device record
// itself holds only the latest state; a firmware change is also logged.
//
// Writes are batched per handler call (one MergeDeviceReports for the
// changed devices, one AddHealth for all samples) and devices are cached in
// memory (one entry per device, never evicted: the fleet bounds it), so the
// stage reads the store only for a device it has not seen since it started.
// The cache decides what changed; what is written is only what the batch's
// events carry, merged into the stored device by the store
// (store.MergeDeviceReport): the stage never writes operator-owned fields
// (tags, a quarantined or retired state, enrolled), and a cache gone stale
// writes nothing old back.
// A device whose only change is LastSeen is written at most once per
// Options.LastSeenInterval of event time.
//
// The package must not detect anything (detectors read the same events)
// and must not publish on the bus.
package inventory
