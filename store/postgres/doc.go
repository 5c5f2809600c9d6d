// Package postgres is the scale-out store: store.Store on PostgreSQL
// through pgx, for several Vigil nodes sharing one database.
//
// It owns its schema (in a PostgreSQL schema of its own, "public" by
// default) and the migrations of it, recorded in vigil_schema_version.
// Each object is kept whole as jsonb next to the columns its filters need,
// except events, kept as the JSON text the store wrote (parsing jsonb was
// a fifth of the cost of storing one): ad-hoc event field filters cast it
// to jsonb. Events are partitioned by UTC day and written with COPY
// (partition.go, events.go).
//
// It must not decide anything about events or alerts: it stores and
// returns what it is given, and it never talks to the bus.
package postgres
