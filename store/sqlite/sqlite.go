package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

var _ store.Store = (*Store)(nil)

// Options tunes a Store. The zero value is usable.
type Options struct {
	// ReadConns is the size of the reader pool (default 4).
	ReadConns int
	// FieldScanRows bounds the events one ListEvents call with field
	// filters reads (default store.MaxFieldScan); see store.EventFilter.
	FieldScanRows int
	// BusyTimeout is how long a connection waits for a lock held by
	// another process before failing (default 5s).
	BusyTimeout time.Duration
	// Logger receives the store's logs (default: discarded).
	Logger *slog.Logger
	// Registerer receives the store's metrics (nil: not registered).
	Registerer prometheus.Registerer
	// AuditKey, when set, seals every appended audit record: its MAC is
	// the record's ComputeMAC(AuditKey) (audit.EnsureKey reads the key).
	AuditKey []byte
}

// Store is a store.Store on one SQLite file. It is safe for concurrent use.
type Store struct {
	w   *sql.DB // exactly one connection: every write goes through it
	r   *sql.DB // readers
	log *slog.Logger

	auditKey []byte // seals audit records (audit.go); nil: not sealed

	inserts   insertStmts
	reqs      chan *putRequest // to the committer
	quit      chan struct{}    // closed by Close
	committed chan struct{}    // closed when the committer has stopped
	closeOnce sync.Once
	health    store.WriteHealth // WriteErr
	fieldScan int               // Options.FieldScanRows
	cmdWatch  commandWatchers   // WatchCommands (commands.go)

	eventsStored  prometheus.Counter
	eventsDeduped prometheus.Counter
	putSeconds    prometheus.Histogram
	groupSize     prometheus.Histogram
}

// Open opens (creating when needed) the database file at path and brings
// its schema up to date.
func Open(path string, opts Options) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, vigil.Errorf(vigil.EINVALID, "sqlite store needs a plain file path, got %q", path)
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = 4
	}
	if opts.FieldScanRows <= 0 {
		opts.FieldScanRows = store.MaxFieldScan
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// SQLite creates a new database 0644 and its -wal and -shm files with
	// the database's mode: create it 0600 first, so that none of the three
	// is readable by other users.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("cannot create sqlite store %s: %w", path, err)
	}
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Add("_pragma", "cache_size(-32000)")
	q.Add("_pragma", "temp_store(MEMORY)")
	// Checkpoint every 32 MB of WAL rather than 4 MB: fewer, larger
	// checkpoints cost ingest less.
	q.Add("_pragma", "wal_autocheckpoint(8192)")
	wq := url.Values{}
	for k, v := range q {
		wq[k] = v
	}
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", "file:"+path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("cannot open sqlite store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	s := &Store{w: w, log: opts.Logger.With("component", "store.sqlite"), auditKey: opts.AuditKey, fieldScan: opts.FieldScanRows}
	if err := s.migrate(context.Background()); err != nil {
		w.Close()
		return nil, fmt.Errorf("cannot migrate sqlite store %s: %w", path, err)
	}

	// Statistics for the query planner (which index serves a filter on
	// both device and kind), bounded so that it stays quick on a big file.
	if _, err := w.Exec("PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002"); err != nil {
		s.log.Warn("cannot refresh query planner statistics", "err", err)
	}

	q.Set("_query_only", "1")
	r, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("cannot open sqlite store %s: %w", path, err)
	}
	r.SetMaxOpenConns(opts.ReadConns)
	r.SetMaxIdleConns(opts.ReadConns)
	r.SetConnMaxIdleTime(0)
	if err := r.Ping(); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("cannot open sqlite store %s: %w", path, err)
	}
	s.r = r
	s.initMetrics(opts.Registerer)
	s.reqs = make(chan *putRequest)
	s.quit = make(chan struct{})
	s.committed = make(chan struct{})
	go s.commitLoop()
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
	s.groupSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "vigil", Subsystem: "store", Name: "put_events_group_calls",
		Help:    "PutEvents calls merged into one transaction.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64},
	})
	if reg != nil {
		reg.MustRegister(s.eventsStored, s.eventsDeduped, s.putSeconds, s.groupSize)
	}
}

// Close closes the database. A PutEvents being committed finishes first;
// later calls fail.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.quit) })
	<-s.committed
	s.closeStmts()
	err := s.r.Close()
	if werr := s.w.Close(); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("cannot close sqlite store: %w", err)
	}
	return nil
}

