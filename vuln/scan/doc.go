// Package scan matches devices against vulnerability advisories and keeps
// the result: it owns the advisory sources, kept in the store shared by
// every node (store.Catalogs kind "vuln", synced every 5 s by Run; the
// files of an older version, <dir>/vuln/sources/<name>.json and
// state.json, imported once), the KEV catalog, VEX
// statements and SBOMs per device model and firmware, the devices it was
// told about, their exposure (listening ports, traffic seen), and the
// findings. It rematches incrementally: one device when its inventory or
// exposure changes, the devices that have an affected product when a feed
// changes. New findings that are in KEV, or have CVSS >= 9 and are exposed,
// raise an alert with an update remediation, once across all nodes: the
// node that claims the finding in the store alerts it.
//
// Matching is by explicit rules only (vuln.RulePURL, RuleCPE, RuleFirmware,
// RulePURLMap): a component with neither purl nor CPE matches nothing, and
// names are never compared by similarity.
//
// It does not read the event store or the bus: the caller feeds it devices
// (UpdateDevice, from inventory events) and events (Observe), and
// publishes the alerts it hands back.
package scan
