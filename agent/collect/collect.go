package collect

import (
	"context"
	"path/filepath"
	"time"

	"github.com/vigil-iot/vigil/wire"
)

// Collector adds what it observes to a report. Collect must not keep r
// after it returns; it may add events, fill a section, or both. An error
// means this collector failed this time; the report still goes out with
// what the others added.
type Collector interface {
	Name() string
	Collect(ctx context.Context, r *wire.Report) error
}

// Env is what collectors share: the file system root they read /proc,
// /sys, /etc and /var under ("/" on a device, a testdata tree in tests)
// and the clock.
type Env struct {
	// Root prefixes every absolute path a collector reads (default "/").
	Root string
	// Now tells the time (default time.Now).
	Now func() time.Time
}

func (e Env) path(p string) string {
	if e.Root == "" || e.Root == "/" {
		return p
	}
	return filepath.Join(e.Root, p)
}

func (e Env) now() time.Time {
	if e.Now == nil {
		return time.Now().UTC()
	}
	return e.Now().UTC()
}

// Event kinds, categories and actions the collectors emit.
const (
	KindAuth    = "auth"
	KindProcess = "process"
	KindNetwork = "network"
	KindFile    = "file"
	KindSystem  = "system"
)

func newEvent(t time.Time, kind, category, action, outcome, severity string, f wire.Fields) wire.SecurityEvent {
	return wire.SecurityEvent{Time: t, Kind: kind, Category: category, Action: action, Outcome: outcome, Severity: severity, Fields: f}
}