// migrations are applied in order; the database's user_version is the
// number of migrations applied. Never edit one that has shipped: append.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE events (
	seq       INTEGER PRIMARY KEY,
	id        TEXT NOT NULL,
	time      INTEGER NOT NULL,
	device_id TEXT NOT NULL,
	kind      TEXT NOT NULL,
	source    TEXT NOT NULL,
	category  TEXT NOT NULL,
	action    TEXT NOT NULL,
	outcome   TEXT NOT NULL,
	severity  INTEGER NOT NULL,
	body      TEXT NOT NULL
);
CREATE UNIQUE INDEX events_id ON events(id);
CREATE INDEX events_time ON events(time);
CREATE INDEX events_device_time ON events(device_id, time);
CREATE INDEX events_kind_time ON events(kind, time);

CREATE TABLE devices (
	id        TEXT PRIMARY KEY,
	class     TEXT NOT NULL,
	state     TEXT NOT NULL,
	body      TEXT NOT NULL
);

CREATE TABLE health (
	device_id TEXT NOT NULL,
	time      INTEGER NOT NULL,
	body      TEXT NOT NULL
);
CREATE INDEX health_device_time ON health(device_id, time);

CREATE TABLE alerts (
	id          TEXT PRIMARY KEY,
	dedup_key   TEXT NOT NULL,
	device_id   TEXT NOT NULL,
	rule_id     TEXT NOT NULL,
	incident_id TEXT NOT NULL,
	severity    INTEGER NOT NULL,
	created     INTEGER NOT NULL,
	body        TEXT NOT NULL
);
CREATE INDEX alerts_created ON alerts(created, id);
CREATE INDEX alerts_dedup ON alerts(dedup_key, created);

CREATE TABLE incidents (
	id       TEXT PRIMARY KEY,
	status   TEXT NOT NULL,
	detected INTEGER NOT NULL,
	updated  INTEGER NOT NULL,
	body     TEXT NOT NULL
);
CREATE INDEX incidents_detected ON incidents(detected, id);

CREATE TABLE actions (
	id          TEXT PRIMARY KEY,
	device_id   TEXT NOT NULL,
	incident_id TEXT NOT NULL,
	state       TEXT NOT NULL,
	created     INTEGER NOT NULL,
	body        TEXT NOT NULL
);
CREATE INDEX actions_created ON actions(created, id);

CREATE TABLE audit (
	seq       INTEGER PRIMARY KEY,
	time      TEXT NOT NULL,
	actor     TEXT NOT NULL,
	action    TEXT NOT NULL,
	object    TEXT NOT NULL,
	detail    TEXT NOT NULL,
	prev_hash TEXT NOT NULL,
	hash      TEXT NOT NULL
);
`,
	// 2: audit records carry the outcome of a request and the MAC of
	// their hash under the audit key (empty for older records).
	`
ALTER TABLE audit ADD COLUMN outcome TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN mac TEXT NOT NULL DEFAULT '';
`,
	// 3: checkpoints of the learned baseline, one per bus partition.
	`
CREATE TABLE baselines (
	part      INTEGER PRIMARY KEY,
	updated   INTEGER NOT NULL,
	state     BLOB NOT NULL
);
`,
	// 4: alert exceptions: the exception as JSON in body, its counters
	// in columns that RecordSuppressed updates in place.
	`
CREATE TABLE exceptions (
	id              TEXT PRIMARY KEY,
	created         INTEGER NOT NULL,
	suppressed      INTEGER NOT NULL,
	last_suppressed INTEGER NOT NULL,
	last_alert      TEXT NOT NULL,
	body            TEXT NOT NULL
);
`,
	// 5: priority order: prio is store.PriorityRank of the alert's or
	// incident's priority and time (older rows: their time alone).
	`
ALTER TABLE alerts ADD COLUMN prio INTEGER NOT NULL DEFAULT 0;
UPDATE alerts SET prio = CASE WHEN created > 0 THEN created / 1000000000 ELSE 0 END;
CREATE INDEX alerts_prio ON alerts(prio, id);
ALTER TABLE incidents ADD COLUMN prio INTEGER NOT NULL DEFAULT 0;
UPDATE incidents SET prio = CASE WHEN detected > 0 THEN detected / 1000000000 ELSE 0 END;
CREATE INDEX incidents_prio ON incidents(prio, id);
`,
	// 6: the console: users, login sessions, and indexes of the lists the
	// console pages read.
	`
