package sigma

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect"
)

var (
	_ detect.Detector = (*Detector)(nil)
	_ detect.Ticker   = (*Detector)(nil)
)

// DetectorOptions configure a Detector.
type DetectorOptions struct {
	Logger *slog.Logger
	// Registerer receives the per-rule metrics (nil: not registered).
	Registerer prometheus.Registerer
	// MaxGroups and MaxEntries bound correlation state per rule and
	// partition (0: the defaults).
	MaxGroups, MaxEntries int
	// Clock stamps Alert.Created (nil: the system clock).
	Clock vigil.Clock
}

// Detector is the online Sigma detector: it evaluates a rule set on each
// event (routed by logsource or kind) and runs correlation rules with
// state kept per partition.
type Detector struct {
	rs      atomic.Pointer[RuleSet]
	log     *slog.Logger
	clock   vigil.Clock
	opts    DetectorOptions
	dropped dropCounters

	mu    sync.Mutex
	parts map[int]*partState
}

type partState struct {
	mu   sync.Mutex
	rs   *RuleSet
	m    *Matcher
	corr *correlator
	// dirty: the correlation windows changed since the last Snapshot.
	dirty bool
}

// NewDetector returns a detector running rs.
func NewDetector(rs *RuleSet, opts DetectorOptions) *Detector {
	d := &Detector{opts: opts, parts: map[int]*partState{}, log: opts.Logger, clock: opts.Clock}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("component", "sigma")
	if d.clock == nil {
		d.clock = vigil.SystemClock{}
	}
	d.rs.Store(rs)
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(&collector{d: d})
	}
	return d
}

// Name is "sigma".
func (d *Detector) Name() string { return "sigma" }

// RuleSet returns the rules in use.
func (d *Detector) RuleSet() *RuleSet { return d.rs.Load() }

// Swap replaces the rule set (a reload). Correlation windows of rules
// that keep their id carry over.
func (d *Detector) Swap(rs *RuleSet) {
	d.rs.Store(rs)
	d.log.Info("rules swapped", "rules", len(rs.Rules), "correlations", len(rs.Correlations))
}

func (d *Detector) part(p int) *partState {
	d.mu.Lock()
	defer d.mu.Unlock()
	ps := d.parts[p]
	if ps == nil {
		ps = &partState{}
		d.parts[p] = ps
	}
	return ps
}

// Detect evaluates the rules on ev and emits an alert per matching rule
// and per correlation that fires.
func (d *Detector) Detect(ctx context.Context, partition int, ev *vigil.Event, emit func(vigil.Alert)) {
	rs := d.rs.Load()
	ps := d.part(partition)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.rs != rs {
		var old checkpoint
		if ps.corr != nil {
			old = ps.corr.snapshot()
		}
		ps.rs, ps.m = rs, rs.NewMatcher()
		ps.m.keepIDs = true
		ps.corr = newCorrelator(d.opts.MaxGroups, d.opts.MaxEntries, &d.dropped)
		if old.Windows != nil {
			ps.corr.restore(rs, old)
		}
	}
	now := d.clock.Now()
	rs.MatchEvent(ps.m, ev, func(r *Rule) {
		if r.disabled.Load() {
			return
		}
		if !r.silent {
			a := eventAlert(r, ev, now)
			// Only a rule that fired is explained: its selections are
			// evaluated again on this one event.
			a.Explanation = rs.explainEvent(r, ps.m.ctx, ev)
			emit(a)
		}
		if len(r.feeds) > 0 {
			ps.dirty = true
			ps.corr.hit(ps.m, r, ev.Time, func(f corrFire) {
				if f.rule.disabled.Load() {
					return
				}
				a := corrAlert(f, now)
				a.DeviceID = ev.DeviceID
				if len(a.EventIDs) == 0 && ev.ID != "" {
					a.EventIDs = []string{ev.ID}
				}
				a.Entities = eventEntities(ev)
				// An excerpt of the event that made it fire; EventIDs
				// reference the others counted (the window's latest).
				a.Explanation.AddEvidence(vigil.ExcerptOf(ev, r.Fields...))
				emit(a)
			}, 0)
		}
	})
}

