package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

var _ store.Store = (*Store)(nil)

// Options tunes a Store. The zero value is usable.
type Options struct {
	// Schema is the PostgreSQL schema holding Vigil's tables, created when
	// missing (default "public").
	Schema string
	// MaxConns bounds the connection pool (default: pgxpool's, or the
	// URL's pool_max_conns).
	MaxConns int32
	// FieldScanRows bounds the events one ListEvents call with field
	// filters reads (default store.MaxFieldScan); see store.EventFilter.
	FieldScanRows int
	// Logger receives the store's logs (default: discarded).
	Logger *slog.Logger
	// Registerer receives the store's metrics (nil: not registered).
	Registerer prometheus.Registerer
	// AuditKey, when set, seals every appended audit record: its MAC is
	// the record's ComputeMAC(AuditKey) (audit.EnsureKey reads the key).
	AuditKey []byte
	// Clock tells the store which days are today and ahead, for the
	// partitions of events it creates (default vigil.SystemClock).
	Clock vigil.Clock
	// RetainWholeDays makes DeleteEventsBefore round its cut down to the
	// start of the cut's UTC day, so that retention only ever drops whole
	// day partitions and deletes no rows one by one (but those of the
	// default partition): events are kept up to a day longer than asked.
	RetainWholeDays bool
	// EventWriters bounds how many PutEvents calls write to the database
	// at once (default 2); the others wait their turn. Concurrent COPYs
	// into one day's partition contend for the same right-hand index
	// pages: past a couple of writers they add CPU, not speed
	// (docs/benchmarks.md, "PostgreSQL store").
	EventWriters int
}

// Store is a store.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	log    *slog.Logger
	schema string
	health store.WriteHealth // WriteErr
	// fieldScan is Options.FieldScanRows.
	fieldScan int
	// writers holds a token per PutEvents writing (Options.EventWriters).
	writers chan struct{}

	auditKey []byte // seals audit records (audit.go); nil: not sealed

	clock     vigil.Clock
	wholeDays bool       // Options.RetainWholeDays
	parts     partitions // partition.go
	// insertOnly makes PutEvents insert rather than copy (for the
	// benchmark comparing them).
	insertOnly bool
	// binaryCopy makes PutEvents copy in the binary format (pgx's
	// CopyFrom) rather than text (for the benchmark comparing them).
	binaryCopy bool

	eventsStored  prometheus.Counter
	eventsDeduped prometheus.Counter
	putSeconds    prometheus.Histogram
}

var schemaName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Open connects to the database at url (a postgres:// URL or a DSN) and
// brings the schema up to date.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if opts.Schema == "" {
		opts.Schema = "public"
	}
	if !schemaName.MatchString(opts.Schema) {
		return nil, vigil.Errorf(vigil.EINVALID, "bad PostgreSQL schema name %q: letters, digits and _ only", opts.Schema)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, vigil.Errorf(vigil.EINVALID, "bad PostgreSQL URL: %v", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = opts.Schema
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to PostgreSQL: %w", err)
	}
	s := &Store{pool: pool, log: opts.Logger.With("component", "store.postgres"), schema: opts.Schema, auditKey: opts.AuditKey, fieldScan: opts.FieldScanRows}
	if s.fieldScan <= 0 {
		s.fieldScan = store.MaxFieldScan
	}
	if opts.EventWriters <= 0 {
		opts.EventWriters = 2
	}
	s.writers = make(chan struct{}, opts.EventWriters)
	s.clock, s.wholeDays, s.parts.known = opts.Clock, opts.RetainWholeDays, map[int64]bool{}
	if s.clock == nil {
		s.clock = vigil.SystemClock{}
	}
	if err := s.migrate(ctx, opts.Schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cannot migrate PostgreSQL store: %w", err)
	}
	if err := s.ensurePartitions(ctx, nil); err != nil {
		pool.Close()
		return nil, err
	}
	s.initMetrics(opts.Registerer)
	return s, nil
}

func (s *Store) initMetrics(reg prometheus.Registerer) {
	s.eventsStored = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "vigil", Subsystem: "store", Name: "events_stored_total",
		Help: "Events written to the store (duplicates excluded).",
	})
	s.eventsDeduped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "vigil", Subsystem: "store", Name: "events_duplicate_total",
		Help: "Events skipped because their id was already stored.",
	})
	s.putSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "vigil", Subsystem: "store", Name: "put_events_seconds",
		Help:    "Time to store one batch of events.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	if reg != nil {
		reg.MustRegister(s.eventsStored, s.eventsDeduped, s.putSeconds)
	}
}