CREATE TABLE users (
	name      TEXT PRIMARY KEY,
	role      TEXT NOT NULL,
	hash      TEXT NOT NULL,
	created   INTEGER NOT NULL,
	updated   INTEGER NOT NULL
);
CREATE TABLE sessions (
	id        TEXT PRIMARY KEY,
	subject   TEXT NOT NULL,
	name      TEXT NOT NULL,
	role      TEXT NOT NULL,
	csrf      TEXT NOT NULL,
	created   INTEGER NOT NULL,
	last_seen INTEGER NOT NULL
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
	id         TEXT PRIMARY KEY,
	product    TEXT NOT NULL,
	version    TEXT NOT NULL,
	classes    TEXT NOT NULL,
	models     TEXT NOT NULL,
	name       TEXT NOT NULL,
	size       INTEGER NOT NULL,
	sha256     TEXT NOT NULL,
	signature  TEXT NOT NULL,
	created    INTEGER NOT NULL,
	created_by TEXT NOT NULL,
	data       BLOB NOT NULL
);
CREATE INDEX artifacts_product ON artifacts(product, created, id);
`,
	// 8: the entity graph (store.Graph, graph.go): entities by key,
	// relations by (src, rel, dst), each with first/last seen (Unix ns), a
	// count and the first and last events that showed it.
	`
