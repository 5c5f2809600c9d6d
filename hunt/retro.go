package hunt

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect/intel"
	"github.com/vigil-iot/vigil/detect/sigma"
	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/store"
)

// RetroSpec is what a retro-hunt runs and over which stored events (the
// job keeps a summary: vigil.RetroJobSpec).
type RetroSpec struct {
	// Rules is a Sigma rule set (nil: none).
	Rules *sigma.RuleSet
	// RulesName names it in the job ("builtin", a file name).
	RulesName string
	// Indicators are values (addresses, domains, hashes, user names, ...)
	// that any field of an event may hold.
	Indicators []string
	// IndicatorSource names where the indicators come from (a feed).
	IndicatorSource string
	// Intel are threat-intel indicators, matched as the live IOC detector
	// (detect/intel) matches them.
	Intel []feeds.Indicator
	// Since and Until bound the event times (zero: unbounded).
	Since, Until time.Time
}

// RetroJob is the state of a retro-hunt, as the store keeps it.
type RetroJob = vigil.RetroJob

// summary is what a job keeps of its spec.
func (spec RetroSpec) summary() vigil.RetroJobSpec {
	return vigil.RetroJobSpec{RulesName: spec.RulesName, Indicators: spec.Indicators, IndicatorSource: spec.IndicatorSource,
		IntelCount: len(spec.Intel), Since: spec.Since, Until: spec.Until}
}

// RetroSaveEvery is how often a running job writes its progress to the
// store; RetroStale is how long a running job may go without writing
// before it is shown as vigil.RetroInterrupted (the node running it
// stopped: jobs are not resumed).
const (
	RetroSaveEvery = 2 * time.Second
	RetroStale     = 2 * time.Minute
)

// retroBatch is how many stored events a retro-hunt reads at a time.
const retroBatch = 4096

// Retro runs retro-hunts as jobs: each reads the stored events in store
// order, runs the Sigma rules (correlations included) and the indicators
// on those in its time range, and publishes what fires as alerts marked
// Retro (Publish: the alerts stream, so they go through the normal alert
// stage).
type Retro struct {
	Src store.Analytics
	// Store keeps the jobs: the node running one writes its state there
	// as it progresses (every RetroSaveEvery), any node reads them.
	Store   store.RetroJobs
	Publish func(ctx context.Context, alerts []vigil.Alert) error
	Clock   vigil.Clock
	Log     *slog.Logger
	// Partitions is how many detector partitions (by device) and workers
	// a job uses (default: the number of cores, at most 8).
	Partitions int

	mu sync.Mutex // guards the running jobs' state
	wg sync.WaitGroup
}

// Start starts a job and returns its id; it runs until done or ctx ends
// (a job outlives the request that started it: give it the server's
// context).
func (r *Retro) Start(ctx context.Context, spec RetroSpec) (string, error) {
	if spec.Rules == nil && len(spec.Indicators) == 0 && len(spec.Intel) == 0 {
		return "", vigil.Errorf(vigil.EINVALID, "a retro-hunt needs rules or indicators")
	}
	if !spec.Since.IsZero() && !spec.Until.IsZero() && !spec.Since.Before(spec.Until) {
		return "", vigil.Errorf(vigil.EINVALID, "retro-hunt range: since %s is not before until %s", spec.Since.Format(time.RFC3339), spec.Until.Format(time.RFC3339))
	}
	total, err := r.Src.MaxEventSeq(ctx)
	if err != nil {
		return "", err
	}
	now := r.clock().Now().UTC()
	job := &RetroJob{ID: vigil.NewID(), Spec: spec.summary(), State: vigil.RetroRunning, Started: now, Updated: now, Total: total}
	if err := r.Store.PutRetroJob(ctx, *job); err != nil {
		return "", err
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		err := r.run(ctx, spec, job)
		r.mu.Lock()
		job.Finished = r.clock().Now().UTC()
		job.Updated = job.Finished
		if err != nil {
			job.State, job.Error = vigil.RetroFailed, err.Error()
			r.log().Warn("retro-hunt failed", "job", job.ID, "err", err)
		} else {
			job.State, job.Progress = vigil.RetroDone, 1
			r.log().Info("retro-hunt done", "job", job.ID, "events", job.Matched, "alerts", job.Alerts)
		}
		final := *job
		r.mu.Unlock()
		// The end is written even when ctx ended (the server stopping).
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := r.Store.PutRetroJob(sctx, final); err != nil {
			r.log().Warn("cannot store the end of a retro-hunt", "job", job.ID, "err", err)
		}
	}()
	return job.ID, nil
}

