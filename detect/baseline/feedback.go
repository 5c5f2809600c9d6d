package baseline

import (
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
)

// This file holds what reaches a detector from outside the detection
// stage: analyst feedback ("this is normal"), show and reset, and the
// dirty marks of checkpoints. Each takes the lock of the partitions it
// touches (part.mu), so it may run concurrently with Enrich and Detect.

// learnedField is the alert field that lists, for each finding of a
// novelty alert, the entity, the feature and the hash of the value, so
// that MarkNormal can fold exactly those values into a baseline.
const learnedField = "baseline.learned"

// learnedValues is the learnedField of a novelty alert.
func learnedValues(found []finding) []any {
	out := make([]any, 0, len(found))
	for _, f := range found {
		out = append(out, map[string]any{
			"entity":  f.e.key,
			"feature": families[f.o.fam].name,
			"value":   f.o.display(),
			"hash":    strconv.FormatUint(f.o.hash(), 16),
		})
	}
	return out
}

func (c *cohort) markNormal(h uint64) bool {
	if c.normal == nil {
		c.normal = make(map[uint64]struct{})
	}
	if _, ok := c.normal[h]; ok || len(c.normal) >= maxCohortValues {
		return false
	}
	c.normal[h] = struct{}{}
	return true
}

// cohortNormals are the values marked normal per cohort key, over all
// partitions: a cohort that appears in a partition after the feedback
// starts with them. Its lock is never held while taking a partition's.
type cohortNormals struct {
	mu sync.Mutex
	m  map[string]map[uint64]struct{}
}

func (n *cohortNormals) add(key string, h uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = make(map[string]map[uint64]struct{})
	}
	s := n.m[key]
	if s == nil {
		if len(n.m) >= maxCohorts {
			return
		}
		s = make(map[uint64]struct{})
		n.m[key] = s
	}
	if len(s) < maxCohortValues {
		s[h] = struct{}{}
	}
}

func (n *cohortNormals) addAll(key string, hs map[uint64]struct{}) {
	for h := range hs {
		n.add(key, h)
	}
}

func (n *cohortNormals) clear(key string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.m, key)
}

// apply marks normal in a new cohort c what was marked for its key.
func (n *cohortNormals) apply(c *cohort) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for h := range n.m[c.key] {
		c.markNormal(h)
	}
}

