// Package node assembles one Vigil node: the store, the bus, every stage
// (ingest, detection, inventory, alerts, incidents, response, exports,
// intel and vulnerabilities, hunting, the audit trail) and the HTTPS API
// and console, from a Config.
//
// The life of a node: Config (DefaultConfig, LoadConfig, Validate) → Open
// (opens the store, the bus and the keys, builds the stages; starts
// nothing) → Start (binds the listener and runs the stages) → Shutdown
// (drains requests, stops the consumers, closes the store and then the
// bus) or Close (at once). vigil serve, vigil demo, vigil bench and the
// tests all start nodes this way, so a test can run three nodes in one
// process (TestThreeNodesInOneProcess) or three processes of vigil serve
// (cmd/vigil TestClusterFailover).
//
// What a node offers besides its API is small (access.go): its URL, the
// bootstrap admin token, its CA, its store, its metrics. Everything else
// goes through the API, as an operator would. The command line (flags,
// printing) stays in cmd/vigil; the package holds no wiring of its own
// beyond this assembly, and no stage imports it.
package node
