package threshold

import (
	"container/list"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil/metrics"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect"
)

// Name is the detector's name, stored in Alert.Detector.
const Name = "threshold"

// Defaults of Options.
const (
	DefaultMaxGroups   = 10000
	DefaultMaxEvidence = 50
	maxEntities        = 20
)

// Options configures a Detector. The zero value is usable.
type Options struct {
	// MaxGroups bounds the groups (device × group_by values) one rule
	// keeps per partition; the least recently updated group is evicted
	// beyond it. DefaultMaxGroups when zero.
	MaxGroups int
	// MaxEvidence bounds Alert.EventIDs. DefaultMaxEvidence when zero.
	MaxEvidence int
	// Logger receives the detector's logs (component=threshold).
	Logger *slog.Logger
	// Registerer receives the detector's metrics; nil registers nothing.
	Registerer prometheus.Registerer
}

// Detector evaluates threshold and count rules. Its state is kept per bus
// partition, so Detect may be called concurrently for different
// partitions.
type Detector struct {
	rules     []*Rule
	maxGroups int
	maxEvid   int
	log       *slog.Logger
	evictions *prometheus.CounterVec

	parts sync.Map // int → *partition
}

var _ detect.Detector = (*Detector)(nil)

// partition is the state of every rule for one partition. It is only
// touched by the (never concurrent) Detect calls of its partition.
type partition struct {
	rules []ruleState // by rule index
	dirty bool        // a rule's state changed since the last Snapshot
}

type ruleState struct {
	groups map[string]*group
	lru    list.List // of *group, most recently updated at the front
}

// group is the state of one rule for one device (and group_by values).
type group struct {
	key    string
	device string
	values []string // the group_by values
	elem   *list.Element

	entries []entry // matching events: the current run, or those in the window

	// threshold: whether the current run already fired.
	fired bool
	// count: when the group last fired (event time).
	lastFire time.Time
	hasFired bool
}

type entry struct {
	t    time.Time
	id   string
	prov string // the event's provenance
	ents []string
}

// New returns a detector for rules.
func New(rules []*Rule, opts Options) *Detector {
	d := &Detector{
		rules:     rules,
		maxGroups: opts.MaxGroups,
		maxEvid:   opts.MaxEvidence,
		log:       opts.Logger,
	}
	if d.maxGroups <= 0 {
		d.maxGroups = DefaultMaxGroups
	}
	if d.maxEvid <= 0 {
		d.maxEvid = DefaultMaxEvidence
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("component", "threshold")
	d.evictions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_threshold_group_evictions_total",
		Help: "Groups of threshold and count rules evicted because a rule reached its group limit per partition.",
	}, []string{"rule"})
	var err error
	if d.evictions, err = metrics.Register(opts.Registerer, d.evictions); err != nil {
		d.log.Error("cannot register metrics", "err", err)
	}
	return d
}

// Name returns "threshold".
func (d *Detector) Name() string { return Name }

// Rules returns the detector's rules.
func (d *Detector) Rules() []*Rule { return d.rules }

// Detect evaluates every rule on ev and emits an alert for each rule whose
// condition is met.
func (d *Detector) Detect(ctx context.Context, part int, ev *vigil.Event, emit func(vigil.Alert)) {
	p := d.partition(part)
	var cur *Rule
	defer func() {
		if r := recover(); r != nil {
			// Name the rule in the panic; the stage recovers and logs it.
			panic(fmt.Sprintf("threshold rule %s: %v", cur.ID, r))
		}
	}()
	for i, r := range d.rules {
		cur = r
		if !matchAll(ev, r.Where) || (len(r.WhereNot) > 0 && matchAll(ev, r.WhereNot)) {
			continue
		}
		rs := &p.rules[i]
		p.dirty = true
		switch r.Type {
		case TypeThreshold:
			d.threshold(r, rs, ev, emit)
		case TypeCount:
			d.count(r, rs, ev, emit)
		}
	}
}

