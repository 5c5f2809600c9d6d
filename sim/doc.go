// Package sim simulates a fleet of IoT devices for `vigil demo` and the
// load generator: routine agent reports (health, inventory, listeners) and
// a scripted attack on one device. It produces wire.Reports and NDJSON
// events only; sending them is the caller's business, so the simulation is
// the same whether it talks to a server in this process or to another.
//
// Everything is deterministic for a given seed, except the timestamps,
// which are the times the caller passes in.
package sim