// Tick judges the windows of upper-bound correlations (lt, lte) that
// closed before now and emits their alerts.
func (d *Detector) Tick(ctx context.Context, now time.Time, emit func(vigil.Alert)) {
	d.mu.Lock()
	parts := make([]*partState, 0, len(d.parts))
	for _, p := range d.parts {
		parts = append(parts, p)
	}
	d.mu.Unlock()
	created := d.clock.Now()
	for _, p := range parts {
		p.mu.Lock()
		if p.corr != nil {
			p.corr.closeExpired(now, func(f corrFire) {
				if !f.rule.disabled.Load() {
					emit(corrAlert(f, created))
				}
			})
		}
		p.mu.Unlock()
	}
}

// ruleAlert is an alert of rule r with the members the rule decides
// (detector, rule id, title, severity, tags, techniques) and a count of
// one; the caller sets the rest.
func ruleAlert(r *Rule) vigil.Alert {
	return vigil.Alert{
		Detector:   "sigma",
		RuleID:     firstNonEmpty(r.ID, r.Name, r.Title),
		Title:      r.Title,
		Severity:   r.Severity,
		Tags:       r.Tags,
		Techniques: r.Techniques,
		Count:      1,
	}
}

// eventAlert is the alert of rule r on event ev.
func eventAlert(r *Rule, ev *vigil.Event, now time.Time) vigil.Alert {
	a := ruleAlert(r)
	a.ID, a.Created = vigil.NewID(), now
	a.DeviceID, a.Entities = ev.DeviceID, eventEntities(ev)
	a.FirstEventTime, a.LastEventTime = ev.Time, ev.Time
	a.Fields = map[string]any{"sigma.level": r.Level, "sigma.logsource": r.Logsource.String()}
	if ev.ID != "" {
		a.EventIDs = []string{ev.ID}
	}
	a.DedupKey = "sigma|" + a.RuleID + "|" + a.DeviceID
	// once_per: one alert per device and key (until it is cleared, unless
	// refire says window); the key's values are shown with the alert.
	for _, f := range r.OncePer {
		v, _ := ev.FieldString(f)
		a.Fields[f] = v
		if len(v) > maxKeyValue {
			// A device chooses the value: keep the key short enough for
			// any store's index.
			sum := sha256.Sum256([]byte(v))
			v = "sha256:" + hex.EncodeToString(sum[:])
		}
		a.DedupKey += "|" + f + "=" + v
	}
	a.UntilCleared = r.untilCleared()
	return a
}

// maxKeyValue is the longest field value put into a dedup key as it is;
// a longer one goes in as its SHA-256.
const maxKeyValue = 128

// corrAlert is the alert of a correlation that fired.
func corrAlert(f corrFire, now time.Time) vigil.Alert {
	r := f.rule
	a := ruleAlert(r)
	a.ID, a.Created = vigil.NewID(), now
	a.DeviceID, a.FirstEventTime, a.LastEventTime = f.device, f.first, f.last
	a.Fields = map[string]any{
		"sigma.correlation": r.Correlation.Type,
		"sigma.group":       f.group,
		"sigma.value":       f.value,
		"sigma.events":      f.count,
	}
	if a.Severity == 0 {
		a.Severity = vigil.SeverityMedium
	}
	a.DedupKey = "sigma|" + a.RuleID + "|" + f.group
	a.UntilCleared = r.untilCleared()
	// The events counted, as far as the window kept their ids.
	a.EventIDs = f.ids
	a.Explanation = explainCorr(f)
	return a
}

// entityFields are the event fields that name an alert's entities.
var entityFields = []struct{ field, kind string }{
	{"source.ip", "ip"}, {"destination.ip", "ip"}, {"user.name", "user"},
	{"host.name", "host"}, {"mqtt.client_id", "mqtt.client_id"}, {"process.executable", "process"},
}

func eventEntities(ev *vigil.Event) []string {
	var out []string
	for _, e := range entityFields {
		if v, ok := ev.FieldString(e.field); ok && v != "" {
			out = append(out, e.kind+":"+v)
		}
	}
	return out
}