func (d *Detector) partition(n int) *partition {
	if p, ok := d.parts.Load(n); ok {
		return p.(*partition)
	}
	p := &partition{rules: make([]ruleState, len(d.rules))}
	for i := range p.rules {
		p.rules[i].groups = make(map[string]*group)
	}
	actual, _ := d.parts.LoadOrStore(n, p)
	return actual.(*partition)
}

// threshold advances a threshold rule: the run of consecutive events that
// meet the comparison grows; the rule fires once when the run reaches
// Consecutive, and re-arms when an event breaks the run. Events without the
// field (or with a non-numeric value for a numeric comparison) are ignored.
func (d *Detector) threshold(r *Rule, rs *ruleState, ev *vigil.Event, emit func(vigil.Alert)) {
	var (
		ok   bool
		str  string
		num  float64
		have bool
	)
	if r.IsStr {
		if str, have = ev.FieldString(r.Field); !have {
			return
		}
		ok = (str == r.StrValue) == (r.Op == "==")
	} else {
		if num, have = ev.FieldNumber(r.Field); !have {
			return
		}
		ok = compare(num, r.Op, r.Value)
	}
	key, values := groupKey(r, ev)
	if !ok {
		// The run is broken: drop the group, which re-arms the rule.
		if g := rs.groups[key]; g != nil {
			d.drop(rs, g)
		}
		return
	}
	g := d.group(r, rs, key, ev.DeviceID, values)
	if g.fired {
		return // still in the run that fired
	}
	g.entries = append(g.entries, d.entry(r, ev))
	if len(g.entries) < r.Consecutive {
		return
	}
	g.fired = true
	a := d.alert(r, g, g.entries)
	a.Fields["field"] = r.Field
	a.Fields["op"] = r.Op
	if r.IsStr {
		a.Fields["value"] = r.StrValue
	} else {
		a.Fields["value"] = r.Value
	}
	a.Fields["consecutive"] = r.Consecutive
	th := &vigil.ExplainedThreshold{Series: r.Field, Op: r.Op, Count: r.Consecutive}
	if r.IsStr {
		a.Fields["observed"] = strings.Clone(str)
		th.Threshold, th.Observed = r.StrValue, vigil.CutValue(str)
	} else {
		a.Fields["observed"] = num
		th.Threshold, th.Observed = strconv.FormatFloat(r.Value, 'g', -1, 64), strconv.FormatFloat(num, 'g', -1, 64)
	}
	a.Explanation = explain(r, g, ev, fmt.Sprintf("%s %s %s for %d consecutive events", r.Field, r.Op, th.Threshold, r.Consecutive), th)
	g.entries = nil
	emit(a)
}

func compare(v float64, op string, ref float64) bool {
	switch op {
	case ">":
		return v > ref
	case ">=":
		return v >= ref
	case "<":
		return v < ref
	case "<=":
		return v <= ref
	case "==":
		return v == ref
	case "!=":
		return v != ref
	}
	return false
}

// count advances a count rule: matching events are kept while they are
// within Window of the newest one (event time, inclusive); the rule fires
// when Count of them are, then forgets them, and does not fire again for
// that group until Window has passed since it fired.
func (d *Detector) count(r *Rule, rs *ruleState, ev *vigil.Event, emit func(vigil.Alert)) {
	key, values := groupKey(r, ev)
	g := d.group(r, rs, key, ev.DeviceID, values)
	e := d.entry(r, ev)
	// Insert in time order (events usually arrive in order).
	i := len(g.entries)
	for i > 0 && g.entries[i-1].t.After(e.t) {
		i--
	}
	g.entries = slices.Insert(g.entries, i, e)
	newest := g.entries[len(g.entries)-1].t
	drop := 0
	for drop < len(g.entries) && newest.Sub(g.entries[drop].t) > r.Window {
		drop++
	}
	if limit := max(r.Count, d.maxEvid); len(g.entries)-drop > limit {
		drop = len(g.entries) - limit
	}
	if drop > 0 {
		g.entries = slices.Delete(g.entries, 0, drop)
	}
	if len(g.entries) < r.Count {
		return
	}
	if g.hasFired && newest.Sub(g.lastFire) < r.Window {
		return // fired less than a window ago: keep counting, stay quiet
	}
	a := d.alert(r, g, g.entries)
	a.Fields["count"] = len(g.entries)
	a.Fields["threshold"] = r.Count
	a.Fields["window"] = r.Window.String()
	th := &vigil.ExplainedThreshold{Series: "events", Op: ">=", Threshold: strconv.Itoa(r.Count),
		Observed: strconv.Itoa(len(g.entries)), Count: len(g.entries)}
	a.Explanation = explain(r, g, ev, fmt.Sprintf("at least %d matching events within %s", r.Count, r.Window), th)
	a.Explanation.Window = r.Window.String()
	g.hasFired, g.lastFire = true, newest
	g.entries = g.entries[:0]
	emit(a)
}