// Schema returns the PostgreSQL schema holding the store's tables.
func (s *Store) Schema() string { return s.schema }

// Close closes the connection pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// migrations are applied in order; vigil_schema_version holds how many
// were. Never edit one that has shipped: append.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE events (
	seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id        text NOT NULL UNIQUE,
	time      bigint NOT NULL,
	device_id text NOT NULL,
	kind      text NOT NULL,
	source    text NOT NULL,
	category  text NOT NULL,
	action    text NOT NULL,
	outcome   text NOT NULL,
	severity  integer NOT NULL,
	body      jsonb NOT NULL
);
CREATE INDEX events_time ON events(time, seq);
CREATE INDEX events_device_time ON events(device_id, time, seq);
CREATE INDEX events_kind_time ON events(kind, time, seq);

CREATE TABLE devices (
	id    text PRIMARY KEY,
	class text NOT NULL,
	state text NOT NULL,
	body  jsonb NOT NULL
);

CREATE TABLE health (
	seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	device_id text NOT NULL,
	time      bigint NOT NULL,
	body      jsonb NOT NULL
);
CREATE INDEX health_device_time ON health(device_id, time);

CREATE TABLE alerts (
	id          text PRIMARY KEY,
	dedup_key   text NOT NULL,
	device_id   text NOT NULL,
	rule_id     text NOT NULL,
	incident_id text NOT NULL,
	severity    integer NOT NULL,
	created     bigint NOT NULL,
	body        jsonb NOT NULL
);
CREATE INDEX alerts_created ON alerts(created, id);
CREATE INDEX alerts_dedup ON alerts(dedup_key, created);

CREATE TABLE incidents (
	id       text PRIMARY KEY,
	status   text NOT NULL,
	detected bigint NOT NULL,
	updated  bigint NOT NULL,
	body     jsonb NOT NULL
);
CREATE INDEX incidents_detected ON incidents(detected, id);

CREATE TABLE actions (
	id          text PRIMARY KEY,
	device_id   text NOT NULL,
	incident_id text NOT NULL,
	state       text NOT NULL,
	created     bigint NOT NULL,
	body        jsonb NOT NULL
);
CREATE INDEX actions_created ON actions(created, id);

CREATE TABLE audit (
	seq       bigint PRIMARY KEY,
	time      text NOT NULL,
	actor     text NOT NULL,
	action    text NOT NULL,
	object    text NOT NULL,
	detail    text NOT NULL,
	prev_hash text NOT NULL,
	hash      text NOT NULL
);
`,
	// 2: audit records carry the outcome of a request and the MAC of
	// their hash under the audit key (empty for older records).
	`
ALTER TABLE audit ADD COLUMN outcome text NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN mac text NOT NULL DEFAULT '';
`,
	// 3: checkpoints of the learned baseline, one per bus partition.
	`
CREATE TABLE baselines (
	part      integer PRIMARY KEY,
	updated   bigint NOT NULL,
	state     bytea NOT NULL
);
`,
	// 4: alert exceptions: the exception as JSON in body, its counters
	// in columns that RecordSuppressed updates in place.
	`
CREATE TABLE exceptions (
	id              text PRIMARY KEY,
	created         bigint NOT NULL,
	suppressed      bigint NOT NULL,
	last_suppressed bigint NOT NULL,
	last_alert      text NOT NULL,
	body            jsonb NOT NULL
);
`,
	// 5: priority order: prio is store.PriorityRank of the alert's or
	// incident's priority and time (older rows: their time alone).
	`
ALTER TABLE alerts ADD COLUMN prio bigint NOT NULL DEFAULT 0;
UPDATE alerts SET prio = CASE WHEN created > 0 THEN created / 1000000000 ELSE 0 END;
CREATE INDEX alerts_prio ON alerts(prio, id);
ALTER TABLE incidents ADD COLUMN prio bigint NOT NULL DEFAULT 0;
UPDATE incidents SET prio = CASE WHEN detected > 0 THEN detected / 1000000000 ELSE 0 END;
CREATE INDEX incidents_prio ON incidents(prio, id);
`,
	// 6: the console: users, login sessions, and indexes of the lists the
	// console pages read.
	`
