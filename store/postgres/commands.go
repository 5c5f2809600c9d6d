package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

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

// commandChannel is the NOTIFY channel of this schema's command queue
// (at most 63 bytes, PostgreSQL's identifier length).
func (s *Store) commandChannel() string {
	ch := "vigil_commands_" + s.schema
	if len(ch) > 63 {
		ch = ch[:63]
	}
	return ch
}

// EnqueueCommand stores a pending command; see store.Commands. One
// transaction holds an advisory lock of the device (so the per-device
// bound holds across nodes), counts, inserts and notifies the command's
// device on commandChannel, which PostgreSQL delivers at commit.
func (s *Store) EnqueueCommand(ctx context.Context, c store.QueuedCommand, maxPerDevice, maxTotal int) (store.QueuedCommand, error) {
	if err := store.CheckQueuedCommand(c); err != nil {
		return store.QueuedCommand{}, err
	}
	c.Queued, c.Expires, c.Taken, c.Result, c.ResultAt = c.Queued.UTC(), c.Expires.UTC(), time.Time{}, nil, time.Time{}
	c.ID, c.DeviceID = noNUL(c.ID), noNUL(c.DeviceID)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return store.QueuedCommand{}, fmt.Errorf("cannot queue command: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('vigil.commands/' || $1, 0))", c.DeviceID); err != nil {
		return store.QueuedCommand{}, fmt.Errorf("cannot lock the command queue of %s: %w", c.DeviceID, err)
	}
	now := store.Nanos(c.Queued)
	if maxPerDevice > 0 {
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM commands WHERE device_id = $1 AND taken = 0 AND expires > $2", c.DeviceID, now).Scan(&n); err != nil {
			return store.QueuedCommand{}, fmt.Errorf("cannot queue command: %w", err)
		}
		if n >= maxPerDevice {
			return store.QueuedCommand{}, vigil.Errorf(vigil.EBUSY, "%d commands already wait for device %s", n, c.DeviceID)
		}
	}
	if maxTotal > 0 {
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM commands WHERE taken = 0 AND expires > $1", now).Scan(&n); err != nil {
			return store.QueuedCommand{}, fmt.Errorf("cannot queue command: %w", err)
		}
		if n >= maxTotal {
			return store.QueuedCommand{}, vigil.Errorf(vigil.EBUSY, "%d commands already wait for their devices: no more are queued until some are taken or expire", n)
		}
	}
	err = tx.QueryRow(ctx, "INSERT INTO commands(id, device_id, queued, expires, signed, sent_by) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING seq",
		c.ID, c.DeviceID, now, store.Nanos(c.Expires), c.Signed, noNUL(c.By)).Scan(&c.Seq)
	if isNoRows(err) {
		return store.QueuedCommand{}, vigil.Errorf(vigil.ECONFLICT, "a command with id %q is queued", c.ID)
	} else if err != nil {
		return store.QueuedCommand{}, fmt.Errorf("cannot queue command: %w", err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", s.commandChannel(), c.DeviceID); err != nil {
		return store.QueuedCommand{}, fmt.Errorf("cannot queue command: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return store.QueuedCommand{}, fmt.Errorf("cannot queue command: %w", err)
	}
	return c, nil
}

func collectCommands(rows pgx.Rows, what string) ([]store.QueuedCommand, error) {
	defer rows.Close()
	var out []store.QueuedCommand
	for rows.Next() {
		c, err := scanCommand(rows)
		if err != nil {
			return nil, fmt.Errorf("cannot %s: %w", what, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot %s: %w", what, err)
	}
	return out, nil
}

// PendingCommands returns pending, unexpired commands; see store.Commands.
func (s *Store) PendingCommands(ctx context.Context, deviceID string, now time.Time, limit int) ([]store.QueuedCommand, error) {
	q := &query{}
	q.and("taken = 0")
	q.and("expires > " + q.arg(store.Nanos(now)))
	if deviceID != "" {
		q.and("device_id = " + q.arg(noNUL(deviceID)))
	}
	sql := "SELECT " + commandCols + " FROM commands" + q.whereClause() + " ORDER BY seq"
	if limit > 0 {
		sql += " LIMIT " + q.arg(limit)
	}
	rows, err := s.pool.Query(ctx, sql, q.args...)
	if err != nil {
		return nil, fmt.Errorf("cannot list pending commands: %w", err)
	}
	return collectCommands(rows, "list pending commands")
}

// TakeCommands claims a device's pending commands with one conditional
// UPDATE; see store.Commands. Of two nodes taking at once, the second
// waits for the first's row locks and then re-checks taken = 0 on the
// rows as updated (READ COMMITTED), so it skips what the first took.
func (s *Store) TakeCommands(ctx context.Context, deviceID string, now time.Time, limit int) ([]store.QueuedCommand, error) {
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	n := store.Nanos(now)
	rows, err := s.pool.Query(ctx, "UPDATE commands SET taken = $1 WHERE seq IN (SELECT seq FROM commands WHERE device_id = $2 AND taken = 0 AND expires > $1 ORDER BY seq LIMIT $3) AND taken = 0 RETURNING "+commandCols,
		n, noNUL(deviceID), lim)
	if err != nil {
		return nil, fmt.Errorf("cannot take commands: %w", err)
	}
	out, err := collectCommands(rows, "take commands")
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b store.QueuedCommand) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// DeviceCommands lists a device's commands newest first on the index
// commands_device; see store.Commands.
func (s *Store) DeviceCommands(ctx context.Context, deviceID string, p store.Page) ([]store.QueuedCommand, string, error) {
	n, err := p.Size()
	if err != nil {
		return nil, "", err
	}
	q := "SELECT " + commandCols + " FROM commands WHERE device_id = $1"
	args := []any{noNUL(deviceID)}
	if p.Cursor != "" {
		seq, _, err := store.DecodeCursor(p.Cursor)
		if err != nil {
			return nil, "", err
		}
		q += " AND seq < $2"
		args = append(args, seq)
	}
	q += fmt.Sprintf(" ORDER BY seq DESC LIMIT %d", n+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("cannot list the commands of %s: %w", deviceID, err)
	}
	out, err := collectCommands(rows, "list the commands of "+deviceID)
	if err != nil {
		return nil, "", err
	}
	return store.CommandPage(out, n)
}

// GetCommand returns a command by id; see store.Commands.
func (s *Store) GetCommand(ctx context.Context, id string) (store.QueuedCommand, error) {
	c, err := scanCommand(s.pool.QueryRow(ctx, "SELECT "+commandCols+" FROM commands WHERE id = $1", noNUL(id)))
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
	res, err := s.pool.Exec(ctx, "UPDATE commands SET result = $1, result_at = $2 WHERE id = $3", result, store.Nanos(at), noNUL(id))
	if err != nil {
		return fmt.Errorf("cannot record the result of command %q: %w", id, err)
	}
	if res.RowsAffected() == 0 {
		return store.NotFound("command", id)
	}
	return nil
}

// DeleteCommandsBefore removes commands expired before t; see
// store.Commands.
func (s *Store) DeleteCommandsBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := s.pool.Exec(ctx, "DELETE FROM commands WHERE expires < $1", store.Nanos(t))
	if err != nil {
		return 0, fmt.Errorf("cannot delete old commands: %w", err)
	}
	return res.RowsAffected(), nil
}

// watchRetry is the pause before WatchCommands reconnects.
const watchRetry = time.Second

// WatchCommands LISTENs on the schema's command channel on a connection
// of its own (not one of the pool's) and calls fn with each notified
// device; see store.Commands. When the connection fails it calls fn("")
// and reconnects after watchRetry, until ctx ends.
func (s *Store) WatchCommands(ctx context.Context, fn func(deviceID string)) error {
	first := true
	for {
		err := s.listen(ctx, fn, first)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		first = false
		s.log.Warn("command notifications lost: reconnecting", "err", err, "retry_in", watchRetry)
		fn("")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(watchRetry):
		}
	}
}

// listen runs one LISTEN connection until it fails. After a reconnect
// (not first) it calls fn("") once listening, since notifications sent
// meanwhile were lost.
func (s *Store) listen(ctx context.Context, fn func(string), first bool) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("cannot connect to listen: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.commandChannel()}.Sanitize()); err != nil {
		return fmt.Errorf("cannot listen for commands: %w", err)
	}
	if !first {
		fn("")
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return ctx.Err()
			}
			return err
		}
		fn(n.Payload)
	}
}
