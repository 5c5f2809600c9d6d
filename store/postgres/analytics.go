package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-iot/vigil/store"
)

var _ store.Analytics = (*Store)(nil)

// EventsAfter returns up to limit events with seq > after, in seq order.
func (s *Store) EventsAfter(ctx context.Context, after int64, limit int) ([]store.SeqEvent, error) {
	rows, err := s.pool.Query(ctx, "SELECT seq, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2", after, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot read events after %d: %w", after, err)
	}
	defer rows.Close()
	var out []store.SeqEvent
	for rows.Next() {
		var (
			seq  int64
			body []byte
		)
		if err := rows.Scan(&seq, &body); err != nil {
			return nil, fmt.Errorf("cannot read event: %w", err)
		}
		e, err := decodeEvent(body)
		if err != nil {
			return nil, err
		}
		out = append(out, store.SeqEvent{Seq: seq, Event: e})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read events after %d: %w", after, err)
	}
	return out, nil
}

// EventBodiesAfter gives fn the bodies of up to limit events with seq >
// after, in seq order: the JSON text PutEvents stored.
func (s *Store) EventBodiesAfter(ctx context.Context, after int64, limit int, fn func(seq int64, body []byte) error) (int, error) {
	rows, err := s.pool.Query(ctx, "SELECT seq, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2", after, limit)
	if err != nil {
		return 0, fmt.Errorf("cannot read events after %d: %w", after, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			seq  int64
			body []byte
		)
		if err := rows.Scan(&seq, &body); err != nil {
			return n, fmt.Errorf("cannot read event: %w", err)
		}
		if err := fn(seq, body); err != nil {
			return n, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("cannot read events after %d: %w", after, err)
	}
	return n, nil
}

// MaxEventSeq returns the greatest event seq, 0 when there is none.
func (s *Store) MaxEventSeq(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT coalesce(max(seq), 0) FROM events").Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot read the last event seq: %w", err)
	}
	return n, nil
}

// PutSegment stores a segment and its columns in one transaction.
func (s *Store) PutSegment(ctx context.Context, sg store.Segment) error {
	if err := store.CheckSegment(sg); err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("cannot store segment %d: %w", sg.First, err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "DELETE FROM hunt_columns WHERE segment = $1", sg.First); err != nil {
		return fmt.Errorf("cannot store segment %d: %w", sg.First, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO hunt_segments(first, last, min_time, max_time, rows, meta) VALUES ($1,$2,$3,$4,$5,$6)
		ON CONFLICT (first) DO UPDATE SET last = EXCLUDED.last, min_time = EXCLUDED.min_time, max_time = EXCLUDED.max_time, rows = EXCLUDED.rows, meta = EXCLUDED.meta`,
		sg.First, sg.Last, store.Nanos(sg.MinTime), store.Nanos(sg.MaxTime), sg.Rows, sg.Meta); err != nil {
		return fmt.Errorf("cannot store segment %d: %w", sg.First, err)
	}
	var b pgx.Batch
	for name, data := range sg.Columns {
		b.Queue("INSERT INTO hunt_columns(segment, field, data) VALUES ($1,$2,$3)", sg.First, noNUL(name), data)
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("cannot store the columns of segment %d: %w", sg.First, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("cannot store segment %d: %w", sg.First, err)
	}
	return nil
}

// SealedSeq returns the greatest Last of the segments, 0 when none.
func (s *Store) SealedSeq(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT coalesce(max(last), 0) FROM hunt_segments").Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot read the sealed seq: %w", err)
	}
	return n, nil
}

// Segments lists the segments overlapping [since, until), newest first.
func (s *Store) Segments(ctx context.Context, since, until time.Time) ([]store.SegmentInfo, error) {
	var q query
	if !since.IsZero() {
		q.and("max_time >= " + q.arg(store.Nanos(since)))
	}
	if !until.IsZero() {
		q.and("min_time < " + q.arg(store.Nanos(until)))
	}
	rows, err := s.pool.Query(ctx, "SELECT first, last, min_time, max_time, rows, meta FROM hunt_segments"+q.whereClause()+" ORDER BY first DESC", q.args...)
	if err != nil {
		return nil, fmt.Errorf("cannot list segments: %w", err)
	}
	defer rows.Close()
	var out []store.SegmentInfo
	for rows.Next() {
		var (
			si     store.SegmentInfo
			lo, hi int64
			n      int32
		)
		if err := rows.Scan(&si.First, &si.Last, &lo, &hi, &n, &si.Meta); err != nil {
			return nil, fmt.Errorf("cannot read segment: %w", err)
		}
		si.Rows = int(n)
		si.MinTime, si.MaxTime = time.Unix(0, lo).UTC(), time.Unix(0, hi).UTC()
		out = append(out, si)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list segments: %w", err)
	}
	return out, nil
}

// SegmentColumns returns the named columns of a segment (nil: all).
func (s *Store) SegmentColumns(ctx context.Context, first int64, names []string) (map[string][]byte, error) {
	var (
		rows pgx.Rows
		err  error
	)
	if names == nil {
		rows, err = s.pool.Query(ctx, "SELECT field, data FROM hunt_columns WHERE segment = $1", first)
	} else {
		if len(names) == 0 {
			return map[string][]byte{}, nil
		}
		rows, err = s.pool.Query(ctx, "SELECT field, data FROM hunt_columns WHERE segment = $1 AND field = ANY($2)", first, names)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read columns of segment %d: %w", first, err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var (
			name string
			data []byte
		)
		if err := rows.Scan(&name, &data); err != nil {
			return nil, fmt.Errorf("cannot read columns of segment %d: %w", first, err)
		}
		out[name] = data
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read columns of segment %d: %w", first, err)
	}
	return out, nil
}

// deleteSegmentsBefore drops the segments whose newest event is before
// cut (Unix nanoseconds), with their columns.
func (s *Store) deleteSegmentsBefore(ctx context.Context, cut int64) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("cannot delete segments: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "DELETE FROM hunt_columns WHERE segment IN (SELECT first FROM hunt_segments WHERE max_time < $1)", cut); err != nil {
		return fmt.Errorf("cannot delete segments: %w", err)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM hunt_segments WHERE max_time < $1", cut); err != nil {
		return fmt.Errorf("cannot delete segments: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("cannot delete segments: %w", err)
	}
	return nil
}