// CorrelationStats returns the correlation state counters.
func (d *Detector) CorrelationStats() CorrStats {
	st := CorrStats{DroppedGroups: d.dropped.groups.load(), DroppedEntries: d.dropped.entries.load()}
	d.mu.Lock()
	parts := make([]*partState, 0, len(d.parts))
	for _, p := range d.parts {
		parts = append(parts, p)
	}
	d.mu.Unlock()
	for _, p := range parts {
		p.mu.Lock()
		if p.corr != nil {
			st.OpenWindows += p.corr.open()
		}
		p.mu.Unlock()
	}
	return st
}

// Checkpoint writes the correlation state (open windows of every
// partition) as JSON.
func (d *Detector) Checkpoint(w io.Writer) error {
	out := map[int]checkpoint{}
	d.mu.Lock()
	parts := make(map[int]*partState, len(d.parts))
	for k, p := range d.parts {
		parts[k] = p
	}
	d.mu.Unlock()
	for k, p := range parts {
		p.mu.Lock()
		if p.corr != nil {
			out[k] = p.corr.snapshot()
		}
		p.mu.Unlock()
	}
	if err := json.NewEncoder(w).Encode(out); err != nil {
		return fmt.Errorf("cannot write sigma checkpoint: %w", err)
	}
	return nil
}

// Restore reads a checkpoint written by Checkpoint; windows of rules that
// no longer exist are dropped.
func (d *Detector) Restore(r io.Reader) error {
	var in map[int]checkpoint
	if err := json.NewDecoder(r).Decode(&in); err != nil {
		return vigil.Errorf(vigil.EINVALID, "cannot read sigma checkpoint: %v", err)
	}
	rs := d.rs.Load()
	for k, cp := range in {
		p := d.part(k)
		p.mu.Lock()
		p.rs, p.m = rs, rs.NewMatcher()
		p.m.keepIDs = true
		p.corr = newCorrelator(d.opts.MaxGroups, d.opts.MaxEntries, &d.dropped)
		p.corr.restore(rs, cp)
		p.mu.Unlock()
	}
	return nil
}

// SetEnabled enables or disables the rules whose id, name or one of whose
// tags equals selector ("tag:" prefix optional for tags). It returns how
// many rules it changed.
func (rs *RuleSet) SetEnabled(selector string, on bool) int {
	sel := strings.TrimPrefix(selector, "tag:")
	n := 0
	for _, list := range [][]*Rule{rs.Rules, rs.Correlations} {
		for _, r := range list {
			hit := r.ID == selector || (r.Name != "" && r.Name == selector)
			for _, t := range r.Tags {
				hit = hit || strings.EqualFold(t, sel)
			}
			if hit {
				r.disabled.Store(!on)
				n++
			}
		}
	}
	return n
}

// collector exports per-rule counters to Prometheus at scrape time.
type collector struct{ d *Detector }

var (
	descMatches = prometheus.NewDesc("vigil_sigma_rule_matches_total", "Events matched by a Sigma rule.", []string{"rule_id"}, nil)
	descEval    = prometheus.NewDesc("vigil_sigma_rule_eval_seconds_total", "Estimated time spent evaluating a Sigma rule (sampled).", []string{"rule_id"}, nil)
	descWindows = prometheus.NewDesc("vigil_sigma_correlation_open_windows", "Open correlation windows.", nil, nil)
	descDropped = prometheus.NewDesc("vigil_sigma_correlation_dropped_total", "Correlation groups or events dropped at the memory cap.", []string{"what"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descMatches
	ch <- descEval
	ch <- descWindows
	ch <- descDropped
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	rs := c.d.rs.Load()
	for _, s := range rs.Stats() {
		id := firstNonEmpty(s.ID, s.Title)
		ch <- prometheus.MustNewConstMetric(descMatches, prometheus.CounterValue, float64(s.Matches), id)
		ch <- prometheus.MustNewConstMetric(descEval, prometheus.CounterValue, float64(s.EvalNanos)/1e9, id)
	}
	st := c.d.CorrelationStats()
	ch <- prometheus.MustNewConstMetric(descWindows, prometheus.GaugeValue, float64(st.OpenWindows))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(st.DroppedGroups), "groups")
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(st.DroppedEntries), "entries")
}