func sortedHashes(m map[uint64]struct{}) []uint64 {
	if len(m) == 0 {
		return nil
	}
	out := make([]uint64, 0, len(m))
	for h := range m {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Feedback says what MarkNormal changed.
type Feedback struct {
	// Entity is the device (or "ip:<address>") the alert was about.
	Entity string `json:"entity"`
	// Features are the features folded in (peer.out, rate.messages, ...).
	Features []string `json:"features"`
	// Cohorts are the cohorts the values were marked normal for (with
	// cohort scope only).
	Cohorts []string `json:"cohorts,omitempty"`
	// Partitions are the partitions whose state changed: a checkpoint
	// should save them now.
	Partitions []int `json:"partitions"`
}

// IsBaselineAlert reports whether a is an alert of this detector that
// MarkNormal can fold into a baseline.
func IsBaselineAlert(a vigil.Alert) bool {
	if a.Detector != Name || !strings.HasPrefix(a.RuleID, "baseline.") {
		return false
	}
	if a.RuleID == combinedRule {
		e, ok := a.Fields["baseline.entity"].(string)
		return ok && e != ""
	}
	if strings.HasPrefix(a.RuleID, "baseline.rate_") || strings.HasPrefix(a.RuleID, "baseline.telemetry_") || a.RuleID == twinRule {
		_, ok := a.Fields["baseline.observed"].(float64)
		return ok
	}
	l, ok := a.Fields[learnedField].([]any)
	return ok && len(l) > 0
}

// MarkNormal folds an alert of this detector into the baselines: "this
// is normal". For a novelty, each value of the alert is learned by its
// entity (it was when seen; it is again after a reset) and, with cohort,
// marked normal for the entity's cohort, so no member raises it again: in
// every partition that has the cohort, and in those where it appears
// later.
// For a rate, the entity's rate baseline is widened so that twice the
// count the alert observed (its window was still filling) is within its
// bound (a device judged by its cohort then gets its
// own rate baseline, from the cohort's); with cohort, the cohort's is
// widened too. Drift narrows them again if the rate does not come back.
//
// It applies to every partition that knows the entity (a receiver known
// by address may be in several). ENOTFOUND when none does; EINVALID for an
// alert of another detector or without the fields it needs, and for
// cohort scope on the unclassified cohort (it is not a cohort of alike
// devices: marking a value normal there would hide it everywhere).
func (d *Detector) MarkNormal(a vigil.Alert, cohortToo bool) (Feedback, error) {
	if !IsBaselineAlert(a) {
		return Feedback{}, vigil.Errorf(vigil.EINVALID, "alert %s is not an alert of the learned baseline that can be marked normal (rule %q)", a.ID, a.RuleID)
	}
	type item struct {
		entity, feature string
		hash            uint64
		metric          int
		x               float32
		v               float64 // a twin parameter's value
	}
	var items []item
	if a.RuleID == twinRule {
		feat, _ := a.Fields["baseline.feature"].(string)
		ent, _ := a.Fields["baseline.entity"].(string)
		v, _ := a.Fields["baseline.observed"].(float64)
		if !strings.HasPrefix(feat, "twin.") || ent == "" || math.IsNaN(v) || math.IsInf(v, 0) {
			return Feedback{}, vigil.Errorf(vigil.EINVALID, "alert %s: twin alert without a parameter, entity and value", a.ID)
		}
		items = append(items, item{entity: ent, feature: feat, metric: -4, v: v})
	} else if a.RuleID == combinedRule {
		ent, _ := a.Fields["baseline.entity"].(string)
		items = append(items, item{entity: ent, feature: "rate.combined", metric: -3})
	} else if strings.HasPrefix(a.RuleID, "baseline.telemetry_") {
		feat, _ := a.Fields["baseline.feature"].(string)
		ent, _ := a.Fields["baseline.entity"].(string)
		x, _ := a.Fields["baseline.observed"].(float64)
		if !strings.HasPrefix(feat, "telemetry.") || ent == "" || math.IsNaN(x) || math.Abs(x) > math.MaxFloat32 {
			return Feedback{}, vigil.Errorf(vigil.EINVALID, "alert %s: telemetry alert without a feature, entity and observed value", a.ID)
		}
		items = append(items, item{entity: ent, feature: feat, metric: -2, x: float32(x)})
	} else if strings.HasPrefix(a.RuleID, "baseline.rate_") {
		feat, _ := a.Fields["baseline.feature"].(string)
		ent, _ := a.Fields["baseline.entity"].(string)
		x, _ := a.Fields["baseline.observed"].(float64)
		m := -1
		for i, mp := range metrics {
			if feat == "rate."+mp.name {
				m = i
			}
		}
		if m < 0 || ent == "" || math.IsNaN(x) || x < 0 || x > math.MaxFloat32 {
			return Feedback{}, vigil.Errorf(vigil.EINVALID, "alert %s: rate alert without a known feature, entity and observed value", a.ID)
		}
		items = append(items, item{entity: ent, feature: feat, metric: m, x: float32(x)})
	} else {
		for i, v := range a.Fields[learnedField].([]any) {
			mv, _ := v.(map[string]any)
			ent, _ := mv["entity"].(string)
			feat, _ := mv["feature"].(string)
			hs, _ := mv["hash"].(string)
			h, err := strconv.ParseUint(hs, 16, 64)
			if ent == "" || feat == "" || err != nil || h == 0 {
				return Feedback{}, vigil.Errorf(vigil.EINVALID, "alert %s: %s item %d is not an entity, feature and hash", a.ID, learnedField, i)
			}
			items = append(items, item{entity: ent, feature: feat, hash: h, metric: -1})
		}
	}
	fb := Feedback{Entity: items[0].entity}
	if e, ok := a.Fields["baseline.entity"].(string); ok && e != "" {
		fb.Entity = e
	}
	seenFeat := map[string]bool{}
	for _, it := range items {
		if !seenFeat[it.feature] {
			seenFeat[it.feature] = true
			fb.Features = append(fb.Features, it.feature)
		}
	}
	cohorts := map[string]bool{}
	found := false
	for _, n := range d.Partitions() {
		p := d.part(n)
		p.mu.Lock()
		changed := false
		for _, it := range items {
			e := p.lookup(it.entity)
			if e == nil {
				continue
			}
			if cohortToo && e.cohort.key == unclassified {
				p.mu.Unlock()
				return Feedback{}, vigil.Errorf(vigil.EINVALID, "%s is in the unclassified cohort: mark it normal for the device only", it.entity)
			}
			found, changed = true, true
			if it.metric == -4 {
				// The value set is normal for the device: its range
				// takes it in.
				p.learnParam(e, strings.TrimPrefix(it.feature, "twin."), it.v)
			} else if it.metric == -3 {
				// The device's rates together are normal: its gate closes,
				// and reopens only if, for about a week (ln of twice the
				// windows a day, in days), its windows seldom reach the
				// threshold (multivar.go). The single metrics judge on.
				e.mv.rate, e.mv.n = 1, max(e.mv.n, minSamples)
			} else if it.metric == -2 {
				if !p.widenGauge(e, it.feature, it.x) {
					p.mu.Unlock()
					return Feedback{}, vigil.Errorf(vigil.EINVALID, "alert %s: unknown telemetry feature %q", a.ID, it.feature)
				}
			} else if it.metric >= 0 {
				p.widen(e, metric(it.metric), it.x, cohortToo)
			} else {
				p.learnValue(e, it.feature, it.hash)
				if cohortToo {
					e.cohort.markNormal(it.hash)
					d.norms.add(e.cohort.key, it.hash)
				}
			}
			if cohortToo {
				cohorts[e.cohort.key] = true
			}
		}
		if changed {
			p.dirty = true
			fb.Partitions = append(fb.Partitions, n)
		}
		p.mu.Unlock()
	}
	if !found {
		return Feedback{}, vigil.Errorf(vigil.ENOTFOUND, "no baseline for %s on this server (evicted, or never seen)", fb.Entity)
	}
	for c := range cohorts {
		fb.Cohorts = append(fb.Cohorts, c)
	}
	sort.Strings(fb.Cohorts)
	return fb, nil
}

// lookup returns the entity of a key (a device id or "ip:<address>").
func (p *part) lookup(key string) *entity {
	if ip, ok := strings.CutPrefix(key, "ip:"); ok {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return nil
		}
		return p.ipents[a]
	}
	return p.ents[key]
}

// learnValue makes sure e has learned the value hash h of a feature.
func (p *part) learnValue(e *entity, feature string, h uint64) {
	if feature == families[famSoftware].name {
		if e.soft == nil {
			e.soft = &softSet{}
		}
		e.soft.add(h)
		return
	}
	if e.has(h) {
		return
	}
	fam := -1
	for i, f := range families {
		if f.name == feature {
			fam = i
		}
	}
	if fam < 0 || int(e.fcount[fam]) >= p.opts.MaxPerFamily || len(e.vals) >= p.opts.MaxValues {
		return
	}
	// A new slice: a snapshot may share the old one.
	vals := make([]uint64, len(e.vals), len(e.vals)+1)
	copy(vals, e.vals)
	e.vals = append(vals, h)
	e.fcount[fam]++
	p.countCohort(e.cohort, h)
}

// widen widens the rate baseline of e (and, with cohortToo, of its cohort)
// for metric m so that twice x is within its bound: x is the count when the
// alert was raised, while its window was still filling.
func (p *part) widen(e *entity, m metric, x float32, cohortToo bool) {
	k := float32(p.opts.K)
	c := e.cohort
	h := &e.hist[m]
	if h.n < minSamples {
		// Judged by the cohort so far: the device gets its own baseline,
		// from the cohort's.
		n := h.n
		*h = c.hist[m]
		h.n = max(n, minSamples)
	}
	x *= 2
	widenStat(h, x, k, metrics[m])
	if e.seas != nil {
		// The profile of the metric starts again: the flat baseline,
		// widened, judges until it has a week (season.go).
		e.seas[m] = nil
	}
	if cohortToo && c.hist[m].n > 0 {
		widenStat(&c.hist[m], x, k, metrics[m])
	}
}

func widenStat(h *ewStat, x, k float32, mp metricParams) {
	if x <= bound(h.med, h.mad, k, mp) {
		return
	}
	// bound ≥ med + k × 1.4826 × mad; a margin of 1 % keeps x inside.
	h.mad = max(h.mad, (x-h.med)/(k*madScale)*1.01)
}

// Kind says what a name given to Show or Reset is.
type Kind string

// Kinds of names.
const (
	KindDevice Kind = "device"
	KindCohort Kind = "cohort"
)

// DeviceView is what a partition knows of a device, for `vigil baseline
// show`. Learned values are kept as hashes: the view counts them per
// feature; alerts name them.
type DeviceView struct {
	Partition      int                 `json:"partition"`
	Key            string              `json:"key"`
	Cohort         string              `json:"cohort"`
	First          time.Time           `json:"first"`
	Last           time.Time           `json:"last"`
	LearnedSeconds float64             `json:"learned_seconds"`
	Events         uint32              `json:"events"`
	JudgedAgainst  string              `json:"judged_against"` // device, cohort, or learning
	Values         map[string]int      `json:"values"`         // feature → values learned
	Rates          map[string]RateView `json:"rates"`
	// Telemetry are the baselines of the health metrics the device's agent
	// samples (by gauge name), and Custom how many custom metrics it
	// judges (they are kept by the hash of their name).
	Telemetry map[string]GaugeView `json:"telemetry,omitempty"`
	Custom    int                  `json:"custom_metrics,omitempty"`
}

// GaugeView is the baseline of one health metric.
type GaugeView struct {
	Median      float64 `json:"median"`
	MAD         float64 `json:"mad"`
	Samples     uint32  `json:"samples"`
	ExpectedMax float64 `json:"expected_max"`
}

// RateView is the rate baseline of one metric.
type RateView struct {
	Median      float64 `json:"median"`
	MAD         float64 `json:"mad"`
	Windows     uint32  `json:"windows"`
	ExpectedMax float64 `json:"expected_max"`
}

// CohortView is what a partition knows of a cohort.
type CohortView struct {
	Partition      int                 `json:"partition"`
	Key            string              `json:"key"`
	Class          string              `json:"class,omitempty"`
	Members        int32               `json:"members"`
	First          time.Time           `json:"first"`
	Last           time.Time           `json:"last"`
	LearnedSeconds float64             `json:"learned_seconds"`
	Events         uint64              `json:"events"`
	Learning       bool                `json:"learning"`
	Values         int                 `json:"values"` // distinct values counted over members
	Normal         int                 `json:"normal"` // values marked normal by analysts
	Rates          map[string]RateView `json:"rates"`
}

// View is the answer of Show: the devices and cohorts of that name, one
// per partition that knows them (a receiver known by address, and a
// cohort, may be in several).
type View struct {
	Name    string       `json:"name"`
	Devices []DeviceView `json:"devices"`
	Cohorts []CohortView `json:"cohorts"`
}

// Show returns what the detector knows of a device or cohort name.
// ENOTFOUND when nothing.
func (d *Detector) Show(name string) (View, error) {
	v := View{Name: name, Devices: []DeviceView{}, Cohorts: []CohortView{}}
	k := float32(d.opts.K)
	rates := func(h *[numMetric]ewStat) map[string]RateView {
		out := make(map[string]RateView, numMetric)
		for m := range numMetric {
			s := h[m]
			out[metrics[m].name] = RateView{Median: float64(s.med), MAD: float64(s.mad), Windows: s.n,
				ExpectedMax: float64(bound(s.med, s.mad, k, metrics[m]))}
		}
		return out
	}
	for _, n := range d.Partitions() {
		p := d.part(n)
		p.mu.Lock()
		if e := p.lookup(name); e != nil {
			dv := DeviceView{Partition: n, Key: e.key, Cohort: e.cohort.key, First: time.Unix(0, e.first).UTC(), Last: time.Unix(0, e.last).UTC(),
				LearnedSeconds: time.Duration(e.last - e.first).Seconds(), Events: e.events, Values: map[string]int{}, Rates: rates(&e.hist)}
			switch p.judgeOf(e, e.last) {
			case judgeDevice:
				dv.JudgedAgainst = "device"
			case judgeCohort:
				dv.JudgedAgainst = "cohort"
			default:
				dv.JudgedAgainst = "learning"
			}
			for f, c := range e.fcount {
				if c > 0 {
					dv.Values[families[f].name] += int(c)
				}
			}
			if e.soft != nil {
				dv.Values[families[famSoftware].name] = int(e.soft.n)
			}
			if tl := e.tele; tl != nil {
				dv.Telemetry = map[string]GaugeView{}
				for g := range numGauge {
					if s := &tl.host[g]; s.n > 0 {
						dv.Telemetry[gauges[g].name] = GaugeView{Median: float64(s.med), MAD: float64(s.mad), Samples: s.n, ExpectedMax: float64(gaugeBound(s, k, &gauges[g]))}
					}
				}
				dv.Custom = len(tl.custom)
			}
			v.Devices = append(v.Devices, dv)
		}
		if c := p.cohorts[name]; c != nil {
			learn := int64(p.opts.Learn)
			v.Cohorts = append(v.Cohorts, CohortView{Partition: n, Key: c.key, Class: c.class, Members: c.members,
				First: time.Unix(0, c.first).UTC(), Last: time.Unix(0, c.last).UTC(), LearnedSeconds: time.Duration(c.last - c.first).Seconds(),
				Events: c.events, Learning: !c.ready && c.last-c.first < learn, Values: len(c.counts), Normal: len(c.normal), Rates: rates(&c.hist)})
		}
		p.mu.Unlock()
	}
	if len(v.Devices) == 0 && len(v.Cohorts) == 0 {
		return v, vigil.Errorf(vigil.ENOTFOUND, "no device or cohort %q in the baseline", name)
	}
	return v, nil
}

// Reset forgets what was learned for a device, or for a cohort and all
// its members, in every partition that knows it: they learn again from
// their next event, for the learning period (a device is judged by its
// cohort meanwhile, when the cohort has learned). The device keeps its
// cohort. kind may be empty when the name is only one of a device and a
// cohort. It returns the partitions changed; ENOTFOUND when none knows the
// name, EINVALID when it is both and kind is empty.
func (d *Detector) Reset(name string, kind Kind) ([]int, error) {
	switch kind {
	case "", KindDevice, KindCohort:
	default:
		return nil, vigil.Errorf(vigil.EINVALID, "kind %q: want device or cohort", kind)
	}
	if kind == "" {
		v, err := d.Show(name)
		if err != nil {
			return nil, err
		}
		switch {
		case len(v.Devices) > 0 && len(v.Cohorts) > 0:
			return nil, vigil.Errorf(vigil.EINVALID, "%q is both a device and a cohort: say which", name)
		case len(v.Devices) > 0:
			kind = KindDevice
		default:
			kind = KindCohort
		}
	}
	var changed []int
	for _, n := range d.Partitions() {
		p := d.part(n)
		p.mu.Lock()
		if kind == KindDevice {
			if e := p.lookup(name); e != nil {
				p.resetEntity(e)
				changed = append(changed, n)
			}
		} else if c := p.cohorts[name]; c != nil {
			for _, e := range p.ents {
				if e.cohort == c {
					p.resetEntity(e)
				}
			}
			for _, e := range p.ipents {
				if e.cohort == c {
					p.resetEntity(e)
				}
			}
			c.counts = make(map[uint64]uint32)
			c.normal = nil
			d.norms.clear(c.key)
			c.hist = [numMetric]ewStat{}
			c.gauges = [numGauge]ewStat{}
			c.first, c.events, c.ready = c.last, 0, false
			changed = append(changed, n)
		}
		if len(changed) > 0 && changed[len(changed)-1] == n {
			p.dirty = true
		}
		p.mu.Unlock()
	}
	if len(changed) == 0 {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "no %s %q in the baseline", kind, name)
	}
	return changed, nil
}

