package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// eventCols are the columns PutEvents writes, in order.
const eventCols = "id, time, device_id, kind, source, category, action, outcome, severity, body"

const (
	numEventCols = 10
	// rowsPerInsert is how many events one INSERT statement carries: one
	// statement per row costs a round through database/sql per row.
	rowsPerInsert = 64
)

// insertStmts caches prepared multi-row INSERTs by row count on the writer.
type insertStmts struct {
	mu    sync.Mutex
	stmts map[int]*sql.Stmt
}

func (s *Store) insertEventsStmt(ctx context.Context, n int) (*sql.Stmt, error) {
	is := &s.inserts
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.stmts == nil {
		is.stmts = map[int]*sql.Stmt{}
	}
	if st, ok := is.stmts[n]; ok {
		return st, nil
	}
	var b strings.Builder
	b.WriteString("INSERT OR IGNORE INTO events(" + eventCols + ") VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?,?,?)")
	}
	st, err := s.w.PrepareContext(ctx, b.String())
	if err != nil {
		return nil, fmt.Errorf("cannot prepare event insert: %w", err)
	}
	is.stmts[n] = st
	return st, nil
}

func (s *Store) closeStmts() {
	is := &s.inserts
	is.mu.Lock()
	defer is.mu.Unlock()
	for _, st := range is.stmts {
		st.Close()
	}
	is.stmts = nil
}

// PutEvents stores events in one transaction; an id already stored is
// skipped. Events without an id or a time are not stored: the others are,
// and the error (EINVALID) names the bad ones by index.
func (s *Store) PutEvents(ctx context.Context, events []vigil.Event) error {
	if len(events) == 0 {
		return nil
	}
	// Every body goes into one buffer, turned into one string that the rows
	// slice: one allocation for the batch instead of one per event.
	var (
		buf   = make([]byte, 0, 512*len(events))
		ends  = make([]int, len(events))
		bad   []string
		valid = make([]bool, len(events))
	)
	for i := range events {
		e := &events[i]
		ends[i] = len(buf)
		switch {
		case e.ID == "":
			bad = append(bad, fmt.Sprintf("event %d: no id", i))
			continue
		case e.Time.IsZero():
			bad = append(bad, fmt.Sprintf("event %d (%s): no time", i, e.ID))
			continue
		}
		b, err := e.AppendJSON(buf, false)
		if err != nil {
			bad = append(bad, fmt.Sprintf("event %d (%s): %v", i, e.ID, err))
			continue
		}
		buf = b
		ends[i] = len(buf)
		valid[i] = true
	}
	bodies := string(buf)
	args := make([]any, 0, len(events)*numEventCols)
	from := 0
	for i := range events {
		if !valid[i] {
			from = ends[i]
			continue
		}
		e := &events[i]
		args = append(args, e.ID, store.Nanos(e.Time), e.DeviceID, e.Kind, e.Source, e.Category,
			e.Action, e.Outcome, int64(e.Severity), bodies[from:ends[i]])
		from = ends[i]
	}
	if n := len(args) / numEventCols; n > 0 {
		if err := s.submit(ctx, args, n); err != nil {
			return err
		}
	}
	if len(bad) > 0 {
		return vigil.Errorf(vigil.EINVALID, "cannot store %d of %d events: %s", len(bad), len(events), strings.Join(bad, "; "))
	}
	return nil
}

// Group commit. Concurrent PutEvents calls (one per bus partition) hand
// their rows to one committer goroutine, which writes every call waiting
// at that moment in one transaction: a commit costs about as much as
// writing a few hundred events, so merging small batches matters.

// maxGroupRows bounds the events of one merged transaction.
const maxGroupRows = 8192

// putRequest is one PutEvents call waiting for the committer.
type putRequest struct {
	args []any // numEventCols per row
	rows int
	done chan error // buffered: the committer never blocks on it
}

var errClosed = errors.New("sqlite store is closed")

// submit hands rows to the committer and waits until they are committed.
func (s *Store) submit(ctx context.Context, args []any, rows int) error {
	req := &putRequest{args: args, rows: rows, done: make(chan error, 1)}
	select {
	case s.reqs <- req:
	case <-s.quit:
		return errClosed
	case <-ctx.Done():
		return fmt.Errorf("cannot store events: %w", ctx.Err())
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		// The committer still writes them; the caller must assume not.
		return fmt.Errorf("cannot store events: %w", ctx.Err())
	}
}

