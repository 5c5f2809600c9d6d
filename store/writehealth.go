package store

import (
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// WriteHealth remembers whether a store's last write of events failed, for
// the stores' WriteErr. The zero value is ready; it is safe for concurrent
// use.
type WriteHealth struct {
	mu    sync.Mutex
	err   error
	since time.Time
}

// Note records the outcome of a write of events: a failure is kept until
// a later write succeeds (logged on log when it does).
func (h *WriteHealth) Note(err error, log *slog.Logger) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil:
		if h.err != nil && log != nil {
			log.Info("store writes again", "failing_since", h.since)
		}
		h.err = nil
	case h.err == nil:
		h.err, h.since = err, time.Now()
	}
}

// Err returns the error of the last write of events when it failed, until
// a write succeeds again; nil when the last write succeeded.
func (h *WriteHealth) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		return nil
	}
	return fmt.Errorf("the last write failed (failing since %s): %w", h.since.UTC().Format(time.RFC3339), h.err)
}
