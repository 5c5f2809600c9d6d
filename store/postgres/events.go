package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// insertEvents inserts a batch in one statement from column arrays; ids
// already stored with the same time, or twice in the batch, are skipped.
// PutEvents uses it when a COPY of the batch meets a duplicate.
const insertEvents = `
INSERT INTO events(id, time, device_id, kind, source, category, action, outcome, severity, body)
SELECT id, t, d, k, src, cat, act, o, sev, b
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int[], $10::text[])
	AS u(id, t, d, k, src, cat, act, o, sev, b)
ON CONFLICT (id, time) DO NOTHING`

// eventColumns are the columns PutEvents copies, in the order of its rows.
var eventColumns = []string{"id", "time", "device_id", "kind", "source", "category", "action", "outcome", "severity", "body"}

// copyBufs recycles the COPY text of batches (about 600 bytes an event).
var copyBufs = sync.Pool{New: func() any { return new([]byte) }}

// PutEvents stores events with COPY, or, when the batch holds an event
// already stored (a redelivery) or twice, with one INSERT that skips
// them: an event is a duplicate when its id is stored with the same time
// (events are partitioned by time, see partition.go). It creates the
// partitions of the batch's days first. Events without an id or a time are not stored: the others are,
// and the error (EINVALID) names the bad ones by index. NUL characters,
// which PostgreSQL cannot store, become U+FFFD.
//
// The batch is encoded once, straight into COPY's text format (the body
// by vigil.Event.AppendJSON); the INSERT, rare, takes its columns from
// the events again.
func (s *Store) PutEvents(ctx context.Context, events []vigil.Event) error {
	if len(events) == 0 {
		return nil
	}
	start := time.Now()
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	var (
		rows  = (*bp)[:0]
		times = make([]int64, 0, len(events))
		good  = make([]int, 0, len(events)) // indexes of the events stored
		ends  = make([]int, 0, len(events)) // end of each good event's body in bodies, for the INSERT and binary COPY
		body  []byte
		bad   []string
	)
	var bodies []byte // only for the INSERT and binary COPY paths
	for i := range events {
		e := &events[i]
		switch {
		case e.ID == "":
			bad = append(bad, fmt.Sprintf("event %d: no id", i))
			continue
		case e.Time.IsZero():
			bad = append(bad, fmt.Sprintf("event %d (%s): no time", i, e.ID))
			continue
		}
		var err error
		if body, err = appendEventJSON(body[:0], e); err != nil {
			bad = append(bad, fmt.Sprintf("event %d (%s): %v", i, e.ID, err))
			continue
		}
		t := store.Nanos(e.Time)
		good, times = append(good, i), append(times, t)
		if s.insertOnly || s.binaryCopy {
			bodies = append(bodies, body...)
			ends = append(ends, len(bodies))
			continue
		}
		rows = appendCopyText(rows, noNUL(e.ID))
		rows = append(rows, '\t')
		rows = strconv.AppendInt(rows, t, 10)
		for _, v := range [...]string{e.DeviceID, e.Kind, e.Source, e.Category, e.Action, e.Outcome} {
			rows = append(rows, '\t')
			rows = appendCopyText(rows, noNUL(v))
		}
		rows = append(rows, '\t')
		rows = strconv.AppendInt(rows, int64(e.Severity), 10)
		rows = append(rows, '\t')
		rows = appendCopyText(rows, unsafeString(body))
		rows = append(rows, '\n')
	}
	*bp = rows
	if len(good) > 0 {
		// columns gives the rows as column arrays, for the INSERT and the
		// binary COPY.
		columns := func() (ids, devs, kinds, srcs, cats, acts, outs []string, sevs []int32, bods []string) {
			if bodies == nil { // encoded for the text COPY only
				for _, i := range good {
					body, _ = appendEventJSON(body[:0], &events[i]) // no error the first time
					bodies = append(bodies, body...)
					ends = append(ends, len(bodies))
				}
			}
			from := 0
			for k, i := range good {
				e := &events[i]
				ids, devs, kinds = append(ids, noNUL(e.ID)), append(devs, noNUL(e.DeviceID)), append(kinds, noNUL(e.Kind))
				srcs, cats, acts = append(srcs, noNUL(e.Source)), append(cats, noNUL(e.Category)), append(acts, noNUL(e.Action))
				outs, sevs = append(outs, noNUL(e.Outcome)), append(sevs, int32(e.Severity))
				bods = append(bods, string(bodies[from:ends[k]]))
				from = ends[k]
			}
			return
		}
		stored, err := s.putRows(ctx, times, func() (int64, error) {
			if s.binaryCopy {
				ids, devs, kinds, srcs, cats, acts, outs, sevs, bods := columns()
				return s.pool.CopyFrom(ctx, pgx.Identifier{"events"}, eventColumns, pgx.CopyFromSlice(len(ids), func(i int) ([]any, error) {
					return []any{ids[i], times[i], devs[i], kinds[i], srcs[i], cats[i], acts[i], outs[i], sevs[i], bods[i]}, nil
				}))
			}
			return s.copyText(ctx, rows)
		}, func() (int64, error) {
			ids, devs, kinds, srcs, cats, acts, outs, sevs, bods := columns()
			tag, err := s.pool.Exec(ctx, insertEvents, ids, times, devs, kinds, srcs, cats, acts, outs, sevs, bods)
			return tag.RowsAffected(), err
		})
		if ctx.Err() == nil { // a cancelled write says nothing of the database
			s.health.Note(err, s.log)
		}
		if err != nil {
			return fmt.Errorf("cannot insert %d events: %w", len(good), err)
		}
		s.eventsStored.Add(float64(stored))
		s.eventsDeduped.Add(float64(int64(len(good)) - stored))
		s.putSeconds.Observe(time.Since(start).Seconds())
	}
	if len(bad) > 0 {
		return vigil.Errorf(vigil.EINVALID, "cannot store %d of %d events: %s", len(bad), len(events), strings.Join(bad, "; "))
	}
	return nil
}