CREATE TABLE users (
	name      text PRIMARY KEY,
	role      text NOT NULL,
	hash      text NOT NULL,
	created   bigint NOT NULL,
	updated   bigint NOT NULL
);
CREATE TABLE sessions (
	id        text PRIMARY KEY,
	subject   text NOT NULL,
	name      text NOT NULL,
	role      text NOT NULL,
	csrf      text NOT NULL,
	created   bigint NOT NULL,
	last_seen bigint NOT NULL
);
CREATE INDEX sessions_subject ON sessions(subject);
-- the console's per-device, per-incident and per-state lists read one index
CREATE INDEX alerts_device ON alerts(device_id, created, id);
CREATE INDEX alerts_incident ON alerts(incident_id, created, id);
CREATE INDEX alerts_rule ON alerts(rule_id, created, id);
CREATE INDEX actions_device ON actions(device_id, created, id);
CREATE INDEX actions_incident ON actions(incident_id, created, id);
CREATE INDEX actions_state ON actions(state, created, id);
CREATE INDEX incidents_status ON incidents(status, detected, id);
`,
	// 7: update artifacts with their bytes (at
	// most store.MaxArtifactSize); classes and models are JSON arrays.
	`
CREATE TABLE artifacts (
	id         text PRIMARY KEY,
	product    text NOT NULL,
	version    text NOT NULL,
	classes    text NOT NULL,
	models     text NOT NULL,
	name       text NOT NULL,
	size       bigint NOT NULL,
	sha256     text NOT NULL,
	signature  text NOT NULL,
	created    bigint NOT NULL,
	created_by text NOT NULL,
	data       bytea NOT NULL
);
CREATE INDEX artifacts_product ON artifacts(product, created, id);
`,
	// 8: the entity graph (store.Graph, graph.go): entities by key,
	// relations by (src, rel, dst), each with first/last seen (Unix ns), a
	// count and the first and last events that showed it.
	`
CREATE TABLE graph_entities (
	key         text PRIMARY KEY,
	value       text NOT NULL,
	first_seen  bigint NOT NULL,
	last_seen   bigint NOT NULL,
	n           bigint NOT NULL
);
CREATE INDEX graph_entities_value ON graph_entities(value);

CREATE TABLE graph_relations (
	src         text NOT NULL,
	rel         text NOT NULL,
	dst         text NOT NULL,
	first_seen  bigint NOT NULL,
	last_seen   bigint NOT NULL,
	n           bigint NOT NULL,
	first_event text NOT NULL,
	last_event  text NOT NULL,
	PRIMARY KEY (src, rel, dst)
);
CREATE INDEX graph_relations_src_last ON graph_relations(src, last_seen);
CREATE INDEX graph_relations_dst_last ON graph_relations(dst, last_seen);
`,
	// 9: hunt segments: sealed columnar segments of the event history
	// for hunts (store.Analytics), one row per segment and one per column.
	`
CREATE TABLE hunt_segments (
	first     bigint PRIMARY KEY,
	last      bigint NOT NULL,
	min_time  bigint NOT NULL,
	max_time  bigint NOT NULL,
	rows      integer NOT NULL,
	meta      bytea NOT NULL
);
CREATE INDEX hunt_segments_max_time ON hunt_segments(max_time);
CREATE TABLE hunt_columns (
	segment   bigint NOT NULL,
	field     text NOT NULL,
	data      bytea NOT NULL,
	PRIMARY KEY (segment, field)
);
`,
	// 10: API tokens shared by every node on the database
	// (store.Tokens, tokens.go): the hex SHA-256 of the secret, never the
	// secret; times in Unix ns (0: none); devices a JSON array.
	`
CREATE TABLE api_tokens (
	id        text PRIMARY KEY,
	name      text NOT NULL UNIQUE,
	role      text NOT NULL,
	hash      text NOT NULL UNIQUE,
	created   bigint NOT NULL,
	last_used bigint NOT NULL,
	expires   bigint NOT NULL,
	devices   text NOT NULL
);
`,
	// 11: enrollment tokens and revocations shared by every node on the
	// database (store.EnrollTokens, store.Revocations, enroll.go): the hex
	// SHA-256 of a token's secret, never the secret; times in Unix ns
	// (used 0: unused). A revocation is a device id or a hex serial.
	`