CREATE TABLE graph_entities (
	key         TEXT PRIMARY KEY,
	value       TEXT NOT NULL,
	first_seen  INTEGER NOT NULL,
	last_seen   INTEGER NOT NULL,
	n           INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX graph_entities_value ON graph_entities(value);

CREATE TABLE graph_relations (
	src         TEXT NOT NULL,
	rel         TEXT NOT NULL,
	dst         TEXT NOT NULL,
	first_seen  INTEGER NOT NULL,
	last_seen   INTEGER NOT NULL,
	n           INTEGER NOT NULL,
	first_event TEXT NOT NULL,
	last_event  TEXT NOT NULL,
	PRIMARY KEY (src, rel, dst)
) WITHOUT ROWID;
CREATE INDEX graph_relations_dst ON graph_relations(dst, last_seen);
`,
	// 9: hunt segments: sealed columnar segments of the event history
	// for hunts (store.Analytics), one row per segment and one per column.
	`
CREATE TABLE hunt_segments (
	first     INTEGER PRIMARY KEY,
	last      INTEGER NOT NULL,
	min_time  INTEGER NOT NULL,
	max_time  INTEGER NOT NULL,
	rows      INTEGER NOT NULL,
	meta      BLOB NOT NULL
);
CREATE INDEX hunt_segments_max_time ON hunt_segments(max_time);
CREATE TABLE hunt_columns (
	segment   INTEGER NOT NULL,
	field     TEXT NOT NULL,
	data      BLOB NOT NULL,
	PRIMARY KEY (segment, field)
) WITHOUT ROWID;
`,
	// 10: API tokens shared by every node on the database
	// (store.Tokens, tokens.go): the hex SHA-256 of the secret, never the
	// secret; times in Unix ns (0: none); devices a JSON array.
	`
CREATE TABLE api_tokens (
	id        TEXT PRIMARY KEY,
	name      TEXT NOT NULL UNIQUE,
	role      TEXT NOT NULL,
	hash      TEXT NOT NULL UNIQUE,
	created   INTEGER NOT NULL,
	last_used INTEGER NOT NULL,
	expires   INTEGER NOT NULL,
	devices   TEXT NOT NULL
);
`,
	// 11: enrollment tokens and revocations shared by every node on the
	// database (store.EnrollTokens, store.Revocations, enroll.go): the hex
	// SHA-256 of a token's secret, never the secret; times in Unix ns
	// (used 0: unused). A revocation is a device id or a hex serial.
	`
CREATE TABLE enroll_tokens (
	id      TEXT PRIMARY KEY,
	class   TEXT NOT NULL,
	hash    TEXT NOT NULL UNIQUE,
	created INTEGER NOT NULL,
	expires INTEGER NOT NULL,
	used    INTEGER NOT NULL,
	used_by TEXT NOT NULL
);
CREATE TABLE revocations (
	kind TEXT NOT NULL,
	ref  TEXT NOT NULL,
	at   INTEGER NOT NULL,
	PRIMARY KEY (kind, ref)
);
`,
	// 12: saved hunt queries
	// (store.SavedQueries, savedqueries.go); created in Unix ns.
	`
CREATE TABLE saved_queries (
	name    TEXT PRIMARY KEY,
	query   TEXT NOT NULL,
	author  TEXT NOT NULL,
	created INTEGER NOT NULL
);
`,
	// 13: saved hunt queries belong to their author (the key is author
	// and name) and are shared or not; those saved before were seen by
	// everyone, so they are shared.
	`
ALTER TABLE saved_queries RENAME TO saved_queries_old;
CREATE TABLE saved_queries (
	author  TEXT NOT NULL,
	name    TEXT NOT NULL,
	query   TEXT NOT NULL,
	shared  INTEGER NOT NULL,
	created INTEGER NOT NULL,
	PRIMARY KEY (author, name)
);
INSERT INTO saved_queries(author, name, query, shared, created) SELECT author, name, query, 1, created FROM saved_queries_old;
DROP TABLE saved_queries_old;
`,
	// 14: update plans (store.UpdatePlans, updateplans.go): the plan as
	// JSON, with its state and creation time (Unix ns) to list by.
	`
CREATE TABLE update_plans (
	id      TEXT PRIMARY KEY,
	state   TEXT NOT NULL,
	created INTEGER NOT NULL,
	plan    TEXT NOT NULL
);
CREATE INDEX update_plans_state ON update_plans(state, created, id);
`,
	// 15: the signed-command queue (store.Commands, commands.go): times
	// in Unix ns (taken 0: pending; result_at 0: no result).
	`
CREATE TABLE commands (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	id        TEXT NOT NULL UNIQUE,
	device_id TEXT NOT NULL,
	queued    INTEGER NOT NULL,
	expires   INTEGER NOT NULL,
	signed    BLOB NOT NULL,
	taken     INTEGER NOT NULL DEFAULT 0,
	result    BLOB,
	result_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX commands_pending ON commands(device_id, taken, seq);
CREATE INDEX commands_expires ON commands(expires);
`,
	// 16: sealed server secrets (store.Secrets, secrets.go).
	`
CREATE TABLE secrets (
	name    TEXT PRIMARY KEY,
	sealed  BLOB NOT NULL,
	created INTEGER NOT NULL
);
`,
	// 17: reference catalogs (store.Catalogs, catalogs.go): documents by
	// kind and name, a version per kind, and claims.
	`
CREATE TABLE catalog_entries (
	kind    TEXT NOT NULL,
	name    TEXT NOT NULL,
	doc     BLOB NOT NULL,
	version INTEGER NOT NULL,
	PRIMARY KEY (kind, name)
);
CREATE TABLE catalog_versions (
	kind    TEXT PRIMARY KEY,
	version INTEGER NOT NULL
);
CREATE TABLE catalog_claims (
	kind TEXT NOT NULL,
	key  TEXT NOT NULL,
	at   INTEGER NOT NULL,
	PRIMARY KEY (kind, key)
);
`,
	// 18: retro-hunt jobs (store.RetroJobs, retrojobs.go): the job as
	// its JSON in body; started in Unix ns orders the list.
	`
CREATE TABLE retro_jobs (
	id      TEXT PRIMARY KEY,
	started INTEGER NOT NULL,
	body    TEXT NOT NULL
);
CREATE INDEX retro_jobs_started ON retro_jobs(started DESC, id DESC);
`,
	// 19: who asked for a queued command (store.QueuedCommand.By), and
	// the index that lists a device's commands newest first.
	`
ALTER TABLE commands ADD COLUMN sent_by TEXT NOT NULL DEFAULT '';
CREATE INDEX commands_device ON commands(device_id, seq);
`,
}

func (s *Store) migrate(ctx context.Context) error {
	var version int
	if err := s.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("cannot read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program knows (%d)", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			tx.Rollback()
			return fmt.Errorf("cannot apply migration %d: %w", i+1, err)
		}
		// PRAGMA takes no parameters; i+1 is an integer we control.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("cannot record migration %d: %w", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("cannot commit migration %d: %w", i+1, err)
		}
		s.log.Info("schema migrated", "version", i+1)
	}
	return nil
}

// SchemaVersion returns the database's schema version (PRAGMA user_version).
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("cannot read schema version: %w", err)
	}
	return v, nil
}

// isNoRows reports whether err says a lookup found nothing.
func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
