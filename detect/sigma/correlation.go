package sigma

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.yaml.in/yaml/v3"
)

// Correlation types.
const (
	CorrEventCount      = "event_count"
	CorrValueCount      = "value_count"
	CorrTemporal        = "temporal"
	CorrTemporalOrdered = "temporal_ordered"
	CorrValueSum        = "value_sum"
	CorrValueAvg        = "value_avg"
	CorrValuePercentile = "value_percentile"
)

// Correlation is a parsed correlation section.
type Correlation struct {
	Type     string
	RuleRefs []string
	GroupBy  []string
	Timespan time.Duration
	// Field is the value field of value_* correlations.
	Field string
	// Conds are the count conditions (op → value), ANDed.
	Conds    []CorrCond
	Aliases  map[string]map[string]string // alias → rule ref → field
	Generate bool
	// onClose: the condition has only upper bounds (lt, lte), so a window
	// is judged when it closes rather than on each event.
	onClose bool

	rules []*Rule // resolved RuleRefs
}

// CorrCond is one condition criterion: gt, gte, lt, lte, eq or neq.
type CorrCond struct {
	Op    string
	Value float64
}

func (c CorrCond) holds(x float64) bool {
	switch c.Op {
	case "gt":
		return x > c.Value
	case "gte":
		return x >= c.Value
	case "lt":
		return x < c.Value
	case "lte":
		return x <= c.Value
	case "eq":
		return x == c.Value
	case "neq":
		return x != c.Value
	}
	return false
}

// parseTimespan reads "90s", "5m", "1h", "2d" (and "1w", "1M", "1y").
func parseTimespan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 {
		return 0, fmt.Errorf("invalid timespan %q: want a number and one of s, m, h, d", s)
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid timespan %q: want a number and one of s, m, h, d", s)
	}
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour, 'M': 30 * 24 * time.Hour, 'y': 365 * 24 * time.Hour}[s[len(s)-1]]
	if unit == 0 {
		return 0, fmt.Errorf("invalid timespan unit in %q: want s, m, h or d", s)
	}
	return time.Duration(n) * unit, nil
}

func parseCorrelation(cp *compiler, r *Rule, n *yaml.Node) (*Correlation, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errAt(n, "correlation must be a map")
	}
	c := &Correlation{Type: scalarString(mapGet(n, "type")), Aliases: map[string]map[string]string{}}
	switch c.Type {
	case CorrEventCount, CorrValueCount, CorrTemporal, CorrTemporalOrdered, CorrValueSum, CorrValueAvg, CorrValuePercentile:
	case "":
		return nil, errAt(n, "correlation without type")
	default:
		return nil, errAt(mapGet(n, "type"), "unknown correlation type %q", c.Type)
	}
	c.RuleRefs = stringList(mapGet(n, "rules"))
	if len(c.RuleRefs) == 0 {
		return nil, errAt(n, "correlation without rules")
	}
	c.GroupBy = stringList(mapGet(n, "group-by"))
	ts := mapGet(n, "timespan")
	if ts == nil {
		ts = mapGet(n, "timeframe")
	}
	if ts == nil {
		return nil, errAt(n, "correlation without timespan")
	}
	d, err := parseTimespan(ts.Value)
	if err != nil {
		return nil, errAt(ts, "%v", err)
	}
	c.Timespan = d
	if g := mapGet(n, "generate"); g != nil {
		c.Generate = strings.EqualFold(g.Value, "true")
	}
	if al := mapGet(n, "aliases"); al != nil {
		if al.Kind != yaml.MappingNode {
			return nil, errAt(al, "aliases must be a map")
		}
		for i := 0; i+1 < len(al.Content); i += 2 {
			name, m := al.Content[i].Value, resolveAlias(al.Content[i+1])
			if m.Kind != yaml.MappingNode {
				return nil, errAt(m, "alias %q must map rule names to fields", name)
			}
			c.Aliases[name] = map[string]string{}
			for j := 0; j+1 < len(m.Content); j += 2 {
				c.Aliases[name][m.Content[j].Value] = m.Content[j+1].Value
			}
		}
	}
	cond := mapGet(n, "condition")
	switch c.Type {
	case CorrTemporal, CorrTemporalOrdered:
		if cond == nil { // default: all rules
			c.Conds = []CorrCond{{Op: "gte", Value: float64(len(c.RuleRefs))}}
		}
	default:
		if cond == nil {
			return nil, errAt(n, "%s correlation without condition", c.Type)
		}
	}
	if cond != nil {
		if cond.Kind != yaml.MappingNode {
			return nil, errAt(cond, "correlation condition must be a map such as {gte: 10}")
		}
		for i := 0; i+1 < len(cond.Content); i += 2 {
			k, v := cond.Content[i].Value, cond.Content[i+1]
			switch k {
			case "field":
				c.Field = v.Value
			case "gt", "gte", "lt", "lte", "eq", "neq":
				x, err := strconv.ParseFloat(v.Value, 64)
				if err != nil {
					return nil, errAt(v, "condition %s: %q is not a number", k, v.Value)
				}
				c.Conds = append(c.Conds, CorrCond{Op: k, Value: x})
			default:
				return nil, errAt(cond.Content[i], "unknown correlation condition %q", k)
			}
		}
		if len(c.Conds) == 0 {
			return nil, errAt(cond, "correlation condition without a comparison")
		}
	}
	// value_percentile judges the current event's value, so it stays
	// evaluated on each event.
	c.onClose = len(c.Conds) > 0 && c.Type != CorrValuePercentile
	for _, cc := range c.Conds {
		if cc.Op != "lt" && cc.Op != "lte" {
			c.onClose = false
		}
	}
	switch c.Type {
	case CorrValueCount, CorrValueSum, CorrValueAvg, CorrValuePercentile:
		if c.Field == "" {
			return nil, errAt(cond, "%s correlation needs condition.field", c.Type)
		}
	}
	return c, nil
}