// appendEventJSON appends the stored body of e: its JSON as encoding/json
// writes it (vigil.Event.AppendJSON, keys sorted), with NULs in strings
// replaced by U+FFFD (encodeJSON) since PostgreSQL's text and jsonb
// cannot hold them.
func appendEventJSON(b []byte, e *vigil.Event) ([]byte, error) {
	n := len(b)
	out, err := e.AppendJSON(b, true)
	if err != nil {
		return b[:n], err
	}
	if !bytes.Contains(out[n:], []byte(`\u0000`)) {
		return out, nil
	}
	s, err := encodeJSON(e)
	if err != nil {
		return b[:n], err
	}
	return append(out[:n], s...), nil
}

// unsafeString views b as a string for as long as b is not changed.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// putRows creates the partitions of the days of times, then stores the
// rows with copy, or with insert when copy meets a duplicate, and returns
// how many rows it stored.
func (s *Store) putRows(ctx context.Context, times []int64, copy, insert func() (int64, error)) (int64, error) {
	var days []int64
	for _, t := range times {
		if d := dayOf(t); !containsDay(days, d) {
			days = append(days, d)
		}
	}
	if err := s.ensurePartitions(ctx, days); err != nil {
		return 0, err
	}
	select {
	case s.writers <- struct{}{}:
		defer func() { <-s.writers }()
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if s.insertOnly {
		return insert()
	}
	n, err := copy()
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == uniqueViolation {
		return insert()
	}
	return n, err
}

// encodeJSON encodes v for a jsonb column: jsonb cannot hold \u0000, so
// NULs in strings become U+FFFD.
func encodeJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	if !bytes.Contains(b, []byte(`\u0000`)) {
		return string(b), nil
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", err
	}
	if b, err = json.Marshal(replaceNUL(doc)); err != nil {
		return "", err
	}
	return string(b), nil
}

func replaceNUL(v any) any {
	switch x := v.(type) {
	case string:
		return noNUL(x)
	case []any:
		for i := range x {
			x[i] = replaceNUL(x[i])
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[noNUL(k)] = replaceNUL(e)
		}
		return out
	}
	return v
}

