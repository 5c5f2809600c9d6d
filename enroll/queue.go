package enroll

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/vigil-iot/vigil/agent/command"
)

// QueueFile is the command queue's file name in the data directory.
const QueueFile = "commands.json"

// queueState is the queue file: the signed commands waiting for their
// device's next poll, oldest first. A command's device, id and expiry are
// read from its signed payload.
type queueState struct {
	Version  int              `json:"version"`
	Commands []command.Signed `json:"commands"`
}

// loadQueue reads the queue file: the unexpired commands per device (at
// most MaxPending each, the oldest kept), in their order. A missing file
// is an empty queue; an unreadable one is an error naming the file and
// the entry.
func loadQueue(path string, now time.Time) (map[string][]pending, []pending, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string][]pending{}, nil, nil
	}
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
	queues := map[string][]pending{}
	var order []pending
	for i, s := range st.Commands {
		var c command.Command
		if err := json.Unmarshal(s.Payload, &c); err != nil || c.ID == "" || c.DeviceID == "" {
			return nil, nil, fmt.Errorf("cannot read command queue %s: command %d: unreadable payload", path, i)
		}
		if !now.Before(c.Expires) || len(queues[c.DeviceID]) >= MaxPending {
			continue
		}
		p := pending{cmd: c, signed: s, seq: uint64(len(order) + 1)} // the file's order
		queues[c.DeviceID] = append(queues[c.DeviceID], p)
		order = append(order, p)
	}
	return queues, order, nil
}

// persistQueue saves the queue after a change: the queued, unexpired
// commands, written atomically (temporary file, fsync, rename). saveMu
// makes the writes happen in the order of the snapshots.
func (h *Handler) persistQueue() {
	if h.opts.QueueFile == "" {
		return
	}
	h.saveMu.Lock()
	defer h.saveMu.Unlock()
	h.mu.Lock()
	now := h.opts.Clock.Now()
	var live []pending
	for _, q := range h.queues {
		for _, p := range q {
			if now.Before(p.cmd.Expires) {
				live = append(live, p)
			}
		}
	}
	h.mu.Unlock()
	// Oldest first across devices, as they were queued (the map's order
	// is random).
	sort.Slice(live, func(i, j int) bool { return live[i].seq < live[j].seq })
	st := queueState{Version: 1, Commands: make([]command.Signed, 0, len(live))}
	for _, p := range live {
		st.Commands = append(st.Commands, p.signed)
	}
	b, err := json.Marshal(st)
	if err == nil {
		err = writeFileAtomic(h.opts.QueueFile, b, 0o600)
	}
	if err != nil {
		h.log.Error("cannot save the command queue: queued commands would not survive a restart", "file", h.opts.QueueFile, "err", err)
	}
}

// restoreQueue loads the queue file into a new handler and hands each
// restored command to OnQueued, as Send does.
func (h *Handler) restoreQueue() error {
	if h.opts.QueueFile == "" {
		return nil
	}
	queues, order, err := loadQueue(h.opts.QueueFile, h.opts.Clock.Now())
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.queues = queues
	for _, p := range order {
		h.remember(p.cmd.ID)
		h.issued[p.cmd.ID] = p.cmd
	}
	h.seq = uint64(len(order)) // new commands come after the restored ones
	h.mu.Unlock()
	if len(order) > 0 {
		h.log.Info("queued commands restored", "commands", len(order), "file", h.opts.QueueFile)
	}
	if h.opts.OnQueued != nil {
		for _, p := range order {
			h.opts.OnQueued(p.cmd.DeviceID, p.signed)
		}
	}
	return nil
}