// linkCorrelation resolves a correlation's rule references.
func (rs *RuleSet) linkCorrelation(r *Rule) error {
	c := r.Correlation
	c.rules = c.rules[:0]
	for _, ref := range c.RuleRefs {
		t, ok := rs.byRef[ref]
		if !ok {
			return fmt.Errorf("correlation refers to unknown rule %q", ref)
		}
		if t == r {
			return fmt.Errorf("correlation refers to itself")
		}
		c.rules = append(c.rules, t)
		if !c.Generate {
			t.silent = true
		}
	}
	return nil
}

// corrLink says that matches of a rule feed correlation c.
type corrLink struct {
	c          *Rule
	pos        int   // position of the feeding rule in c's rules
	groupSlots []int // slot of each group-by field for that rule
	valueSlot  int   // slot of the value field, -1 when none
}

// linkFields registers the fields a correlation reads on events of each
// rule it references (aliases resolved) and records the links.
func (rs *RuleSet) linkFields(r *Rule) {
	c := r.Correlation
	cp := &compiler{rs: rs, cfg: rs.cfg}
	for pos, t := range c.rules {
		l := corrLink{c: r, pos: pos, valueSlot: -1}
		ls := leafLogsource(t)
		for _, g := range c.GroupBy {
			name := g
			if al, ok := c.Aliases[g]; ok {
				if f, ok := al[firstNonEmpty(t.Name, t.ID)]; ok {
					name = f
				} else if f, ok := al[t.ID]; ok {
					name = f
				}
			}
			l.groupSlots = append(l.groupSlots, cp.field(name, ls))
		}
		if c.Field != "" {
			l.valueSlot = cp.field(c.Field, ls)
		}
		t.feeds = append(t.feeds, l)
	}
}

// leafLogsource is the logsource used to map a correlation's field names
// on events of rule t (the first detection rule down a chain).
func leafLogsource(t *Rule) Logsource {
	for i := 0; i < 16 && t.Correlation != nil && len(t.Correlation.rules) > 0; i++ {
		t = t.Correlation.rules[0]
	}
	return t.Logsource
}

// Correlation state limits.
const (
	// DefaultMaxGroups bounds open windows per correlation rule and partition.
	DefaultMaxGroups = 100000
	// DefaultMaxEntries bounds the events kept in one window.
	DefaultMaxEntries = 10000
)

// corrEntry is one event in a window. Memory per open window is about
// 150 bytes plus the group key plus 48 bytes per event in the window
// (plus the value for value_count).
type corrEntry struct {
	T int64   `json:"t"` // unix nanoseconds
	R int     `json:"r"` // position of the rule in the correlation's rules
	V string  `json:"v,omitempty"`
	N float64 `json:"n,omitempty"`
}

type corrWindow struct {
	Entries  []corrEntry `json:"entries"`
	head     int
	distinct map[string]int
	sum      float64
}

func (w *corrWindow) live() []corrEntry { return w.Entries[w.head:] }

func (w *corrWindow) evict(before int64) {
	for w.head < len(w.Entries) && w.Entries[w.head].T < before {
		e := w.Entries[w.head]
		w.sum -= e.N
		if w.distinct != nil {
			if w.distinct[e.V]--; w.distinct[e.V] <= 0 {
				delete(w.distinct, e.V)
			}
		}
		w.Entries[w.head] = corrEntry{}
		w.head++
	}
	if w.head > 64 && w.head*2 > len(w.Entries) {
		n := copy(w.Entries, w.Entries[w.head:])
		w.Entries = w.Entries[:n]
		w.head = 0
	}
}

