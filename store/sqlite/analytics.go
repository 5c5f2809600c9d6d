package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

var _ store.Analytics = (*Store)(nil)

// EventsAfter returns up to limit events with seq > after, in seq order.
func (s *Store) EventsAfter(ctx context.Context, after int64, limit int) ([]store.SeqEvent, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", after, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot read events after %d: %w", after, err)
	}
	defer rows.Close()
	var out []store.SeqEvent
	for rows.Next() {
		var (
			seq  int64
			body string
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
// after, in seq order.
func (s *Store) EventBodiesAfter(ctx context.Context, after int64, limit int, fn func(seq int64, body []byte) error) (int, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", after, limit)
	if err != nil {
		return 0, fmt.Errorf("cannot read events after %d: %w", after, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			seq  int64
			body sql.RawBytes
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
	if err := s.r.QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) FROM events").Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot read the last event seq: %w", err)
	}
	return n, nil
}

// PutSegment stores a segment and its columns in one transaction.
func (s *Store) PutSegment(ctx context.Context, sg store.Segment) error {
	if err := store.CheckSegment(sg); err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cannot store segment %d: %w", sg.First, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "DELETE FROM hunt_columns WHERE segment = ?", sg.First); err != nil {
		return fmt.Errorf("cannot store segment %d: %w", sg.First, err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO hunt_segments(first, last, min_time, max_time, rows, meta) VALUES (?,?,?,?,?,?)",
		sg.First, sg.Last, store.Nanos(sg.MinTime), store.Nanos(sg.MaxTime), sg.Rows, sg.Meta); err != nil {
		return fmt.Errorf("cannot store segment %d: %w", sg.First, err)
	}
	st, err := tx.PrepareContext(ctx, "INSERT INTO hunt_columns(segment, field, data) VALUES (?,?,?)")
	if err != nil {
		return fmt.Errorf("cannot store segment %d: %w", sg.First, err)
	}
	defer st.Close()
	for name, data := range sg.Columns {
		if _, err := st.ExecContext(ctx, sg.First, name, data); err != nil {
			return fmt.Errorf("cannot store column %q of segment %d: %w", name, sg.First, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot store segment %d: %w", sg.First, err)
	}
	return nil
}

// SealedSeq returns the greatest Last of the segments, 0 when none.
func (s *Store) SealedSeq(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, "SELECT coalesce(max(last), 0) FROM hunt_segments").Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot read the sealed seq: %w", err)
	}
	return n, nil
}

// Segments lists the segments overlapping [since, until), newest first.
func (s *Store) Segments(ctx context.Context, since, until time.Time) ([]store.SegmentInfo, error) {
	return s.segments(ctx, since, until, true)
}

// SegmentRanges is Segments without their headers (Meta nil, MetaSize
// set): a header is about 4 bytes an event, so listing 10 million events'
// segments with them reads some 40 MB. A hunt that keeps the decoded
// headers (hunt.Cache) lists them so and reads a header with SegmentMeta
// when it has not kept it.
func (s *Store) SegmentRanges(ctx context.Context, since, until time.Time) ([]store.SegmentInfo, error) {
	return s.segments(ctx, since, until, false)
}

// SegmentMeta returns the header of the segment starting at first;
// ENOTFOUND when there is none.
func (s *Store) SegmentMeta(ctx context.Context, first int64) ([]byte, error) {
	var meta []byte
	err := s.r.QueryRowContext(ctx, "SELECT meta FROM hunt_segments WHERE first = ?", first).Scan(&meta)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "segment %d not found", first)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read segment %d: %w", first, err)
	}
	return meta, nil
}

func (s *Store) segments(ctx context.Context, since, until time.Time, withMeta bool) ([]store.SegmentInfo, error) {
	// length() of a blob does not read it (SQLite reads the size from the
	// record header).
	q := "SELECT first, last, min_time, max_time, rows, length(meta), NULL FROM hunt_segments"
	if withMeta {
		q = "SELECT first, last, min_time, max_time, rows, length(meta), meta FROM hunt_segments"
	}
	var (
		where []string
		args  []any
	)
	if !since.IsZero() {
		where = append(where, "max_time >= ?")
		args = append(args, store.Nanos(since))
	}
	if !until.IsZero() {
		where = append(where, "min_time < ?")
		args = append(args, store.Nanos(until))
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.r.QueryContext(ctx, q+" ORDER BY first DESC", args...)
	if err != nil {
		return nil, fmt.Errorf("cannot list segments: %w", err)
	}
	defer rows.Close()
	var out []store.SegmentInfo
	for rows.Next() {
		var (
			si     store.SegmentInfo
			lo, hi int64
		)
		if err := rows.Scan(&si.First, &si.Last, &lo, &hi, &si.Rows, &si.MetaSize, &si.Meta); err != nil {
			return nil, fmt.Errorf("cannot read segment: %w", err)
		}
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
	q := "SELECT field, data FROM hunt_columns WHERE segment = ?"
	args := []any{first}
	if names != nil {
		if len(names) == 0 {
			return map[string][]byte{}, nil
		}
		q += " AND field IN (?" + strings.Repeat(",?", len(names)-1) + ")"
		for _, n := range names {
			args = append(args, n)
		}
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
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
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cannot delete segments: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "DELETE FROM hunt_columns WHERE segment IN (SELECT first FROM hunt_segments WHERE max_time < ?)", cut); err != nil {
		return fmt.Errorf("cannot delete segments: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM hunt_segments WHERE max_time < ?", cut); err != nil {
		return fmt.Errorf("cannot delete segments: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot delete segments: %w", err)
	}
	return nil
}