CREATE TABLE enroll_tokens (
	id      text PRIMARY KEY,
	class   text NOT NULL,
	hash    text NOT NULL UNIQUE,
	created bigint NOT NULL,
	expires bigint NOT NULL,
	used    bigint NOT NULL,
	used_by text NOT NULL
);
CREATE TABLE revocations (
	kind text NOT NULL,
	ref  text NOT NULL,
	at   bigint NOT NULL,
	PRIMARY KEY (kind, ref)
);
`,
	// 12: saved hunt queries
	// (store.SavedQueries, savedqueries.go); created in Unix ns.
	`
CREATE TABLE saved_queries (
	name    text PRIMARY KEY,
	query   text NOT NULL,
	author  text NOT NULL,
	created bigint NOT NULL
);
`,
	// 13: saved hunt queries belong to their author (the key is author
	// and name) and are shared or not; those saved before were seen by
	// everyone, so they are shared.
	`
ALTER TABLE saved_queries ADD COLUMN shared boolean NOT NULL DEFAULT true;
ALTER TABLE saved_queries ALTER COLUMN shared DROP DEFAULT;
ALTER TABLE saved_queries DROP CONSTRAINT saved_queries_pkey;
ALTER TABLE saved_queries ADD PRIMARY KEY (author, name);
`,
	// 14: update plans (store.UpdatePlans, updateplans.go): the plan as
	// JSON, with its state and creation time (Unix ns) to list by.
	`
CREATE TABLE update_plans (
	id      text PRIMARY KEY,
	state   text NOT NULL,
	created bigint NOT NULL,
	plan    jsonb NOT NULL
);
CREATE INDEX update_plans_state ON update_plans(state, created, id);
`,
	// 15: the signed-command queue (store.Commands, commands.go): times
	// in Unix ns (taken 0: pending; result_at 0: no result).
	`
CREATE TABLE commands (
	seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id        text NOT NULL UNIQUE,
	device_id text NOT NULL,
	queued    bigint NOT NULL,
	expires   bigint NOT NULL,
	signed    bytea NOT NULL,
	taken     bigint NOT NULL DEFAULT 0,
	result    bytea,
	result_at bigint NOT NULL DEFAULT 0
);
CREATE INDEX commands_pending ON commands(device_id, taken, seq);
CREATE INDEX commands_expires ON commands(expires);
`,
	// 16: sealed server secrets (store.Secrets, secrets.go).
	`
CREATE TABLE secrets (
	name    text PRIMARY KEY,
	sealed  bytea NOT NULL,
	created bigint NOT NULL
);
`,
	// 17: events partitioned by time (partition.go): RANGE partitions of
	// one UTC day each, created ahead by the store, and a default
	// partition for times outside them. A partitioned table cannot have a
	// unique index without its partition key, so an id is unique with its
	// time (a redelivered event carries both); seq comes from a sequence.
	// The rows of the old table move to the default partition, seq kept;
	// the store moves each day out of it when it creates that day's
	// partition. The copy runs inside the migration: about a minute per
	// ten million events.
	`
ALTER TABLE events RENAME TO events_unpartitioned;
ALTER INDEX events_time RENAME TO events_unpartitioned_time;
ALTER INDEX events_device_time RENAME TO events_unpartitioned_device_time;
ALTER INDEX events_kind_time RENAME TO events_unpartitioned_kind_time;
CREATE SEQUENCE events_seq AS bigint;
SELECT setval('events_seq', coalesce((SELECT max(seq) FROM events_unpartitioned), 0) + 1, false);
CREATE TABLE events (
	seq       bigint NOT NULL DEFAULT nextval('events_seq'),
	id        text NOT NULL,
	time      bigint NOT NULL,
	device_id text NOT NULL,
	kind      text NOT NULL,
	source    text NOT NULL,
	category  text NOT NULL,
	action    text NOT NULL,
	outcome   text NOT NULL,
	severity  integer NOT NULL,
	body      jsonb NOT NULL,
	PRIMARY KEY (seq, time),
	UNIQUE (id, time)
) PARTITION BY RANGE (time);
ALTER SEQUENCE events_seq OWNED BY events.seq;
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE INDEX events_time ON events(time, seq);
CREATE INDEX events_device_time ON events(device_id, time, seq);
CREATE INDEX events_kind_time ON events(kind, time, seq);
INSERT INTO events(seq, id, time, device_id, kind, source, category, action, outcome, severity, body)
	SELECT seq, id, time, device_id, kind, source, category, action, outcome, severity, body
	FROM events_unpartitioned ORDER BY seq;
DROP TABLE events_unpartitioned;
`,
	// 18: reference catalogs (store.Catalogs, catalogs.go): documents by
	// kind and name, a version per kind, and claims.
	`