// corrState is the correlation state of one partition.
type corrState struct {
	windows map[*Rule]map[string]*corrWindow
}

// CorrStats counts correlation state.
type CorrStats struct {
	OpenWindows    int    `json:"open_windows"`
	DroppedGroups  uint64 `json:"dropped_groups"`
	DroppedEntries uint64 `json:"dropped_entries"`
}

// correlator runs correlation rules; it is not safe for concurrent use
// (one per partition).
type correlator struct {
	st         corrState
	maxGroups  int
	maxEntries int
	dropped    *dropCounters
	keyBuf     []byte
}

type dropCounters struct {
	groups, entries atomicU64
}

func newCorrelator(maxGroups, maxEntries int, dc *dropCounters) *correlator {
	if maxGroups <= 0 {
		maxGroups = DefaultMaxGroups
	}
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	return &correlator{st: corrState{windows: map[*Rule]map[string]*corrWindow{}}, maxGroups: maxGroups, maxEntries: maxEntries, dropped: dc}
}

// corrFire is a correlation that fired.
type corrFire struct {
	rule  *Rule
	group string
	value float64
	first time.Time
	last  time.Time
	count int
}

// hit feeds a match of rule r at time t (the event is loaded in m) to the
// correlations r feeds, recursively for chains, calling fire for each
// correlation that fires.
func (co *correlator) hit(m *Matcher, r *Rule, t time.Time, fire func(corrFire), depth int) {
	if depth > 16 {
		return
	}
	for _, l := range r.feeds {
		if f, ok := co.feed(m, l, t); ok {
			fire(f)
			co.hit(m, l.c, t, fire, depth+1)
		}
	}
}

func (co *correlator) feed(m *Matcher, l corrLink, t time.Time) (corrFire, bool) {
	c := l.c.Correlation
	lk := l.c
	key := co.keyBuf[:0]
	for i, s := range l.groupSlots {
		if i > 0 {
			key = append(key, 0)
		}
		key = append(key, m.str(s)...)
	}
	co.keyBuf = key
	groups := co.st.windows[l.c]
	if groups == nil {
		groups = map[string]*corrWindow{}
		co.st.windows[l.c] = groups
	}
	w := groups[string(key)]
	now := t.UnixNano()
	if w == nil {
		if len(groups) >= co.maxGroups {
			co.sweep(l.c, groups, now)
			if len(groups) >= co.maxGroups {
				co.dropped.groups.add(1)
				return corrFire{}, false
			}
		}
		w = &corrWindow{}
		groups[string(key)] = w
	}
	var closed corrFire
	var hasClosed bool
	if c.onClose {
		// Windows of upper-bound conditions are fixed, opened by their
		// first event and judged when they close.
		if l := w.live(); len(l) > 0 && now >= l[0].T+int64(c.Timespan) {
			closed, hasClosed = co.judge(lk, c, w, string(key))
			w = &corrWindow{}
			groups[string(key)] = w
		}
	} else {
		w.evict(now - int64(c.Timespan))
	}
	if len(w.live()) >= co.maxEntries {
		co.dropped.entries.add(1)
		w.evict(w.live()[0].T + 1)
	}
	e := corrEntry{T: now, R: l.pos}
	if l.valueSlot >= 0 {
		v := m.str(l.valueSlot)
		switch c.Type {
		case CorrValueCount, CorrValuePercentile:
			e.V = strings.Clone(v)
			if w.distinct == nil {
				w.distinct = map[string]int{}
			}
			w.distinct[e.V]++
		default:
			e.N, _ = strconv.ParseFloat(v, 64)
			w.sum += e.N
		}
	}
	w.Entries = append(w.Entries, e)
	if c.onClose {
		return closed, hasClosed
	}
	val, ok := co.measure(c, w, e)
	if !ok {
		return corrFire{}, false
	}
	for _, cc := range c.Conds {
		if !cc.holds(val) {
			return corrFire{}, false
		}
	}
	live := w.live()
	f := corrFire{rule: l.c, group: strings.ReplaceAll(string(key), "\x00", ","), value: val,
		first: time.Unix(0, live[0].T).UTC(), last: t, count: len(live)}
	delete(groups, string(key)) // a fired window starts afresh
	return f, true
}