// Wait waits for every job started to end.
func (r *Retro) Wait() { r.wg.Wait() }

// Job returns the state of a job (any node's). ENOTFOUND when there is
// none.
func (r *Retro) Job(ctx context.Context, id string) (RetroJob, error) {
	j, err := r.Store.GetRetroJob(ctx, id)
	if err != nil {
		return j, err
	}
	return r.stale(j), nil
}

// Jobs returns the jobs (any node's), newest first.
func (r *Retro) Jobs(ctx context.Context) ([]RetroJob, error) {
	js, err := r.Store.ListRetroJobs(ctx, 0)
	for i := range js {
		js[i] = r.stale(js[i])
	}
	return js, err
}

// stale shows a running job that has not written for RetroStale as
// interrupted.
func (r *Retro) stale(j RetroJob) RetroJob {
	if j.State == vigil.RetroRunning && r.clock().Now().Sub(j.Updated) > RetroStale {
		j.State = vigil.RetroInterrupted
		j.Error = "no progress since " + j.Updated.Format(time.RFC3339) + ": the node running it stopped"
	}
	return j
}

// saveProgress writes a running job's state when RetroSaveEvery has
// passed since the last write (a failed write is logged: the job goes
// on).
func (r *Retro) saveProgress(ctx context.Context, job *RetroJob) {
	now := r.clock().Now().UTC()
	r.mu.Lock()
	if now.Sub(job.Updated) < RetroSaveEvery {
		r.mu.Unlock()
		return
	}
	job.Updated = now
	cur := *job
	r.mu.Unlock()
	if err := r.Store.PutRetroJob(ctx, cur); err != nil && ctx.Err() == nil {
		r.log().Warn("cannot store retro-hunt progress", "job", job.ID, "err", err)
	}
}

func (r *Retro) clock() vigil.Clock {
	if r.Clock == nil {
		return vigil.SystemClock{}
	}
	return r.Clock
}

func (r *Retro) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log.With("component", "hunt.retro")
}

func (r *Retro) run(ctx context.Context, spec RetroSpec, job *RetroJob) error {
	var det *sigma.Detector
	if spec.Rules != nil {
		det = sigma.NewDetector(spec.Rules, sigma.DetectorOptions{Clock: r.clock(), Logger: r.Log})
	}
	iocs := indicatorSet(spec.Indicators)
	var idet *intel.Detector
	if len(spec.Intel) > 0 {
		idet = intel.New(r.Log, nil)
		idet.Swap(intel.Build(spec.Intel))
	}
	var pending []vigil.Alert
	emit := func(a vigil.Alert) {
		a.Retro = true
		a.DedupKey = "retro|" + a.DedupKey
		pending = append(pending, a)
	}
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if err := r.Publish(ctx, pending); err != nil {
			return fmt.Errorf("cannot publish retro-hunt alerts: %w", err)
		}
		r.mu.Lock()
		job.Alerts += len(pending)
		r.mu.Unlock()
		pending = pending[:0]
		return nil
	}
	var lo, hi int64 = -1 << 63, 1<<63 - 1
	if !spec.Since.IsZero() {
		lo = spec.Since.UnixNano()
	}
	if !spec.Until.IsZero() {
		hi = spec.Until.UnixNano()
	}
	// Events are read as their stored JSON. With rules only, the Sigma
	// engine's JSON matcher tells first whether any rule (a correlation's
	// included) can use the event; only those are decoded and run
	// through the detector, which explains and correlates them.
	parts := r.partitions()
	ws := make([]retroWorker, parts)
	for w := range ws {
		if spec.Rules != nil && iocs == nil && idet == nil {
			ws[w].rs, ws[w].m = spec.Rules, spec.Rules.NewMatcher()
		}
		ws[w].fields = map[string]any{}
		ws[w].onHit = func(*sigma.Rule) { ws[w].hit = true }
	}
	// One goroutine reads batches from the store while this one matches
	// the previous batch.
	batches := make(chan *bodyBatch, 2)
	free := make(chan *bodyBatch, 3)
	for range 3 {
		free <- &bodyBatch{}
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	var rerr error
	go func() {
		defer close(batches)
		rerr = r.read(rctx, job.Total, lo, hi, free, batches)
	}()
	// Each batch in two parallel steps: the workers pick the events some
	// rule may use (every parts-th event each) and decode them; then each
	// runs the detectors on the events of its devices, in store order, in
	// its own partition of the detector, as live detection partitions by
	// device.
	hits := make([]*vigil.Event, retroBatch)
	for b := range batches {
		var (
			matched int64
			wg      sync.WaitGroup
		)
		clear(hits)
		for w := range ws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ws[w].pick(b, w, parts, lo, hi, hits)
			}()
		}
		wg.Wait()
		for w := range ws {
			if ws[w].err != nil {
				return ws[w].err
			}
			matched += ws[w].matched
			ws[w].matched = 0
		}
		now := r.clock().Now()
		for w := range ws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				wk := &ws[w]
				emitw := func(a vigil.Alert) { wk.alerts = append(wk.alerts, a) }
				for _, ev := range hits[:len(b.seqs)] {
					if ev == nil || retroPartition(ev.DeviceID, parts) != w {
						continue
					}
					if det != nil {
						det.Detect(ctx, w, ev, emitw)
					}
					if idet != nil {
						idet.Detect(ctx, w, ev, emitw)
					}
					if iocs != nil {
						if a, ok := indicatorAlert(ev, iocs, spec.IndicatorSource, now); ok {
							emitw(a)
						}
					}
				}
			}()
		}
		wg.Wait()
		for w := range ws {
			for _, a := range ws[w].alerts {
				emit(a)
			}
			ws[w].alerts = ws[w].alerts[:0]
		}
		r.mu.Lock()
		job.Scanned += int64(len(b.seqs))
		job.Matched += matched
		if job.Total > 0 {
			job.Progress = min(1, float64(b.after)/float64(job.Total))
		}
		r.mu.Unlock()
		free <- b
		if err := flush(); err != nil {
			return err
		}
		r.saveProgress(ctx, job)
	}
	if rerr != nil {
		return rerr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("retro-hunt stopped: %w", err)
	}
	if det != nil {
		// History has ended: upper-bound correlation windows are closed.
		det.Tick(ctx, time.Unix(0, 1<<62), emit)
	}
	return flush()
}