// commitLoop is the committer: it runs until quit is closed, finishing
// the group it holds first.
func (s *Store) commitLoop() {
	defer close(s.committed)
	for {
		var first *putRequest
		select {
		case first = <-s.reqs:
		case <-s.quit:
			return
		}
		group := []*putRequest{first}
		rows := first.rows
	collect:
		for rows < maxGroupRows {
			select {
			case r := <-s.reqs:
				group = append(group, r)
				rows += r.rows
			default:
				break collect
			}
		}
		args := first.args
		if len(group) > 1 {
			args = make([]any, 0, rows*numEventCols)
			for _, r := range group {
				args = append(args, r.args...)
			}
		}
		start := time.Now()
		stored, err := s.insertEvents(context.Background(), args, rows)
		s.health.Note(err, s.log)
		if err == nil {
			s.eventsStored.Add(float64(stored))
			s.eventsDeduped.Add(float64(int64(rows) - stored))
			s.putSeconds.Observe(time.Since(start).Seconds())
			s.groupSize.Observe(float64(len(group)))
		}
		for _, r := range group {
			r.done <- err
		}
	}
}

func (s *Store) insertEvents(ctx context.Context, args []any, n int) (int64, error) {
	// Statements are prepared before the transaction takes the writer.
	var full, rest *sql.Stmt
	var err error
	if n >= rowsPerInsert {
		if full, err = s.insertEventsStmt(ctx, rowsPerInsert); err != nil {
			return 0, err
		}
	}
	if n%rowsPerInsert != 0 {
		if rest, err = s.insertEventsStmt(ctx, n%rowsPerInsert); err != nil {
			return 0, err
		}
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("cannot begin event insert: %w", err)
	}
	defer tx.Rollback()
	var stored int64
	for i := 0; i < n; i += rowsPerInsert {
		m := min(rowsPerInsert, n-i)
		st := full
		if m < rowsPerInsert {
			st = rest
		}
		res, err := tx.StmtContext(ctx, st).ExecContext(ctx, args[i*numEventCols:(i+m)*numEventCols]...)
		if err != nil {
			return 0, fmt.Errorf("cannot insert events: %w", err)
		}
		if k, err := res.RowsAffected(); err == nil {
			stored += k
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("cannot commit events: %w", err)
	}
	return stored, nil
}

// ListEvents returns events matching f, newest first (by Time, then by
// arrival), and the cursor of the next page.
func (s *Store) ListEvents(ctx context.Context, f store.EventFilter) ([]vigil.Event, string, error) {
	n, err := f.Page.Size()
	if err != nil {
		return nil, "", err
	}
	var (
		where []string
		args  []any
	)
	if f.DeviceID != "" {
		where = append(where, "device_id = ?")
		args = append(args, f.DeviceID)
	}
	if f.Kind != "" {
		where = append(where, "kind = ?")
		args = append(args, f.Kind)
	}
	if !f.Since.IsZero() {
		where = append(where, "time >= ?")
		args = append(args, store.Nanos(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "time < ?")
		args = append(args, store.Nanos(f.Until))
	}
	var (
		match []string
		margs []any
	)
	for name, value := range f.Fields {
		expr, fargs, err := fieldExpr(name)
		if err != nil {
			return nil, "", err
		}
		match = append(match, "coalesce("+expr+", '') = ?")
		margs = append(append(margs, fargs...), value)
	}
	if f.Cursor != "" {
		t, seq, err := store.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(time, seq) < (?, ?)")
		args = append(args, t, seq)
	}
	q := "SELECT seq, time, body FROM events"
	if len(match) > 0 {
		q = "SELECT * FROM events" // the field conditions read other columns
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY time DESC, seq DESC LIMIT ?"
	if len(match) > 0 {
		return s.listEventsScan(ctx, q, append(args, s.fieldScan), match, margs, n)
	}
	args = append(args, n+1)

	rows, err := s.r.QueryContext(ctx, q, args...)
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
		var body string
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

// listEventsScan runs a ListEvents with field filters: query (with its
// args) selects the candidate rows newest first, at most s.fieldScan of
// them; match are the field conditions, which read the body of each. The
// body comes back only for matching rows. When the scan ends without
// filling the page but may have stopped early, the cursor goes on from
// the last row read.
func (s *Store) listEventsScan(ctx context.Context, query string, args []any, match []string, margs []any, n int) ([]vigil.Event, string, error) {
	q := "SELECT seq, time, CASE WHEN " + strings.Join(match, " AND ") + " THEN body END FROM (" + query + ") ORDER BY time DESC, seq DESC"
	rows, err := s.r.QueryContext(ctx, q, append(margs, args...)...)
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
		var body sql.NullString
		if err := rows.Scan(&seq, &t, &body); err != nil {
			return nil, "", fmt.Errorf("cannot read event: %w", err)
		}
		if body.Valid && len(out) == n {
			more = true
			break
		}
		scanned++
		lastT, last = t, seq
		if !body.Valid {
			continue
		}
		e, err := decodeEvent(body.String)
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
// NULL when absent, following vigil.Event.Field and vigil.ValueString, and
// the arguments of its placeholders.
func fieldExpr(name string) (string, []any, error) {
	if name == "" || strings.ContainsAny(name, "\"\\") || strings.ContainsRune(name, 0) {
		return "", nil, vigil.Errorf(vigil.EINVALID, "bad field name %q in event filter", name)
	}
	switch name {
	case "event.id":
		return "id", nil, nil
	case "device.id":
		return "nullif(device_id, '')", nil, nil
	case "event.source", "source":
		return "nullif(source, '')", nil, nil
	case "event.kind", "kind":
		return "nullif(kind, '')", nil, nil
	case "event.category", "category":
		return "nullif(category, '')", nil, nil
	case "event.action", "action":
		return "nullif(action, '')", nil, nil
	case "event.outcome", "outcome":
		return "nullif(outcome, '')", nil, nil
	case "event.severity", "severity":
		return "nullif(CAST(severity AS TEXT), '0')", nil, nil
	}
	expr, args := jsonFieldExpr(name)
	// The 5-tuple comes first when the event has it, then Fields.
	switch name {
	case "network.transport":
		expr = "coalesce(nullif(json_extract(body, '$.network.transport'), ''), " + expr + ")"
	case "source.ip":
		expr = "coalesce(json_extract(body, '$.network.src_ip'), " + expr + ")"
	case "source.port":
		expr = "coalesce(CAST(nullif(json_extract(body, '$.network.src_port'), 0) AS TEXT), " + expr + ")"
	case "destination.ip":
		expr = "coalesce(json_extract(body, '$.network.dst_ip'), " + expr + ")"
	case "destination.port":
		expr = "coalesce(CAST(nullif(json_extract(body, '$.network.dst_port'), 0) AS TEXT), " + expr + ")"
	}
	return expr, args, nil
}

// jsonFieldExpr formats the value of Fields[name] as vigil.ValueString
// does: booleans as true/false, lists joined with commas. name has been
// checked to hold no quote or backslash, which a JSON path cannot quote.
func jsonFieldExpr(name string) (string, []any) {
	p := `$.fields."` + name + `"`
	return "(CASE json_type(body, ?)" +
			" WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN ''" +
			" WHEN 'array' THEN (SELECT coalesce(group_concat(value, ',' ORDER BY key), '') FROM json_each(body, ?))" +
			" ELSE CAST(json_extract(body, ?) AS TEXT) END)",
		[]any{p, p, p}
}

// GetEvent returns one event by id; ENOTFOUND when it is not stored.
func (s *Store) GetEvent(ctx context.Context, id string) (vigil.Event, error) {
	var body string
	err := s.r.QueryRowContext(ctx, "SELECT body FROM events WHERE id = ?", id).Scan(&body)
	if isNoRows(err) {
		return vigil.Event{}, store.NotFound("event", id)
	} else if err != nil {
		return vigil.Event{}, fmt.Errorf("cannot get event %q: %w", id, err)
	}
	return decodeEvent(body)
}

// deleteChunk bounds how many events one retention transaction removes,
// so that ingest is not held up behind a long delete.
const deleteChunk = 5000

// evidenceOfOpenAlerts selects the ids of the events that open alerts cite
// as evidence: alerts without an incident, or whose incident is open,
// contained or missing. Retention keeps them.
const evidenceOfOpenAlerts = `SELECT j.value FROM alerts a
	LEFT JOIN incidents i ON i.id = a.incident_id
	JOIN json_each(a.body, '$.event_ids') j
	WHERE a.incident_id = '' OR i.status IS NULL OR i.status IN ('open', 'contained')`

// DeleteEventsBefore removes events whose Time is before t, a chunk per
// transaction, and returns how many it removed. Events cited by open
// alerts stay (see store.Events).
func (s *Store) DeleteEventsBefore(ctx context.Context, t time.Time) (int64, error) {
	var total int64
	cut := store.Nanos(t)
	// Hunt segments go whole, once their newest event is past the cut.
	if err := s.deleteSegmentsBefore(ctx, cut); err != nil {
		return 0, err
	}
	for {
		res, err := s.w.ExecContext(ctx,
			"DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE time < ? AND id NOT IN ("+
				evidenceOfOpenAlerts+") LIMIT ?)", cut, deleteChunk)
		if err != nil {
			return total, fmt.Errorf("cannot delete events before %s: %w", t.Format(time.RFC3339), err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("cannot delete events before %s: %w", t.Format(time.RFC3339), err)
		}
		total += k
		if k < deleteChunk {
			// Retention runs periodically: a good time to refresh the
			// planner's statistics.
			if _, err := s.w.ExecContext(ctx, "PRAGMA optimize"); err != nil {
				s.log.Warn("cannot refresh query planner statistics", "err", err)
			}
			return total, nil
		}
	}
}

// CountEvents returns how many events are stored.
func (s *Store) CountEvents(ctx context.Context) (int64, error) {
	var n int64
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot count events: %w", err)
	}
	return n, nil
}

func decodeEvent(body string) (vigil.Event, error) {
	var e vigil.Event
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		return vigil.Event{}, fmt.Errorf("cannot decode stored event: %w", err)
	}
	store.NormalizeFields(e.Fields)
	return e, nil
}