// ListEvents returns events matching f, newest first (by Time, then by
// arrival), and the cursor of the next page.
func (s *Store) ListEvents(ctx context.Context, f store.EventFilter) ([]vigil.Event, string, error) {
	n, err := f.Page.Size()
	if err != nil {
		return nil, "", err
	}
	var q query
	if f.DeviceID != "" {
		q.and("device_id = " + q.arg(f.DeviceID))
	}
	if f.Kind != "" {
		q.and("kind = " + q.arg(f.Kind))
	}
	if !f.Since.IsZero() {
		q.and("time >= " + q.arg(store.Nanos(f.Since)))
	}
	if !f.Until.IsZero() {
		q.and("time < " + q.arg(store.Nanos(f.Until)))
	}
	var match []string
	for name, value := range f.Fields {
		expr, err := fieldExpr(&q, name)
		if err != nil {
			return nil, "", err
		}
		match = append(match, "coalesce("+expr+", '') = "+q.arg(value))
	}
	if f.Cursor != "" {
		t, seq, err := store.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		q.and("(time, seq) < (" + q.arg(t) + ", " + q.arg(seq) + "::bigint)")
	}
	if len(match) > 0 {
		return s.listEventsScan(ctx, &q, match, n)
	}
	sql := "SELECT seq, time, body FROM events" + q.whereClause() +
		" ORDER BY time DESC, seq DESC LIMIT " + q.arg(n+1)
	rows, err := s.pool.Query(ctx, sql, q.args...)
	if err != nil {
		return nil, "", fmt.Errorf("cannot list events: %w", err)
	}
	defer rows.Close()
	var (
		out           []vigil.Event
		lastT, lastSq int64
		more          bool
	)
	for rows.Next() {
		if len(out) == n {
			more = true
			break
		}
		var body []byte
		if err := rows.Scan(&lastSq, &lastT, &body); err != nil {
			return nil, "", fmt.Errorf("cannot read event: %w", err)
		}
		e, err := decodeEvent(body)
		if err != nil {
			return nil, "", err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("cannot list events: %w", err)
	}
	next := ""
	if more {
		next = store.EncodeCursor(lastT, fmt.Sprint(lastSq))
	}
	return out, next, nil
}

// listEventsScan runs a ListEvents with field filters: q selects the
// candidate rows, of which at most s.fieldScan are read newest first;
// match are the field conditions (their arguments in q). The body comes
// back only for matching rows. When the scan ends without filling the
// page but may have stopped early, the cursor goes on from the last row
// read.
func (s *Store) listEventsScan(ctx context.Context, q *query, match []string, n int) ([]vigil.Event, string, error) {
	// The body is text: the candidates carry it as jsonb for the field
	// conditions (fieldExpr) and as text to return.
	inner := "SELECT seq, time, id, device_id, kind, source, category, action, outcome, severity, body AS text, body::jsonb AS body FROM events" +
		q.whereClause() + " ORDER BY time DESC, seq DESC LIMIT " + q.arg(s.fieldScan)
	sql := "SELECT seq, time, CASE WHEN " + strings.Join(match, " AND ") + " THEN text END FROM (" + inner +
		") AS e ORDER BY time DESC, seq DESC"
	rows, err := s.pool.Query(ctx, sql, q.args...)
	if err != nil {
		return nil, "", fmt.Errorf("cannot list events: %w", err)
	}
	defer rows.Close()
	var (
		out                 []vigil.Event
		seq, t, lastT, last int64
		scanned             int
		more                bool
	)
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&seq, &t, &body); err != nil {
			return nil, "", fmt.Errorf("cannot read event: %w", err)
		}
		if body != nil && len(out) == n {
			more = true
			break
		}
		scanned++
		lastT, last = t, seq
		if body == nil {
			continue
		}
		e, err := decodeEvent(body)
		if err != nil {
			return nil, "", err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("cannot list events: %w", err)
	}
	if !more && scanned < s.fieldScan {
		return out, "", nil
	}
	// With more, the last row read before the extra match is the page's
	// last match or a non-matching row after it: going on from it skips
	// no match.
	return out, store.EncodeCursor(lastT, fmt.Sprint(last)), nil
}

// fieldExpr returns an SQL expression giving a field of an event as text,
// NULL when absent, following vigil.Event.Field and vigil.ValueString; body
// is the event's jsonb there (listEventsScan casts it).
func fieldExpr(q *query, name string) (string, error) {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return "", vigil.Errorf(vigil.EINVALID, "bad field name %q in event filter", name)
	}
	switch name {
	case "event.id":
		return "id", nil
	case "device.id":
		return "nullif(device_id, '')", nil
	case "event.source", "source":
		return "nullif(source, '')", nil
	case "event.kind", "kind":
		return "nullif(kind, '')", nil
	case "event.category", "category":
		return "nullif(category, '')", nil
	case "event.action", "action":
		return "nullif(action, '')", nil
	case "event.outcome", "outcome":
		return "nullif(outcome, '')", nil
	case "event.severity", "severity":
		return "nullif(severity::text, '0')", nil
	case "network.transport":
		return "coalesce(nullif(body->'network'->>'transport', ''), " + jsonFieldExpr(q, name) + ")", nil
	case "source.ip":
		return "coalesce(body->'network'->>'src_ip', " + jsonFieldExpr(q, name) + ")", nil
	case "source.port":
		return "coalesce(nullif(body->'network'->>'src_port', '0'), " + jsonFieldExpr(q, name) + ")", nil
	case "destination.ip":
		return "coalesce(body->'network'->>'dst_ip', " + jsonFieldExpr(q, name) + ")", nil
	case "destination.port":
		return "coalesce(nullif(body->'network'->>'dst_port', '0'), " + jsonFieldExpr(q, name) + ")", nil
	}
	return jsonFieldExpr(q, name), nil
}

// jsonFieldExpr formats Fields[name] as vigil.ValueString does: jsonb
// gives booleans as true/false and numbers in plain decimal, as Go does;
// lists are joined with commas here.
func jsonFieldExpr(q *query, name string) string {
	v := "(body->'fields'->" + q.arg(name) + "::text)"
	return "(CASE jsonb_typeof(" + v + ")" +
		" WHEN 'array' THEN (SELECT coalesce(string_agg(x, ',' ORDER BY o), '') FROM jsonb_array_elements_text(" + v + ") WITH ORDINALITY AS a(x, o))" +
		" WHEN 'null' THEN ''" +
		" ELSE " + v + " #>> '{}' END)"
}