// indicatorSet normalizes indicators for lookup (lowercase; addresses in
// their canonical form); nil when there are none.
func indicatorSet(in []string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	m := make(map[string]string, len(in))
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		m[normIOC(s)] = s
	}
	return m
}

func normIOC(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().String()
	}
	return strings.ToLower(s)
}

// indicatorAlert is the alert of an event holding an indicator in any
// field.
func indicatorAlert(ev *vigil.Event, iocs map[string]string, source string, now time.Time) (vigil.Alert, bool) {
	check := func(name string, v any) (string, bool) {
		for _, e := range elems(valueOf(v)) {
			if ioc, ok := iocs[normIOC(e)]; ok {
				return ioc, true
			}
		}
		return "", false
	}
	names := append([]string(nil), fixedFields...)
	for k := range ev.Fields {
		names = append(names, k)
	}
	for _, name := range names {
		v, ok := ev.Field(name)
		if !ok {
			continue
		}
		if ioc, ok := check(name, v); ok {
			a := vigil.Alert{
				ID: vigil.NewID(), Detector: "intel", RuleID: "retro-indicator", Title: "Indicator found in stored history: " + ioc,
				Severity: vigil.SeverityHigh, DeviceID: ev.DeviceID, EventIDs: []string{ev.ID}, Count: 1,
				FirstEventTime: ev.Time, LastEventTime: ev.Time, Created: now,
				Fields:   map[string]any{"indicator": ioc, "indicator.field": name, "indicator.source": source},
				DedupKey: "intel|retro|" + ioc + "|" + ev.DeviceID,
			}
			return a, true
		}
	}
	return vigil.Alert{}, false
}

// bodyTime reads the time of a stored event from its JSON: the first
// "time" member, the event's own (it comes before "fields" both as Vigil
// encodes events and as PostgreSQL orders jsonb keys; a quote inside a
// string is escaped, so the pattern cannot start inside one).
func bodyTime(body []byte) (int64, bool) {
	i := bytes.Index(body, []byte(`"time":`))
	if i < 0 {
		return 0, false
	}
	rest := bytes.TrimLeft(body[i+7:], " ")
	if len(rest) == 0 || rest[0] != '"' {
		return 0, false
	}
	j := bytes.IndexByte(rest[1:], '"')
	if j < 0 {
		return 0, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[1:1+j]))
	if err != nil {
		return 0, false
	}
	return t.UnixNano(), true
}

