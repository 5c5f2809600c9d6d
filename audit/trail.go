package audit

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// ActionSeal is the record the server appends at start when the newest
// record carries no MAC (a trail written before the audit key existed):
// from it on, every record is sealed, and its MAC vouches for the older
// ones through the chain.
const ActionSeal = "audit.seal"

// TrailOptions configure a Trail.
type TrailOptions struct {
	// Key is the audit key (EnsureKey); the store must seal with the same
	// key. Nil checks no MAC.
	Key []byte
	// Sinks receive every anchor.
	Sinks []Sink
	// Last is the last anchor exported before this process started (read
	// back from the anchor file), if any.
	Last *Anchor
	// Clock tells the anchors' time (default: system clock).
	Clock vigil.Clock
	// Logger receives anchor and tamper logs (component=audit).
	Logger *slog.Logger
}

// Trail is the server's side of the audit trail: it seals a trail written
// before the key, exports anchors of the newest record, and verifies the
// trail against its last anchor. Anchors are also logged (msg "audit
// anchor"), so a JSON log is an anchor file too.
//
// An anchor is exported only after the records since the previous one
// were checked (link, hash, MAC) and the previously anchored record is
// still there with its hash: a truncated or rewritten trail is never
// anchored, and stays reported until an operator looks.
type Trail struct {
	st    store.Audit
	opts  TrailOptions
	clock vigil.Clock
	log   *slog.Logger

	mu     sync.Mutex // serializes Anchor
	last   Anchor     // guarded by mu
	broken string     // the first problem Anchor found; guarded by mu
}

// NewTrail returns a Trail on st.
func NewTrail(st store.Audit, opts TrailOptions) *Trail {
	t := &Trail{st: st, opts: opts, clock: opts.Clock, log: opts.Logger}
	if t.clock == nil {
		t.clock = vigil.SystemClock{}
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	t.log = t.log.With("component", "audit")
	if opts.Last != nil {
		t.last = *opts.Last
	}
	return t
}

// Seal appends an ActionSeal record when the newest record carries no MAC
// and a key is set. The store must seal it (opened with the same key).
func (t *Trail) Seal(ctx context.Context) error {
	if len(t.opts.Key) == 0 {
		return nil
	}
	last, err := t.newest(ctx)
	if err != nil || last.Seq == 0 || last.MAC != "" {
		return err
	}
	r, err := t.st.AppendAudit(ctx, vigil.AuditRecord{Time: t.clock.Now().UTC(), Actor: "vigil", Action: ActionSeal, Object: "audit",
		Detail: fmt.Sprintf("records 1 to %d were written before the audit key; this record's MAC vouches for them", last.Seq)})
	if err != nil {
		return fmt.Errorf("cannot seal the audit trail: %w", err)
	}
	if r.MAC == "" {
		return errors.New("cannot seal the audit trail: the store was opened without the audit key")
	}
	t.log.Info("audit trail sealed", "records", last.Seq)
	return nil
}

// newest returns the newest record (Seq 0 when the trail is empty).
func (t *Trail) newest(ctx context.Context) (vigil.AuditRecord, error) {
	var last vigil.AuditRecord
	after := t.Last().Seq
	if after > 0 {
		after-- // read the anchored record too
	}
	for {
		recs, err := t.st.ListAudit(ctx, after, pageSize)
		if err != nil {
			return last, fmt.Errorf("cannot read the audit trail: %w", err)
		}
		if len(recs) > 0 {
			last = recs[len(recs)-1]
		}
		if len(recs) < pageSize {
			return last, nil
		}
		after = last.Seq
	}
}

// Last returns the last anchor exported (or read back at start).
func (t *Trail) Last() Anchor {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// Anchor checks the records appended since the last anchor and, when the
// trail grew and holds, exports an anchor of its newest record to every
// sink (a failing sink is logged; the others still get it). It returns the
// last anchor. When the trail no longer holds the last anchor's record, or
// a newer record is broken, it exports nothing and returns an error naming
// the problem, every time, until the process restarts.
func (t *Trail) Anchor(ctx context.Context) (Anchor, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.broken != "" {
		return t.last, errors.New(t.broken)
	}
	prev := t.last
	after := prev.Seq
	if after > 0 {
		after--
	}
	var (
		newest   vigil.AuditRecord
		lastSeq  = after
		prevHash string
		first    = true
	)
	for {
		recs, err := t.st.ListAudit(ctx, lastSeq, pageSize)
		if err != nil {
			return t.last, fmt.Errorf("cannot read the audit trail: %w", err)
		}
		for i := range recs {
			r := &recs[i]
			if first && prev.Seq > 0 {
				first = false
				if r.Seq != prev.Seq {
					return t.last, t.fail(fmt.Sprintf("audit trail truncated: the last anchor names seq %d, which the trail no longer has", prev.Seq))
				}
				if r.Hash != prev.Hash {
					return t.last, t.fail(fmt.Sprintf("audit trail rewritten: seq %d is not the anchored record", prev.Seq))
				}
				prevHash, lastSeq, newest = r.Hash, r.Seq, *r
				continue
			}
			first = false
			if p, d := check(r, lastSeq, prevHash); p != "" {
				return t.last, t.fail(fmt.Sprintf("audit trail broken at seq %d (%s): %s", r.Seq, p, d))
			}
			if len(t.opts.Key) > 0 && r.MAC != "" && !hmac.Equal([]byte(r.MAC), []byte(r.ComputeMAC(t.opts.Key))) {
				return t.last, t.fail(fmt.Sprintf("audit trail rewritten: seq %d does not carry the audit key's MAC", r.Seq))
			}
			prevHash, lastSeq, newest = r.Hash, r.Seq, *r
		}
		if len(recs) < pageSize {
			break
		}
	}
	if first && prev.Seq > 0 {
		return t.last, t.fail(fmt.Sprintf("audit trail truncated: the last anchor names seq %d, which the trail no longer has", prev.Seq))
	}
	if newest.Seq <= prev.Seq {
		return t.last, nil
	}
	if len(t.opts.Key) > 0 && newest.MAC == "" {
		return t.last, t.fail(fmt.Sprintf("audit trail not sealed: seq %d carries no MAC (is the store opened with the audit key?)", newest.Seq))
	}
	a := AnchorOf(newest, t.clock.Now())
	t.last = a
	t.log.Info("audit anchor", "seq", a.Seq, "hash", a.Hash, "mac", a.MAC)
	for _, s := range t.opts.Sinks {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.Export(sctx, a)
		cancel()
		if err != nil {
			t.log.Error("cannot export audit anchor", "sink", s.Name(), "seq", a.Seq, "err", err)
		}
	}
	return a, nil
}

// fail remembers and logs the first problem. Callers hold t.mu.
func (t *Trail) fail(msg string) error {
	t.broken = msg
	t.log.Error("audit trail does not hold: no anchor exported until it is looked at", "problem", msg, "last_anchor_seq", t.last.Seq)
	return errors.New(msg)
}

// Verify verifies the whole trail with the key against the last anchor.
func (t *Trail) Verify(ctx context.Context) (Report, error) {
	o := VerifyOptions{Key: t.opts.Key}
	if a := t.Last(); a.Seq > 0 {
		o.Anchor = &a
	}
	return VerifyWith(ctx, t.st, o)
}

// Run anchors every interval until ctx ends, then once more (with a short
// deadline of its own) so that the last records of a clean stop are
// anchored too.
func (t *Trail) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = t.Anchor(sctx)
			cancel()
			return
		case <-tick.C:
			_, _ = t.Anchor(ctx) // problems are logged by fail
		}
	}
}
