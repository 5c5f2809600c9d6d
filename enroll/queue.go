package enroll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/store"
)

// QueueFile is the name of the command queue file older versions kept in
// the data directory's enroll directory; ImportQueueFile moves it into
// the store.
const QueueFile = "commands.json"

// pruneEvery is how often Send removes the commands that expired more
// than CommandRetention ago.
const pruneEvery = time.Hour

// decodeQueued reads a queued command's signed bytes and payload.
func decodeQueued(q store.QueuedCommand) (command.Command, command.Signed, error) {
	var s command.Signed
	if err := json.Unmarshal(q.Signed, &s); err != nil {
		return command.Command{}, command.Signed{}, fmt.Errorf("cannot read queued command %s: %w", q.ID, err)
	}
	var c command.Command
	if err := json.Unmarshal(s.Payload, &c); err != nil {
		return command.Command{}, command.Signed{}, fmt.Errorf("cannot read queued command %s: %w", q.ID, err)
	}
	return c, s, nil
}

// take claims the device's pending commands in the store (once across
// every node); when there are none it returns a channel that wake closes.
// The channel is registered before the store is asked, so a command
// queued between the two is not missed.
func (h *Handler) take(ctx context.Context, deviceID string) ([]command.Signed, <-chan struct{}, error) {
	h.mu.Lock()
	ch, ok := h.waiters[deviceID]
	if !ok {
		ch = make(chan struct{})
		h.waiters[deviceID] = ch
	}
	h.mu.Unlock()
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	qs, err := h.opts.Commands.TakeCommands(sctx, deviceID, h.opts.Clock.Now().UTC(), MaxPending)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot take commands: %w", err)
	}
	out := make([]command.Signed, 0, len(qs))
	for _, q := range qs {
		_, s, err := decodeQueued(q)
		if err != nil {
			h.log.Error("queued command dropped", "device_id", deviceID, "command_id", q.ID, "err", err)
			continue
		}
		out = append(out, s)
	}
	if len(qs) > 0 {
		return out, nil, nil
	}
	return nil, ch, nil
}

// wake ends the long polls of a device on this node ("": of every device)
// so that they ask the store again.
func (h *Handler) wake(deviceID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if deviceID == "" {
		for dev, ch := range h.waiters {
			close(ch)
			delete(h.waiters, dev)
		}
		return
	}
	if ch, ok := h.waiters[deviceID]; ok {
		close(ch)
		delete(h.waiters, deviceID)
	}
}

// Run wakes this node's long polls when a command is queued through any
// node on the store (store.Commands.WatchCommands: PostgreSQL
// LISTEN/NOTIFY; in process for SQLite), until ctx ends. A command queued
// through this Handler wakes its polls without Run.
func (h *Handler) Run(ctx context.Context) error {
	err := h.opts.Commands.WatchCommands(ctx, h.wake)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("cannot watch the command queue: %w", err)
}

// handPending hands the pending commands of the store to OnQueued, as
// Send does, when a Handler starts: another transport (MQTT) delivers
// them again after a restart.
func (h *Handler) handPending() error {
	if h.opts.OnQueued == nil {
		return nil
	}
	ctx, cancel := storeCtx()
	defer cancel()
	qs, err := h.opts.Commands.PendingCommands(ctx, "", h.opts.Clock.Now().UTC(), 0)
	if err != nil {
		return fmt.Errorf("cannot read the command queue: %w", err)
	}
	for _, q := range qs {
		_, s, err := decodeQueued(q)
		if err != nil {
			h.log.Error("queued command skipped", "device_id", q.DeviceID, "command_id", q.ID, "err", err)
			continue
		}
		h.opts.OnQueued(q.DeviceID, s)
	}
	return nil
}

// prune removes, at most once per pruneEvery, the commands that expired
// more than CommandRetention before now.
func (h *Handler) prune(now time.Time) {
	last := h.lastPrune.Load()
	if now.UnixNano()-last < int64(pruneEvery) || !h.lastPrune.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	ctx, cancel := storeCtx()
	defer cancel()
	if n, err := h.opts.Commands.DeleteCommandsBefore(ctx, now.Add(-CommandRetention)); err != nil {
		h.log.Error("cannot remove old commands", "err", err)
	} else if n > 0 {
		h.log.Info("old commands removed", "commands", n, "expired_before", now.Add(-CommandRetention))
	}
}

// queueState is the queue file of older versions: the signed commands
// waiting for their device's next poll, oldest first. A command's device,
// id and expiry are read from its signed payload.
type queueState struct {
	Version  int              `json:"version"`
	Commands []command.Signed `json:"commands"`
}

// loadQueue reads a queue file: its commands, in their order, with their
// payloads. An unreadable one is an error naming the file and the entry.
func loadQueue(path string) ([]command.Command, []command.Signed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read command queue: %w", err)
	}
	var st queueState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, nil, fmt.Errorf("cannot read command queue %s: %w", path, err)
	}
	if st.Version != 1 {
		return nil, nil, fmt.Errorf("cannot read command queue %s: version %d, want 1", path, st.Version)
	}
	cmds := make([]command.Command, len(st.Commands))
	for i, s := range st.Commands {
		if err := json.Unmarshal(s.Payload, &cmds[i]); err != nil || cmds[i].ID == "" || cmds[i].DeviceID == "" || cmds[i].Expires.IsZero() {
			return nil, nil, fmt.Errorf("cannot read command queue %s: command %d: unreadable payload", path, i)
		}
	}
	return cmds, st.Commands, nil
}

// ImportQueueFile moves the unexpired commands of an older data dir's
// queue file (QueueFile) into st, in their order, and renames the file to
// path+ImportedSuffix so they are imported once. A missing file imports
// nothing; a command already in the store (same id) is skipped, and so
// are those beyond MaxPending for a device. It returns how many commands
// were added.
func ImportQueueFile(st store.Commands, path string, clock vigil.Clock) (int, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if clock == nil {
		clock = vigil.SystemClock{}
	}
	cmds, signed, err := loadQueue(path)
	if err != nil {
		return 0, err
	}
	ctx, cancel := storeCtx()
	defer cancel()
	now := clock.Now().UTC()
	added := 0
	for i, c := range cmds {
		if !now.Before(c.Expires) {
			continue
		}
		b, err := json.Marshal(signed[i])
		if err != nil {
			return added, fmt.Errorf("cannot import command %s: %w", c.ID, err)
		}
		issued := c.Issued
		if issued.IsZero() || issued.After(now) {
			issued = now
		}
		_, err = st.EnqueueCommand(ctx, store.QueuedCommand{ID: c.ID, DeviceID: c.DeviceID, Queued: issued.UTC(), Expires: c.Expires.UTC(), Signed: b}, MaxPending, 0)
		switch vigil.ErrorCode(err) {
		case "":
			added++
		case vigil.ECONFLICT, vigil.EBUSY:
		default:
			return added, fmt.Errorf("cannot import command %s from %s: %w", c.ID, path, err)
		}
	}
	if err := os.Rename(path, path+ImportedSuffix); err != nil {
		return added, fmt.Errorf("cannot rename imported command queue: %w", err)
	}
	return added, nil
}