// groupKey returns the key of ev's group for r, and the group_by values.
func groupKey(r *Rule, ev *vigil.Event) (string, []string) {
	if len(r.GroupBy) == 0 {
		return ev.DeviceID, nil
	}
	values := make([]string, len(r.GroupBy))
	var b strings.Builder
	b.WriteString(ev.DeviceID)
	for i, f := range r.GroupBy {
		values[i], _ = ev.FieldString(f)
		b.WriteByte(0)
		b.WriteString(values[i])
	}
	return b.String(), values
}

// group returns the group of key, creating it (and evicting the least
// recently updated group beyond the limit) when needed.
func (d *Detector) group(r *Rule, rs *ruleState, key, device string, values []string) *group {
	if g := rs.groups[key]; g != nil {
		rs.lru.MoveToFront(g.elem)
		return g
	}
	for len(rs.groups) >= d.maxGroups {
		old := rs.lru.Back().Value.(*group)
		d.drop(rs, old)
		d.evictions.WithLabelValues(r.ID).Inc()
	}
	for i := range values {
		values[i] = strings.Clone(values[i])
	}
	g := &group{key: strings.Clone(key), device: strings.Clone(device), values: values}
	g.elem = rs.lru.PushFront(g)
	rs.groups[g.key] = g
	return g
}

func (d *Detector) drop(rs *ruleState, g *group) {
	rs.lru.Remove(g.elem)
	delete(rs.groups, g.key)
}

// entry records what an alert needs of ev, copying the strings: ev must not
// be kept after Detect returns.
func (d *Detector) entry(r *Rule, ev *vigil.Event) entry {
	e := entry{t: ev.Time, id: strings.Clone(ev.ID), prov: strings.Clone(ev.Provenance)}
	for _, f := range r.entityFields {
		if v, ok := ev.FieldString(f); ok && v != "" {
			e.ents = append(e.ents, r.Entities[f]+":"+v)
		}
	}
	return e
}

// alert builds the alert of r for group g with evidence entries.
func (d *Detector) alert(r *Rule, g *group, entries []entry) vigil.Alert {
	a := vigil.Alert{
		Detector:       Name,
		RuleID:         r.ID,
		Title:          r.Title,
		Severity:       r.Level,
		Tags:           slices.Clone(r.Tags),
		Techniques:     vigil.TechniquesFromTags(r.Tags),
		DeviceID:       g.device,
		FirstEventTime: entries[0].t,
		LastEventTime:  entries[len(entries)-1].t,
		Count:          1,
		Fields:         map[string]any{"rule_type": r.Type},
	}
	a.DedupKey = Name + ":" + r.ID + ":" + g.device
	a.UntilCleared = r.Refire == RefireUntilCleared
	for i, f := range r.GroupBy {
		a.DedupKey += ":" + g.values[i]
		if g.values[i] != "" {
			a.Fields[f] = g.values[i]
		}
	}
	// The most recent evidence when there is more than MaxEvidence.
	ev := entries[max(0, len(entries)-d.maxEvid):]
	for _, e := range ev {
		if e.id != "" {
			a.EventIDs = append(a.EventIDs, e.id)
		}
	}
	for _, e := range entries {
		a.AddProvenance(e.prov)
		for _, en := range e.ents {
			if len(a.Entities) < maxEntities && !slices.Contains(a.Entities, en) {
				a.Entities = append(a.Entities, en)
			}
		}
	}
	if len(entries) > len(ev) {
		a.Fields["evidence_truncated"] = len(entries) - len(ev)
	}
	return a
}

