package sqlite

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

const commandCols = "seq, id, device_id, queued, expires, signed, taken, result, result_at, sent_by"

func scanCommand(sc interface{ Scan(...any) error }) (store.QueuedCommand, error) {
	var (
		c                                store.QueuedCommand
		queued, expires, taken, resultAt int64
	)
	if err := sc.Scan(&c.Seq, &c.ID, &c.DeviceID, &queued, &expires, &c.Signed, &taken, &c.Result, &resultAt, &c.By); err != nil {
		return store.QueuedCommand{}, err
	}
	c.Queued, c.Expires = time.Unix(0, queued).UTC(), time.Unix(0, expires).UTC()
	c.Taken, c.ResultAt = store.FromOptNanos(taken), store.FromOptNanos(resultAt)
	if len(c.Result) == 0 {
		c.Result = nil
	}
	return c, nil
}

// EnqueueCommand stores a pending command; see store.Commands. The count
// and the insert are one transaction on the single writer connection.
func (s *Store) EnqueueCommand(ctx context.Context, c store.QueuedCommand, maxPerDevice, maxTotal int) (store.QueuedCommand, error) {
	if err := store.CheckQueuedCommand(c); err != nil {
		return store.QueuedCommand{}, err
	}
	c.Queued, c.Expires, c.Taken, c.Result, c.ResultAt = c.Queued.UTC(), c.Expires.UTC(), time.Time{}, nil, time.Time{}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return store.QueuedCommand{}, fmt.Errorf("cannot queue command: %w", err)
	}
	defer tx.Rollback()
	now := store.Nanos(c.Queued)
	if maxPerDevice > 0 {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM commands WHERE device_id = ? AND taken = 0 AND expires > ?", c.DeviceID, now).Scan(&n); err != nil {
			return store.QueuedCommand{}, fmt.Errorf("cannot queue command: %w", err)
		}
		if n >= maxPerDevice {
			return store.QueuedCommand{}, vigil.Errorf(vigil.EBUSY, "%d commands already wait for device %s", n, c.DeviceID)
		}
	}
	if maxTotal > 0 {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM commands WHERE taken = 0 AND expires > ?", now).Scan(&n); err != nil {
			return store.QueuedCommand{}, fmt.Errorf("cannot queue command: %w", err)
		}
		if n >= maxTotal {
			return store.QueuedCommand{}, vigil.Errorf(vigil.EBUSY, "%d commands already wait for their devices: no more are queued until some are taken or expire", n)
		}
	}
	err = tx.QueryRowContext(ctx, "INSERT INTO commands(id, device_id, queued, expires, signed, sent_by) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING seq",
		c.ID, c.DeviceID, now, store.Nanos(c.Expires), c.Signed, c.By).Scan(&c.Seq)
	if isNoRows(err) {
		return store.QueuedCommand{}, vigil.Errorf(vigil.ECONFLICT, "a command with id %q is queued", c.ID)
	} else if err != nil {
		return store.QueuedCommand{}, fmt.Errorf("cannot queue command: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return store.QueuedCommand{}, fmt.Errorf("cannot queue command: %w", err)
	}
	s.cmdWatch.notify(c.DeviceID)
	return c, nil
}

// PendingCommands returns pending, unexpired commands; see store.Commands.
func (s *Store) PendingCommands(ctx context.Context, deviceID string, now time.Time, limit int) ([]store.QueuedCommand, error) {
	q := "SELECT " + commandCols + " FROM commands WHERE taken = 0 AND expires > ?"
	args := []any{store.Nanos(now)}
	if deviceID != "" {
		q += " AND device_id = ?"
		args = append(args, deviceID)
	}
	q += " ORDER BY seq"
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot list pending commands: %w", err)
	}
	defer rows.Close()
	var out []store.QueuedCommand
	for rows.Next() {
		c, err := scanCommand(rows)
		if err != nil {
			return nil, fmt.Errorf("cannot list pending commands: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list pending commands: %w", err)
	}
	return out, nil
}