// judge evaluates a closed window of an upper-bound correlation.
func (co *correlator) judge(r *Rule, c *Correlation, w *corrWindow, key string) (corrFire, bool) {
	live := w.live()
	if len(live) == 0 {
		return corrFire{}, false
	}
	val, ok := co.measure(c, w, live[len(live)-1])
	if !ok {
		return corrFire{}, false
	}
	for _, cc := range c.Conds {
		if !cc.holds(val) {
			return corrFire{}, false
		}
	}
	return corrFire{rule: r, group: strings.ReplaceAll(key, "\x00", ","), value: val,
		first: time.Unix(0, live[0].T).UTC(), last: time.Unix(0, live[len(live)-1].T).UTC(), count: len(live)}, true
}

// closeExpired judges and removes the windows of upper-bound correlations
// that closed before now.
func (co *correlator) closeExpired(now time.Time, fire func(corrFire)) {
	n := now.UnixNano()
	for r, groups := range co.st.windows {
		c := r.Correlation
		if !c.onClose {
			continue
		}
		for k, w := range groups {
			l := w.live()
			if len(l) > 0 && n < l[0].T+int64(c.Timespan) {
				continue
			}
			if f, ok := co.judge(r, c, w, k); ok {
				fire(f)
			}
			delete(groups, k)
		}
	}
}

// measure computes the value a correlation's condition is applied to.
func (co *correlator) measure(c *Correlation, w *corrWindow, cur corrEntry) (float64, bool) {
	live := w.live()
	switch c.Type {
	case CorrEventCount:
		return float64(len(live)), true
	case CorrValueCount:
		return float64(len(w.distinct)), true
	case CorrValueSum:
		return w.sum, true
	case CorrValueAvg:
		return w.sum / float64(len(live)), true
	case CorrValuePercentile:
		// The share (in percent) of the window's events whose field has
		// the current event's value: "lte: 1" finds values seen in at
		// most 1% of the group's events.
		return 100 * float64(w.distinct[cur.V]) / float64(len(live)), true
	case CorrTemporal:
		seen := make([]bool, len(c.rules))
		n := 0
		for _, e := range live {
			if !seen[e.R] {
				seen[e.R] = true
				n++
			}
		}
		return float64(n), true
	case CorrTemporalOrdered:
		// Length of the longest prefix of the rule order found as a
		// subsequence of the window (greedy earliest match).
		next := 0
		for _, e := range live {
			if next < len(c.rules) && e.R == next {
				next++
			}
		}
		return float64(next), true
	}
	return 0, false
}

// sweep drops windows whose events are all older than the timespan.
func (co *correlator) sweep(r *Rule, groups map[string]*corrWindow, now int64) {
	before := now - int64(r.Correlation.Timespan)
	for k, w := range groups {
		if l := w.live(); len(l) == 0 || l[len(l)-1].T < before {
			delete(groups, k)
		}
	}
}

// open counts open windows.
func (co *correlator) open() int {
	n := 0
	for _, g := range co.st.windows {
		n += len(g)
	}
	return n
}

// checkpoint is the serialized state of one correlator.
type checkpoint struct {
	// Windows: correlation rule id → group key → window.
	Windows map[string]map[string]*corrWindow `json:"windows"`
}

func (co *correlator) snapshot() checkpoint {
	cp := checkpoint{Windows: map[string]map[string]*corrWindow{}}
	for r, groups := range co.st.windows {
		id := firstNonEmpty(r.ID, r.Name, r.Title)
		m := map[string]*corrWindow{}
		for k, w := range groups {
			m[k] = &corrWindow{Entries: append([]corrEntry(nil), w.live()...)}
		}
		cp.Windows[id] = m
	}
	return cp
}

func (co *correlator) restore(rs *RuleSet, cp checkpoint) {
	byKey := map[string]*Rule{}
	for _, r := range rs.Correlations {
		byKey[firstNonEmpty(r.ID, r.Name, r.Title)] = r
	}
	for id, groups := range cp.Windows {
		r, ok := byKey[id]
		if !ok {
			continue // the rule is gone
		}
		m := map[string]*corrWindow{}
		for k, w := range groups {
			nw := &corrWindow{Entries: w.Entries}
			for _, e := range nw.Entries {
				nw.sum += e.N
				if t := r.Correlation.Type; t == CorrValueCount || t == CorrValuePercentile {
					if nw.distinct == nil {
						nw.distinct = map[string]int{}
					}
					nw.distinct[e.V]++
				}
			}
			m[k] = nw
		}
		co.st.windows[r] = m
	}
}

type atomicU64 struct{ v atomic.Uint64 }

func (a *atomicU64) add(n uint64) { a.v.Add(n) }
func (a *atomicU64) load() uint64 { return a.v.Load() }