// bodyBatch is a batch of stored events: bodies read from the row store,
// copied into one buffer, or rows of a segment rebuilt from its columns.
type bodyBatch struct {
	seqs  []int64
	ends  []int
	buf   []byte
	after int64 // the last sequence number read
	// A batch of segment rows: rows [lo, lo+len(seqs)) of re; bodyIdx
	// gives per row the body read for it from the row store (-1: none,
	// the row is rebuilt from the columns).
	re      *rowEvents
	lo      int
	bodyIdx []int
}

func (b *bodyBatch) reset() {
	b.seqs, b.ends, b.buf, b.bodyIdx, b.re, b.lo = b.seqs[:0], b.ends[:0], b.buf[:0], b.bodyIdx[:0], nil, 0
}

func (b *bodyBatch) add(seq int64, body []byte) {
	b.buf = append(b.buf, body...)
	b.seqs = append(b.seqs, seq)
	b.ends = append(b.ends, len(b.buf))
}

// addBody keeps a body without a row of its own (a segment row's).
func (b *bodyBatch) addBody(body []byte) int {
	b.buf = append(b.buf, body...)
	b.ends = append(b.ends, len(b.buf))
	return len(b.ends) - 1
}

func (b *bodyBatch) body(i int) []byte {
	from := 0
	if i > 0 {
		from = b.ends[i-1]
	}
	return b.buf[from:b.ends[i]:b.ends[i]]
}

// retroWorker is the state of one of a retro-hunt's parallel workers.
type retroWorker struct {
	rs      *sigma.RuleSet
	m       *sigma.Matcher // the prefilter (nil: every event is decoded)
	ev      vigil.Event    // a segment row the prefilter reads
	nw      vigil.Network
	fields  map[string]any
	hit     bool
	onHit   func(*sigma.Rule)
	parser  fastjson.Parser
	matched int64
	err     error
	alerts  []vigil.Alert
}

// pick decodes into hits the events of b, every parts-th from w, in the
// time range [lo, hi) that some rule may use.
func (wk *retroWorker) pick(b *bodyBatch, w, parts int, lo, hi int64, hits []*vigil.Event) {
	for i := w; i < len(b.seqs); i += parts {
		k := i
		if b.re != nil {
			if k = b.bodyIdx[i]; k < 0 {
				wk.pickRow(b, i, lo, hi, hits)
				continue
			}
		}
		seq, body := b.seqs[i], b.body(k)
		t, ok := bodyTime(body)
		if ok && (t < lo || t >= hi) {
			continue
		}
		if wk.m != nil && ok {
			wk.hit = false
			if _, err := wk.m.MatchLine(body, wk.onHit); err == nil && !wk.hit {
				wk.matched++
				continue
			}
		}
		ev, err := decodeEvent(&wk.parser, body)
		if err != nil {
			wk.err = fmt.Errorf("cannot decode stored event %d: %w", seq, err)
			return
		}
		if t := ev.Time.UnixNano(); t < lo || t >= hi {
			continue
		}
		wk.matched++
		hits[i] = &ev
	}
}

// pickRow is pick for row i of a segment batch, rebuilt from the
// columns: the prefilter reads the row in the worker's own event, and
// only a row some rule may use becomes an event of its own.
func (wk *retroWorker) pickRow(b *bodyBatch, i int, lo, hi int64, hits []*vigil.Event) {
	row := b.lo + i
	if t := b.re.seg.times[row]; t < lo || t >= hi {
		return
	}
	wk.matched++
	if wk.m == nil {
		hits[i] = b.re.event(row)
		return
	}
	b.re.fill(&wk.ev, row, wk.fields, &wk.nw)
	wk.hit = false
	if wk.rs.MatchEvent(wk.m, &wk.ev, wk.onHit); !wk.hit {
		return
	}
	hits[i] = own(&wk.ev) // a copy of the row the prefilter read
}

// partitions is how many partitions (and workers) a job uses.
func (r *Retro) partitions() int {
	if r.Partitions > 0 {
		return r.Partitions
	}
	return max(1, min(runtime.GOMAXPROCS(0), 8))
}

// retroPartition is the detector partition of a device's events.
func retroPartition(device string, parts int) int {
	h := fnv.New32a()
	h.Write([]byte(device))
	return int(h.Sum32() % uint32(parts))
}
