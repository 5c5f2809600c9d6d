// Package sqlite is the embedded store: store.Store on one SQLite file
// (modernc.org/sqlite, pure Go) in WAL mode.
//
// It owns the schema and its migrations (PRAGMA user_version), one writer
// connection through which every write is serialized, and a pool of reader
// connections. Each stored object is kept whole as JSON next to the
// columns its filters need; events get an index on time, device and kind,
// and their ad-hoc field filters are evaluated with json_extract so ingest
// pays for no side table.
//
// It must not decide anything about events or alerts: it stores and
// returns what it is given, and it never talks to the bus.
package sqlite