// matchAll reports whether ev meets every condition.
func matchAll(ev *vigil.Event, conds []Condition) bool {
	for i := range conds {
		if !match(ev, &conds[i]) {
			return false
		}
	}
	return true
}

// match reports whether ev's field equals one of the condition's values.
// A list-valued field matches when one of its elements does.
func match(ev *vigil.Event, c *Condition) bool {
	if c.fixed != 0 {
		s := fixedString(ev, c.fixed)
		return s != "" && slices.Contains(c.Values, s)
	}
	v, ok := ev.Field(c.Field)
	if !ok {
		return false
	}
	switch x := v.(type) {
	case string:
		return slices.Contains(c.Values, x)
	case []string:
		for _, s := range x {
			if slices.Contains(c.Values, s) {
				return true
			}
		}
		return false
	case []any:
		for _, s := range x {
			if slices.Contains(c.Values, vigil.ValueString(s)) {
				return true
			}
		}
		return false
	}
	return slices.Contains(c.Values, vigil.ValueString(v))
}

// Fixed string fields of vigil.Event, read without Event.Field (which boxes
// them in an interface, one allocation per call).
const (
	fixedNone uint8 = iota
	fixedKind
	fixedAction
	fixedOutcome
	fixedCategory
	fixedDevice
	fixedSource
	fixedID
)

var fixedFields = map[string]uint8{
	"kind": fixedKind, "event.kind": fixedKind,
	"action": fixedAction, "event.action": fixedAction,
	"outcome": fixedOutcome, "event.outcome": fixedOutcome,
	"category": fixedCategory, "event.category": fixedCategory,
	"device.id": fixedDevice,
	"source":    fixedSource, "event.source": fixedSource,
	"event.id": fixedID,
}

func fixedString(ev *vigil.Event, f uint8) string {
	switch f {
	case fixedKind:
		return ev.Kind
	case fixedAction:
		return ev.Action
	case fixedOutcome:
		return ev.Outcome
	case fixedCategory:
		return ev.Category
	case fixedDevice:
		return ev.DeviceID
	case fixedSource:
		return ev.Source
	case fixedID:
		return ev.ID
	}
	return ""
}

// explain is the explanation of rule r firing for group g at event ev:
// the rule, its group-by values, the threshold crossed and an excerpt of
// ev, the event that crossed it (the others are referenced by the
// alert's EventIDs).
func explain(r *Rule, g *group, ev *vigil.Event, cond string, th *vigil.ExplainedThreshold) *vigil.Explanation {
	x := &vigil.Explanation{
		Rule:      &vigil.ExplainedRule{ID: r.ID, Title: r.Title, Description: r.Description, Level: r.Level.String(), Condition: cond},
		Threshold: th,
	}
	fields := make([]string, 0, 1+len(r.GroupBy)+len(r.Where)+len(r.entityFields))
	if r.Field != "" {
		fields = append(fields, r.Field)
	}
	fields = append(fields, r.GroupBy...)
	for _, c := range r.Where {
		fields = append(fields, c.Field)
	}
	fields = append(fields, r.entityFields...)
	if len(r.GroupBy) > 0 {
		x.Group = make(map[string]string, len(r.GroupBy))
		for i, f := range r.GroupBy {
			x.Group[f] = vigil.CutValue(g.values[i])
		}
	}
	x.AddEvidence(vigil.ExcerptOf(ev, fields...))
	return x
}