CREATE TABLE catalog_entries (
	kind    text NOT NULL,
	name    text NOT NULL,
	doc     bytea NOT NULL,
	version bigint NOT NULL,
	PRIMARY KEY (kind, name)
);
CREATE TABLE catalog_versions (
	kind    text PRIMARY KEY,
	version bigint NOT NULL
);
CREATE TABLE catalog_claims (
	kind text NOT NULL,
	key  text NOT NULL,
	at   bigint NOT NULL,
	PRIMARY KEY (kind, key)
);
`,
	// 19: retro-hunt jobs (store.RetroJobs, retrojobs.go): the job as
	// its JSON in body; started in Unix ns orders the list.
	`
CREATE TABLE retro_jobs (
	id      text PRIMARY KEY,
	started bigint NOT NULL,
	body    text NOT NULL
);
CREATE INDEX retro_jobs_started ON retro_jobs(started DESC, id DESC);
`,
	// 20: who asked for a queued command (store.QueuedCommand.By), and
	// the index that lists a device's commands newest first.
	`
ALTER TABLE commands ADD COLUMN sent_by text NOT NULL DEFAULT '';
CREATE INDEX commands_device ON commands(device_id, seq);
`,
	// 21: cheaper event writes (docs/benchmarks.md, "PostgreSQL store"):
	// the body is kept as the JSON text the store wrote rather than as
	// jsonb, which COPY spent about a fifth of its server CPU parsing
	// (field filters cast it when they read it); the indexed text columns
	// compare bytewise (COLLATE "C": only equality and grouping are asked
	// of them, never a language's order). Rewrites the events table and
	// its indexes: about a minute per ten million events.
	`
ALTER TABLE events
	ALTER COLUMN body TYPE text,
	ALTER COLUMN id TYPE text COLLATE "C",
	ALTER COLUMN device_id TYPE text COLLATE "C",
	ALTER COLUMN kind TYPE text COLLATE "C";
`,
	// 22: the graph's relations are updated in place (HOT) when a flush
	// only moves their times, counts and events: no index holds last_seen
	// any more (the primary key serves lookups by src, a dst index those by
	// dst; GraphRelations sorts what the keys select, as it did), and pages
	// keep room for the new versions. Each relation update cost about half
	// as much (docs/benchmarks.md, "PostgreSQL store").
	`
DROP INDEX graph_relations_src_last;
DROP INDEX graph_relations_dst_last;
CREATE INDEX graph_relations_dst ON graph_relations(dst);
ALTER TABLE graph_relations SET (fillfactor = 80);
`,
}

func (s *Store) migrate(ctx context.Context, schema string) error {
	if _, err := s.pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("cannot create schema %s: %w", schema, err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	// Nodes starting together migrate one after the other.
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "vigil-migrate:"+schema); err != nil {
		return fmt.Errorf("cannot lock for migration: %w", err)
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS vigil_schema_version (version integer NOT NULL)"); err != nil {
		return fmt.Errorf("cannot create the schema version table: %w", err)
	}
	var version int
	err = tx.QueryRow(ctx, "SELECT version FROM vigil_schema_version").Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := tx.Exec(ctx, "INSERT INTO vigil_schema_version VALUES (0)"); err != nil {
			return fmt.Errorf("cannot record schema version: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("cannot read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program knows (%d)", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.Exec(ctx, migrations[i]); err != nil {
			return fmt.Errorf("cannot apply migration %d: %w", i+1, err)
		}
		s.log.Info("schema migrated", "version", i+1)
	}
	if _, err := tx.Exec(ctx, "UPDATE vigil_schema_version SET version = $1", len(migrations)); err != nil {
		return fmt.Errorf("cannot record schema version: %w", err)
	}
	return tx.Commit(ctx)
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

// query collects the conditions and numbered arguments of a statement.
type query struct {
	where []string
	args  []any
}

// arg adds an argument and returns its placeholder.
func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args))
}

func (q *query) and(cond string) { q.where = append(q.where, cond) }

func (q *query) whereClause() string {
	if len(q.where) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(q.where, " AND ")
}

// noNUL replaces NUL characters, which PostgreSQL text cannot hold.
func noNUL(s string) string {
	if strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// WriteErr returns the error of the last write of events when it failed
// (the database down, a full disk, a lost connection), until a write
// succeeds again; nil when the last write succeeded. /readyz answers 503
// while it is set.
func (s *Store) WriteErr() error { return s.health.Err() }