// GetEvent returns one event by id; ENOTFOUND when it is not stored.
func (s *Store) GetEvent(ctx context.Context, id string) (vigil.Event, error) {
	var body []byte
	err := s.pool.QueryRow(ctx, "SELECT body FROM events WHERE id = $1", noNUL(id)).Scan(&body)
	if isNoRows(err) {
		return vigil.Event{}, store.NotFound("event", id)
	} else if err != nil {
		return vigil.Event{}, fmt.Errorf("cannot get event %q: %w", id, err)
	}
	return decodeEvent(body)
}

// deleteChunk bounds how many events one retention statement removes.
const deleteChunk = 10000

// evidenceOfOpenAlerts selects the ids of the events that open alerts cite
// as evidence: alerts without an incident, or whose incident is open,
// contained or missing. Retention keeps them.
const evidenceOfOpenAlerts = `SELECT jsonb_array_elements_text(a.body->'event_ids') FROM alerts a
	LEFT JOIN incidents i ON i.id = a.incident_id
	WHERE jsonb_typeof(a.body->'event_ids') = 'array'
	AND (a.incident_id = '' OR i.status IS NULL OR i.status IN ('open', 'contained'))`

// DeleteEventsBefore removes events whose Time is before t and returns
// how many it removed. Events cited by open alerts stay (see
// store.Events). The partitions of the days before t's day are dropped
// whole (partition.go); the events left before t (in the default
// partition, and in t's day unless Options.RetainWholeDays rounds t down
// to its day) are deleted a chunk per statement.
func (s *Store) DeleteEventsBefore(ctx context.Context, t time.Time) (int64, error) {
	var total int64
	cut := store.Nanos(t)
	if s.wholeDays {
		cut = dayOf(cut) * dayNanos
	}
	// Hunt segments go whole, once their newest event is past the cut.
	if err := s.deleteSegmentsBefore(ctx, cut); err != nil {
		return 0, err
	}
	days, err := s.dayPartitions(ctx)
	if err != nil {
		return 0, err
	}
	for _, d := range days {
		if (d+1)*dayNanos > cut {
			continue
		}
		n, err := s.dropPartition(ctx, d)
		if err != nil {
			return total, err
		}
		total += n
	}
	for {
		tag, err := s.pool.Exec(ctx,
			"DELETE FROM events WHERE time < $1 AND (seq, time) IN (SELECT seq, time FROM events WHERE time < $1 AND id NOT IN ("+
				evidenceOfOpenAlerts+") LIMIT $2)", cut, deleteChunk)
		if err != nil {
			return total, fmt.Errorf("cannot delete events before %s: %w", t.Format(time.RFC3339), err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < deleteChunk {
			break
		}
	}
	// Days pass: the partitions ahead follow.
	return total, s.ensurePartitions(ctx, nil)
}

// CountEvents returns how many events are stored.
func (s *Store) CountEvents(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot count events: %w", err)
	}
	return n, nil
}

func decodeEvent(body []byte) (vigil.Event, error) {
	var e vigil.Event
	if err := json.Unmarshal(body, &e); err != nil {
		return vigil.Event{}, fmt.Errorf("cannot decode stored event: %w", err)
	}
	store.NormalizeFields(e.Fields)
	return e, nil
}

// copyEvents copies rows in COPY's text format into the events table.
const copyEvents = "COPY events(id, time, device_id, kind, source, category, action, outcome, severity, body) FROM STDIN"

// copyText copies rows (COPY text format) into the events table and
// returns how many it stored.
func (s *Store) copyText(ctx context.Context, rows []byte) (int64, error) {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Release()
	tag, err := c.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(rows), copyEvents)
	return tag.RowsAffected(), err
}

// appendCopyText appends v escaped for COPY's text format: backslash,
// tab, newline and carriage return are escaped (NULs were replaced). The
// runs between them are appended whole.
func appendCopyText(b []byte, v string) []byte {
	for {
		i := 0
		for i < len(v) && !copySpecial[v[i]] {
			i++
		}
		if i == len(v) {
			return append(b, v...)
		}
		b = append(b, v[:i]...)
		switch v[i] {
		case '\\':
			b = append(b, '\\', '\\')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		}
		v = v[i+1:]
	}
}

// copySpecial marks the bytes appendCopyText escapes.
var copySpecial = [256]bool{'\\': true, '\t': true, '\n': true, '\r': true}

// uniqueViolation is PostgreSQL's SQLSTATE for a duplicate key.
const uniqueViolation = "23505"
