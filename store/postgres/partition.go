package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Events are partitioned by time (migration 13): one RANGE partition of
// the events table per UTC day, named events_pYYYYMMDD, with bounds in
// Unix nanoseconds, and the default partition events_default for the
// times no day partition covers.
//
// The store creates the partition of a day when it first stores an event
// of that day, and the partitions of today and the next days ahead of
// time (at Open, then as the days pass). It creates partitions only for
// days from partitionPast before today to partitionAhead after it: an
// event with a time far off (a device clock in 1970) goes to the default
// partition instead of making a table of its own. Creating a partition
// moves the rows of its day out of the default partition first, so a day
// that once fell outside the window (or rows migrated from the
// unpartitioned table) can still get its partition.
//
// Retention (DeleteEventsBefore) detaches and drops the partitions of the
// days before the cut, keeping the events open alerts cite (moved to the
// default partition), and deletes row by row only what is left before the
// cut: in the default partition, and in the partition of the cut's day
// unless Options.RetainWholeDays rounds the cut down to the day.
//
// Nodes sharing the database take an advisory lock (partitionLock) to
// create or drop a partition, one at a time.
const (
	dayNanos       = int64(24 * time.Hour)
	partitionPast  = 7 // days
	partitionAhead = 2 // days
	partitionLock  = "vigil-partition:"
	// exactCountBelow: DeleteEventsBefore counts the rows of a dropped
	// partition exactly when PostgreSQL's estimate is below this, and
	// reports the estimate above it (counting a day of 50,000 events/s
	// would read 4 billion rows).
	exactCountBelow = 1_000_000
)

// partitions remembers which day partitions exist, as far as this store
// knows: another node may have dropped one since (its rows then go to the
// default partition).
type partitions struct {
	mu    sync.Mutex
	known map[int64]bool // day number (Unix ns / dayNanos, floored)
}

// dayOf returns the day number of a time in Unix nanoseconds.
func dayOf(ns int64) int64 {
	d := ns / dayNanos
	if ns < 0 && ns%dayNanos != 0 {
		d--
	}
	return d
}

// partitionName returns the table name of a day's partition.
func partitionName(day int64) string {
	return "events_p" + time.Unix(0, day*dayNanos).UTC().Format("20060102")
}

// parsePartitionName returns the day of a partition's table name.
func parsePartitionName(name string) (int64, bool) {
	rest, ok := strings.CutPrefix(name, "events_p")
	if !ok || len(rest) != 8 {
		return 0, false
	}
	t, err := time.Parse("20060102", rest)
	if err != nil {
		return 0, false
	}
	day := dayOf(t.UnixNano())
	if partitionName(day) != name { // out of the range of Unix ns
		return 0, false
	}
	return day, true
}

// today returns the day number of the store's clock.
func (s *Store) today() int64 { return dayOf(s.clock.Now().UnixNano()) }

// ensurePartitions creates the partitions of the days in days (and of the
// days ahead of today) that are within the window and not known to exist.
func (s *Store) ensurePartitions(ctx context.Context, days []int64) error {
	today := s.today()
	var missing []int64
	s.parts.mu.Lock()
	for d := today; d <= today+partitionAhead; d++ {
		if !s.parts.known[d] {
			missing = append(missing, d)
		}
	}
	for _, d := range days {
		if d >= today-partitionPast && d <= today+partitionAhead && !s.parts.known[d] && !containsDay(missing, d) {
			missing = append(missing, d)
		}
	}
	s.parts.mu.Unlock()
	for _, d := range missing {
		if err := s.createPartition(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

func containsDay(days []int64, d int64) bool {
	for _, x := range days {
		if x == d {
			return true
		}
	}
	return false
}

// createPartition creates and attaches the partition of a day, unless it
// exists, moving the day's rows out of the default partition.
func (s *Store) createPartition(ctx context.Context, day int64) error {
	name := partitionName(day)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", partitionLock+s.schema); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		lo, hi := day*dayNanos, (day+1)*dayNanos
		id := pgx.Identifier{name}.Sanitize()
		stmts := []string{
			"CREATE TABLE " + id + " (LIKE events INCLUDING DEFAULTS)",
			fmt.Sprintf("WITH moved AS (DELETE FROM events_default WHERE time >= %d AND time < %d RETURNING *) INSERT INTO %s SELECT * FROM moved", lo, hi, id),
			fmt.Sprintf("ALTER TABLE events ATTACH PARTITION %s FOR VALUES FROM (%d) TO (%d)", id, lo, hi),
		}
		for _, q := range stmts {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot create event partition %s: %w", name, err)
	}
	s.parts.mu.Lock()
	s.parts.known[day] = true
	s.parts.mu.Unlock()
	return nil
}

// dayPartitions lists the days that have a partition.
func (s *Store) dayPartitions(ctx context.Context) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'events'::regclass ORDER BY c.relname`)
	if err != nil {
		return nil, fmt.Errorf("cannot list event partitions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("cannot list event partitions: %w", err)
	}
	var days []int64
	for _, n := range names {
		if d, ok := parsePartitionName(n); ok {
			days = append(days, d)
		}
	}
	return days, nil
}

// dropPartition detaches and drops a day's partition, first moving the
// events that open alerts cite to the default partition, and returns how
// many events it removed (PostgreSQL's estimate for a large partition).
func (s *Store) dropPartition(ctx context.Context, day int64) (int64, error) {
	name := partitionName(day)
	id := pgx.Identifier{name}.Sanitize()
	var removed int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", partitionLock+s.schema); err != nil {
			return err
		}
		// Detaching locks the events table: give up rather than stall the
		// event sink behind a long query; the next pass tries again.
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '10s'"); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return nil
		}
		var estimate float64
		if err := tx.QueryRow(ctx, "SELECT reltuples FROM pg_class WHERE oid = $1::regclass", name).Scan(&estimate); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "ALTER TABLE events DETACH PARTITION "+id); err != nil {
			return err
		}
		if estimate >= exactCountBelow {
			removed = int64(estimate)
		} else if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+id).Scan(&removed); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "INSERT INTO events SELECT * FROM "+id+" WHERE id IN ("+evidenceOfOpenAlerts+")")
		if err != nil {
			return err
		}
		removed -= tag.RowsAffected()
		_, err = tx.Exec(ctx, "DROP TABLE "+id)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("cannot drop event partition %s: %w", name, err)
	}
	s.parts.mu.Lock()
	delete(s.parts.known, day)
	s.parts.mu.Unlock()
	s.log.Info("event partition dropped", "partition", name, "events", removed)
	return removed, nil
}