// resetEntity forgets what e learned; it learns again from its latest
// event time.
func (p *part) resetEntity(e *entity) {
	c := e.cohort
	for _, h := range e.vals {
		if n := c.counts[h]; n > 1 {
			c.counts[h] = n - 1
		} else {
			delete(c.counts, h)
		}
	}
	*e = entity{key: e.key, cohort: c, first: e.last, last: e.last, win: e.win}
}

// TakeDirty returns the partitions changed since the last call, in order,
// and clears their marks: what a checkpoint saves.
func (d *Detector) TakeDirty() []int {
	var out []int
	for _, n := range d.Partitions() {
		p := d.part(n)
		p.mu.Lock()
		if p.dirty {
			out = append(out, n)
			p.dirty = false
		}
		p.mu.Unlock()
	}
	return out
}

// MarkDirty marks partitions changed (a checkpoint that failed to save
// them marks them again).
func (d *Detector) MarkDirty(partitions ...int) {
	for _, n := range partitions {
		p := d.part(n)
		p.mu.Lock()
		p.dirty = true
		p.mu.Unlock()
	}
}

// Window returns the detector's rate window (a baseline file records it:
// a state learned with one window length means nothing with another).
func (d *Detector) Window() time.Duration { return d.opts.Window }

// String describes the feedback, for logs and the CLI.
func (f Feedback) String() string {
	s := fmt.Sprintf("%s: %s folded into the device's baseline", f.Entity, strings.Join(f.Features, ", "))
	if len(f.Cohorts) > 0 {
		s += " and cohort " + strings.Join(f.Cohorts, ", ")
	}
	return s
}

// FalsePositive is what closing an incident as a false positive offers
// about the learned baseline: its alerts that can be marked normal, and
// those marked (with learn).
type FalsePositive struct {
	// Alerts are the incident's baseline alerts that can be marked normal.
	Alerts []Candidate `json:"alerts"`
	// How says how to mark one normal.
	How string `json:"how,omitempty"`
	// Learned are the alerts marked normal (with learn).
	Learned []Feedback `json:"learned,omitempty"`
	// Errors are the alerts that could not be marked, with the reason.
	Errors []string `json:"errors,omitempty"`
}

// Candidate is a baseline alert that can be marked normal.
type Candidate struct {
	AlertID string `json:"alert_id"`
	RuleID  string `json:"rule_id"`
	Title   string `json:"title"`
	Entity  string `json:"entity,omitempty"`
}

// CandidateOf returns the candidate of an alert of IsBaselineAlert.
func CandidateOf(a vigil.Alert) Candidate {
	e, _ := a.Fields["baseline.entity"].(string)
	return Candidate{AlertID: a.ID, RuleID: a.RuleID, Title: a.Title, Entity: e}
}
