package sqlite

import (
	"fmt"
	"sync"
	"time"
)

// writeHealth remembers whether the last write of events failed.
type writeHealth struct {
	mu    sync.Mutex
	err   error
	since time.Time
}

// noteWrite records the outcome of a write of events: a failure is kept
// until a later write succeeds.
func (s *Store) noteWrite(err error) {
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil:
		if h.err != nil {
			s.log.Info("store writes again", "failing_since", h.since)
		}
		h.err = nil
	case h.err == nil:
		h.err, h.since = err, time.Now()
	}
}

// WriteErr returns why the store cannot write events: the error of the
// last write, when it failed (a full disk, a read-only or removed file, an
// I/O error), until a write succeeds again. Nil when the last write
// succeeded. Writes come again when the event sink retries the batches
// it could not store, so the error clears by itself once the fault is
// gone. /readyz answers 503 while it is set.
func (s *Store) WriteErr() error {
	h := &s.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err == nil {
		return nil
	}
	return fmt.Errorf("the last write failed (failing since %s): %w", h.since.UTC().Format(time.RFC3339), h.err)
}
