package store

import (
	"context"
	"time"

	"github.com/vigil-iot/vigil"
)

// Commands keeps the signed commands waiting for their devices (the
// enroll package's queue), shared by every node on one database: a command
// queued through one node is delivered by whichever node the device polls,
// once. The store keeps each command's signed bytes as given and does not
// read them; the device, id and expiry are given beside them.
type Commands interface {
	// EnqueueCommand stores a pending command and sets its Seq (queueing
	// order, increasing). EINVALID without an ID, a device, queue and
	// expiry times or signed bytes; ECONFLICT when its ID is stored; EBUSY
	// when maxPerDevice unexpired pending commands already wait for the
	// device at c.Queued, or maxTotal for all devices (0: no bound). The
	// per-device bound holds across nodes; the total bound may be passed
	// by the callers racing at that moment.
	EnqueueCommand(ctx context.Context, c QueuedCommand, maxPerDevice, maxTotal int) (QueuedCommand, error)
	// PendingCommands returns the commands not taken and expiring after
	// now, of one device (deviceID "" for all devices), oldest first (by
	// Seq), at most limit of them (0: all).
	PendingCommands(ctx context.Context, deviceID string, now time.Time, limit int) ([]QueuedCommand, error)
	// TakeCommands marks the pending commands of a device taken at now and
	// returns them, oldest first, at most limit (0: all). It is atomic
	// across nodes: a command is returned to exactly one caller, however
	// many poll the device at once.
	TakeCommands(ctx context.Context, deviceID string, now time.Time, limit int) ([]QueuedCommand, error)
	// DeviceCommands returns the commands of one device, pending, taken
	// or expired (until DeleteCommandsBefore removes them), with their
	// results, newest first (by Seq, descending), a page at a time: the
	// cursor it returns (empty after the last page) gives the next page
	// when passed in p.Cursor. EINVALID for a malformed cursor or a
	// negative limit.
	DeviceCommands(ctx context.Context, deviceID string, p Page) ([]QueuedCommand, string, error)
	// GetCommand returns a command by ID, pending, taken or expired, with
	// its result when one was recorded. ENOTFOUND when none.
	GetCommand(ctx context.Context, id string) (QueuedCommand, error)
	// RecordCommandResult stores the result of a command (replacing an
	// earlier one). ENOTFOUND when the command is not stored; EINVALID
	// for an empty result or a zero time.
	RecordCommandResult(ctx context.Context, id string, result []byte, at time.Time) error
	// DeleteCommandsBefore removes the commands that expired before t,
	// taken or not, with their results, and returns how many.
	DeleteCommandsBefore(ctx context.Context, t time.Time) (int64, error)
	// WatchCommands calls fn with the device of every command enqueued
	// from then on, through any handle on the database (any node), soon
	// after its enqueue is committed, until ctx ends; it then returns
	// ctx's error. When it may have missed some (its connection was lost
	// and restored), it calls fn("") so that callers check every device.
	// fn runs on WatchCommands' goroutine and must not block long. An
	// error other than ctx's means it cannot watch at all.
	WatchCommands(ctx context.Context, fn func(deviceID string)) error
}

// QueuedCommand is a signed command as queued.
type QueuedCommand struct {
	ID       string
	DeviceID string
	// Seq orders the queue; the store sets it on EnqueueCommand.
	Seq     int64
	Queued  time.Time
	Expires time.Time
	// Signed is the signed command (command.Signed as JSON), opaque here.
	Signed []byte
	// By is who asked for the command ("user:ana", "token:ci",
	// "action:<id>" for a response action); "" when not known. Stored as
	// given.
	By string
	// Taken is when a poll took the command; zero while it is pending.
	Taken time.Time
	// Result is the device's result (command.Result as JSON); nil while
	// none came.
	Result   []byte
	ResultAt time.Time
}

// CheckQueuedCommand checks what a store needs of a new queued command.
func CheckQueuedCommand(c QueuedCommand) error {
	if c.ID == "" || c.DeviceID == "" || c.Queued.IsZero() || c.Expires.IsZero() || len(c.Signed) == 0 {
		return vigil.Errorf(vigil.EINVALID, "a queued command needs an id, a device, queue and expiry times and its signed bytes")
	}
	return nil
}

// CommandPage cuts the rows a DeviceCommands query read (at most n+1,
// newest first) to a page of n and returns the cursor of the next page
// ("" when none): the implementations' shared tail.
func CommandPage(rows []QueuedCommand, n int) ([]QueuedCommand, string, error) {
	if len(rows) <= n {
		return rows, "", nil
	}
	rows = rows[:n]
	return rows, EncodeCursor(rows[n-1].Seq, ""), nil
}