// TakeCommands claims a device's pending commands in one conditional
// UPDATE on the single writer; see store.Commands.
func (s *Store) TakeCommands(ctx context.Context, deviceID string, now time.Time, limit int) ([]store.QueuedCommand, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	n := store.Nanos(now)
	rows, err := s.w.QueryContext(ctx, "UPDATE commands SET taken = ? WHERE seq IN (SELECT seq FROM commands WHERE device_id = ? AND taken = 0 AND expires > ? ORDER BY seq LIMIT ?) AND taken = 0 RETURNING "+commandCols,
		n, deviceID, n, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot take commands: %w", err)
	}
	defer rows.Close()
	var out []store.QueuedCommand
	for rows.Next() {
		c, err := scanCommand(rows)
		if err != nil {
			return nil, fmt.Errorf("cannot take commands: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot take commands: %w", err)
	}
	sortBySeq(out)
	return out, nil
}

// DeviceCommands lists a device's commands newest first on the index
// commands_device; see store.Commands.
func (s *Store) DeviceCommands(ctx context.Context, deviceID string, p store.Page) ([]store.QueuedCommand, string, error) {
	n, err := p.Size()
	if err != nil {
		return nil, "", err
	}
	q := "SELECT " + commandCols + " FROM commands WHERE device_id = ?"
	args := []any{deviceID}
	if p.Cursor != "" {
		seq, _, err := store.DecodeCursor(p.Cursor)
		if err != nil {
			return nil, "", err
		}
		q += " AND seq < ?"
		args = append(args, seq)
	}
	rows, err := s.r.QueryContext(ctx, q+" ORDER BY seq DESC LIMIT ?", append(args, n+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("cannot list the commands of %s: %w", deviceID, err)
	}
	defer rows.Close()
	var out []store.QueuedCommand
	for rows.Next() {
		c, err := scanCommand(rows)
		if err != nil {
			return nil, "", fmt.Errorf("cannot list the commands of %s: %w", deviceID, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("cannot list the commands of %s: %w", deviceID, err)
	}
	return store.CommandPage(out, n)
}

// GetCommand returns a command by id; see store.Commands.
func (s *Store) GetCommand(ctx context.Context, id string) (store.QueuedCommand, error) {
	c, err := scanCommand(s.r.QueryRowContext(ctx, "SELECT "+commandCols+" FROM commands WHERE id = ?", id))
	if isNoRows(err) {
		return store.QueuedCommand{}, store.NotFound("command", id)
	} else if err != nil {
		return store.QueuedCommand{}, fmt.Errorf("cannot get command %q: %w", id, err)
	}
	return c, nil
}

// RecordCommandResult stores a command's result; see store.Commands.
func (s *Store) RecordCommandResult(ctx context.Context, id string, result []byte, at time.Time) error {
	if len(result) == 0 || at.IsZero() {
		return vigil.Errorf(vigil.EINVALID, "a command result needs its bytes and a time")
	}
	res, err := s.w.ExecContext(ctx, "UPDATE commands SET result = ?, result_at = ? WHERE id = ?", result, store.Nanos(at), id)
	if err != nil {
		return fmt.Errorf("cannot record the result of command %q: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.NotFound("command", id)
	}
	return nil
}

// DeleteCommandsBefore removes commands expired before t; see
// store.Commands.
func (s *Store) DeleteCommandsBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := s.w.ExecContext(ctx, "DELETE FROM commands WHERE expires < ?", store.Nanos(t))
	if err != nil {
		return 0, fmt.Errorf("cannot delete old commands: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// WatchCommands calls fn for the commands enqueued through this Store (a
// SQLite file has one server); see store.Commands.
func (s *Store) WatchCommands(ctx context.Context, fn func(deviceID string)) error {
	w := s.cmdWatch.add()
	defer s.cmdWatch.remove(w)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case dev := <-w.ch:
			if w.missed.Swap(false) {
				fn("")
			}
			fn(dev)
		}
	}
}

// commandWatchers fans enqueued devices out to the WatchCommands calls.
type commandWatchers struct {
	mu   sync.Mutex
	subs map[*commandWatcher]struct{}
}

type commandWatcher struct {
	ch     chan string
	missed atomic.Bool // a device was dropped: the buffer was full
}

func (w *commandWatchers) add() *commandWatcher {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.subs == nil {
		w.subs = map[*commandWatcher]struct{}{}
	}
	c := &commandWatcher{ch: make(chan string, 256)}
	w.subs[c] = struct{}{}
	return c
}

func (w *commandWatchers) remove(c *commandWatcher) {
	w.mu.Lock()
	delete(w.subs, c)
	w.mu.Unlock()
}

// notify tells every watcher about a device without blocking; a watcher
// whose buffer is full is told "" (check every device) with its next one.
func (w *commandWatchers) notify(deviceID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for c := range w.subs {
		select {
		case c.ch <- deviceID:
		default:
			c.missed.Store(true)
		}
	}
}

func sortBySeq(cs []store.QueuedCommand) {
	slices.SortFunc(cs, func(a, b store.QueuedCommand) int { return cmp.Compare(a.Seq, b.Seq) })
}
