package alert

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
)

// DefaultExceptionRefresh is how long the Excepter uses the exceptions it
// read before reading them again, when ExcepterOptions.Refresh is zero.
// Changes made through this process's API apply at once (Invalidate);
// those of another node within this delay.
const DefaultExceptionRefresh = 10 * time.Second

// ExceptionStore is what an Excepter reads exceptions and devices from and
// counts suppressed alerts in; store.Store is one.
type ExceptionStore interface {
	// ListExceptions returns every exception (store.Exceptions).
	ListExceptions(ctx context.Context) ([]vigil.Exception, error)
	// RecordSuppressed counts alerts an exception suppressed; ENOTFOUND
	// when it was deleted (store.Exceptions).
	RecordSuppressed(ctx context.Context, id string, n int64, at time.Time, what string) error
	// GetDevice returns a device, ENOTFOUND when unknown (store.Devices).
	GetDevice(ctx context.Context, id string) (vigil.Device, error)
}

// ExcepterOptions configure an Excepter. Zero values take the defaults.
type ExcepterOptions struct {
	// Clock tells when an exception expired (an exception applies while
	// the clock's now is before its Expires).
	Clock vigil.Clock
	// Refresh: see DefaultExceptionRefresh.
	Refresh time.Duration
	Logger  *slog.Logger
}

// Excepter keeps alerts that an exception (vigil.Exception) covers from
// being raised, and counts each in the exception it matched. It reads the
// exceptions from its store and keeps them for Refresh. Safe for
// concurrent use.
type Excepter struct {
	st      ExceptionStore
	clock   vigil.Clock
	refresh time.Duration
	log     *slog.Logger

	mu     sync.Mutex
	list   []vigil.Exception
	loaded time.Time // zero: read again
}

// NewExcepter returns an Excepter over st.
func NewExcepter(st ExceptionStore, opts ExcepterOptions) *Excepter {
	x := &Excepter{st: st, clock: opts.Clock, refresh: opts.Refresh, log: opts.Logger}
	if x.clock == nil {
		x.clock = vigil.SystemClock{}
	}
	if x.refresh <= 0 {
		x.refresh = DefaultExceptionRefresh
	}
	if x.log == nil {
		x.log = slog.New(slog.DiscardHandler)
	}
	x.log = x.log.With("component", "alert")
	return x
}

// Invalidate makes the next Match read the exceptions again: call it when
// one was created or deleted.
func (x *Excepter) Invalidate() {
	if x == nil {
		return
	}
	x.mu.Lock()
	x.loaded = time.Time{}
	x.mu.Unlock()
}

// exceptions returns the exceptions active at now, read again when stale.
func (x *Excepter) exceptions(ctx context.Context, now time.Time) ([]vigil.Exception, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.loaded.IsZero() || now.Sub(x.loaded) >= x.refresh || now.Before(x.loaded) {
		list, err := x.st.ListExceptions(ctx)
		if err != nil {
			return nil, fmt.Errorf("cannot read alert exceptions: %w", err)
		}
		x.list, x.loaded = list, now
	}
	var out []vigil.Exception
	for _, e := range x.list {
		if e.Active(now) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Match returns the exception that covers a at the clock's now, if any,
// and has counted a (a.Count alerts) in it. The first exception in store
// order that matches wins. A store error is returned (the caller retries);
// an exception deleted meanwhile does not match.
func (x *Excepter) Match(ctx context.Context, a *vigil.Alert) (vigil.Exception, bool, error) {
	if x == nil {
		return vigil.Exception{}, false, nil
	}
	now := x.clock.Now()
	list, err := x.exceptions(ctx, now)
	if err != nil {
		return vigil.Exception{}, false, err
	}
	var (
		dev    *vigil.Device
		devErr bool
	)
	for _, e := range list {
		if e.RuleID != a.RuleID {
			continue
		}
		if e.NeedsDevice() && dev == nil && !devErr && a.DeviceID != "" {
			d, err := x.st.GetDevice(ctx, a.DeviceID)
			switch {
			case vigil.ErrorCode(err) == vigil.ENOTFOUND:
				devErr = true
			case err != nil:
				return vigil.Exception{}, false, fmt.Errorf("cannot read device %s to match exceptions: %w", a.DeviceID, err)
			default:
				dev = &d
			}
		}
		if !e.Matches(a, dev, now) {
			continue
		}
		what := fmt.Sprintf("%s on %s: %s", a.RuleID, a.DeviceID, a.Title)
		err := x.st.RecordSuppressed(ctx, e.ID, int64(max(a.Count, 1)), now, vigil.CutValue(what))
		switch {
		case vigil.ErrorCode(err) == vigil.ENOTFOUND:
			x.Invalidate()
			continue
		case err != nil:
			return vigil.Exception{}, false, fmt.Errorf("cannot count alert %s in exception %s: %w", a.ID, e.ID, err)
		}
		x.log.Info("alert excepted", "alert", a.ID, "rule", a.RuleID, "device", a.DeviceID, "exception", e.ID, "scope", e.Scope())
		return e, true, nil
	}
	return vigil.Exception{}, false, nil
}
