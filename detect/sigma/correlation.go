package sigma

import (
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

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
	// kind is Type as a number, for the switches of each event.
	kind corrKind

	rules []*Rule // resolved RuleRefs
}

type corrKind uint8

const (
	kindEventCount corrKind = iota
	kindValueCount
	kindTemporal
	kindTemporalOrdered
	kindValueSum
	kindValueAvg
	kindValuePercentile
)

var corrKinds = map[string]corrKind{CorrEventCount: kindEventCount, CorrValueCount: kindValueCount, CorrTemporal: kindTemporal,
	CorrTemporalOrdered: kindTemporalOrdered, CorrValueSum: kindValueSum, CorrValueAvg: kindValueAvg, CorrValuePercentile: kindValuePercentile}

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

// maxTimespan bounds a correlation's timespan: windows are kept that
// long, and event times plus the timespan must not overflow.
const maxTimespan = 10 * 365 * 24 * time.Hour

// parseTimespan reads "90s", "5m", "1h", "2d" (and "1w", "1M", "1y"), at
// most maxTimespan.
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
	if int64(n) > int64(maxTimespan/unit) {
		return 0, fmt.Errorf("timespan %q is longer than 10 years", s)
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
	c.kind = corrKinds[c.Type]
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

// maxCorrChain bounds how deep correlations may refer to correlations:
// the matches of a rule are fed down that many levels (correlator.hit).
const maxCorrChain = 16

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
	}
	return nil
}

// linkCorrelations resolves the rule references of every correlation and
// returns the correlations that cannot run, with the reason: those that
// refer to unknown rules, to themselves (directly or through other
// correlations), to correlations that cannot run, or to chains of
// correlations deeper than maxCorrChain.
func (rs *RuleSet) linkCorrelations() map[*Rule]error {
	bad := map[*Rule]error{}
	for _, c := range rs.Correlations {
		if err := rs.linkCorrelation(c); err != nil {
			bad[c] = err
		}
	}
	// Correlations on a cycle of references.
	const (
		unseen = iota
		open
		done
	)
	state := map[*Rule]int{}
	var stack []*Rule
	var visit func(c *Rule)
	visit = func(c *Rule) {
		state[c] = open
		stack = append(stack, c)
		for _, t := range c.Correlation.rules {
			if t.Correlation == nil || bad[t] != nil && state[t] == unseen {
				continue
			}
			switch state[t] {
			case unseen:
				visit(t)
			case open:
				// Every correlation on the stack from t on is on the cycle.
				i := len(stack) - 1
				for stack[i] != t {
					i--
				}
				for _, x := range stack[i:] {
					if bad[x] == nil {
						bad[x] = fmt.Errorf("correlation refers to itself through %q", firstNonEmpty(t.Name, t.ID, t.Title))
					}
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[c] = done
	}
	for _, c := range rs.Correlations {
		if state[c] == unseen && bad[c] == nil {
			visit(c)
		}
	}
	// Correlations on correlations that cannot run, and chains too deep;
	// what is left is acyclic.
	depth := map[*Rule]int{}
	var level func(c *Rule) int
	level = func(c *Rule) int {
		if d, ok := depth[c]; ok {
			return d
		}
		depth[c] = 1
		d := 1
		for i, t := range c.Correlation.rules {
			if t.Correlation == nil {
				continue
			}
			if bad[t] == nil {
				d = max(d, level(t)+1)
			}
			if bad[t] != nil && bad[c] == nil {
				bad[c] = fmt.Errorf("correlation refers to correlation %q, which is rejected", c.Correlation.RuleRefs[i])
			}
		}
		if d > maxCorrChain && bad[c] == nil {
			bad[c] = fmt.Errorf("correlations refer to correlations more than %d levels deep", maxCorrChain)
		}
		depth[c] = d
		return d
	}
	for _, c := range rs.Correlations {
		if bad[c] == nil {
			level(c)
		}
	}
	return bad
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

// corrEntry is one event in a window.
type corrEntry struct {
	T int64   `json:"t"` // unix nanoseconds
	R int     `json:"r"` // position of the rule in the correlation's rules
	V string  `json:"v,omitempty"`
	N float64 `json:"n,omitempty"`
}

// corrWindow is the window of one correlation for one group key.
type corrWindow struct {
	Entries []corrEntry `json:"entries"`
	// Device is the device of the window's last event: the device of an
	// alert judged when the window closes (Tick, end of input).
	Device string `json:"device,omitempty"`
	// IDs are the ids of the window's latest events, at most
	// maxWindowIDs, kept by the online detector only (Matcher.keepIDs):
	// the evidence an alert references.
	IDs  []windowID `json:"ids,omitempty"`
	head int
	// distinct counts the values of a value_count or value_percentile
	// window once it holds more than maxScanDistinct entries; before, the
	// values are counted by scanning the entries (equal values share one
	// copy, see value).
	distinct *distinctSet
	sum      float64
}

// windowID is the id of one event of a window and its time.
type windowID struct {
	T  int64  `json:"t"`
	ID string `json:"id"`
}

// maxWindowIDs bounds corrWindow.IDs.
const maxWindowIDs = 16

// keepID remembers the id of an event of the window at time t (ns).
func (w *corrWindow) keepID(t int64, id string) {
	if len(w.IDs) >= maxWindowIDs {
		copy(w.IDs, w.IDs[1:])
		w.IDs = w.IDs[:len(w.IDs)-1]
	}
	w.IDs = append(w.IDs, windowID{T: t, ID: strings.Clone(id)})
}

// liveIDs returns the ids kept of the window's live events, oldest first.
func (w *corrWindow) liveIDs() []string {
	live := w.live()
	if len(live) == 0 || len(w.IDs) == 0 {
		return nil
	}
	var out []string
	for _, x := range w.IDs {
		if x.T >= live[0].T {
			out = append(out, x.ID)
		}
	}
	return out
}

// maxScanDistinct is the number of entries up to which a window's distinct
// values are counted by scanning its entries rather than kept in a set.
const maxScanDistinct = 8

// value returns the window's copy of v (v itself may point into the input
// line), counted in the distinct set when the window has one. Without a
// set, equal live values share one copy: they are told apart by address.
func (w *corrWindow) value(v string) string {
	if w.distinct != nil {
		return w.distinct.add(v)
	}
	for _, e := range w.live() {
		if e.V == v {
			return e.V
		}
	}
	return strings.Clone(v)
}

// countValues makes the window keep a distinct set once it holds more than
// maxScanDistinct entries.
func (w *corrWindow) countValues() {
	live := w.live()
	if w.distinct != nil || len(live) <= maxScanDistinct {
		return
	}
	w.distinct = &distinctSet{}
	for i := range live {
		live[i].V = w.distinct.add(live[i].V)
	}
}

// sameValue tells whether two values of a window's live entries are equal
// (with no distinct set, equal values share their bytes).
func sameValue(a, b string) bool {
	return len(a) == len(b) && (len(a) == 0 || unsafe.StringData(a) == unsafe.StringData(b))
}

// distinctValues counts the distinct values of the window's live entries.
func (w *corrWindow) distinctValues() int {
	if w.distinct != nil {
		return w.distinct.len()
	}
	live := w.live()
	n := 0
next:
	for i := range live {
		for j := 0; j < i; j++ {
			if sameValue(live[j].V, live[i].V) {
				continue next
			}
		}
		n++
	}
	return n
}

// valueCount counts the live entries whose value is v (one of them).
func (w *corrWindow) valueCount(v string) int {
	if w.distinct != nil {
		return w.distinct.count(v)
	}
	n := 0
	for _, e := range w.live() {
		if sameValue(e.V, v) {
			n++
		}
	}
	return n
}

func (w *corrWindow) live() []corrEntry { return w.Entries[w.head:] }

func (w *corrWindow) evict(before int64) {
	for w.head < len(w.Entries) && w.Entries[w.head].T < before {
		e := w.Entries[w.head]
		w.sum -= e.N
		if w.distinct != nil {
			w.distinct.remove(e.V)
		}
		w.Entries[w.head] = corrEntry{}
		w.head++
	}
	// Compact when half the entries are gone, and when the array is full
	// (room made here costs a copy within lines just read; growing it, an
	// allocation and a copy from memory).
	if w.head > 0 && (len(w.Entries) == cap(w.Entries) || w.head > 64 && w.head*2 > len(w.Entries)) {
		n := copy(w.Entries, w.Entries[w.head:])
		w.Entries = w.Entries[:n]
		w.head = 0
	}
}

// distinctSet counts the distinct values of a window: the first two in
// place, up to 16 in a short list (no map to allocate; values shared with
// the window's entries), a map beyond.
type distinctSet struct {
	n    int // values in inl and more
	inl  [2]valCount
	more []valCount
	big  map[string]int
}

type valCount struct {
	v string
	n int
}

const maxSmallDistinct = 16

// at returns the i-th listed value (i < d.n).
func (d *distinctSet) at(i int) *valCount {
	if i < len(d.inl) {
		return &d.inl[i]
	}
	return &d.more[i-len(d.inl)]
}

// add counts v and returns the copy of v the set holds (v itself may point
// into the input line).
func (d *distinctSet) add(v string) string {
	if d.big != nil {
		if n, ok := d.big[v]; ok {
			d.big[v] = n + 1
			return strings.Clone(v) // the map's copy cannot be reached cheaply
		}
		v = strings.Clone(v)
		d.big[v] = 1
		return v
	}
	for i := 0; i < d.n; i++ {
		if x := d.at(i); x.v == v {
			x.n++
			return x.v
		}
	}
	v = strings.Clone(v)
	switch {
	case d.n < len(d.inl):
		d.inl[d.n] = valCount{v, 1}
	case d.n < maxSmallDistinct:
		d.more = append(d.more, valCount{v, 1})
	default:
		d.big = make(map[string]int, 2*maxSmallDistinct)
		for i := 0; i < d.n; i++ {
			x := d.at(i)
			d.big[x.v] = x.n
		}
		*d = distinctSet{big: d.big}
		d.big[v] = 1
		return v
	}
	d.n++
	return v
}

func (d *distinctSet) remove(v string) {
	if d.big != nil {
		if d.big[v]--; d.big[v] <= 0 {
			delete(d.big, v)
		}
		return
	}
	// v is normally the set's own copy (what add returned): find it by
	// its address first, without reading the bytes of every value.
	i := 0
	for ; i < d.n; i++ {
		if x := d.at(i); len(x.v) == len(v) && unsafe.StringData(x.v) == unsafe.StringData(v) {
			break
		}
	}
	if i == d.n {
		i = 0
	}
	for ; i < d.n; i++ {
		if x := d.at(i); x.v == v {
			if x.n--; x.n <= 0 {
				last := d.at(d.n - 1)
				*x, *last = *last, valCount{}
				d.n--
				if d.n >= len(d.inl) {
					d.more = d.more[:d.n-len(d.inl)]
				}
			}
			return
		}
	}
}

func (d *distinctSet) count(v string) int {
	if d == nil {
		return 0
	}
	if d.big != nil {
		return d.big[v]
	}
	for i := 0; i < d.n; i++ {
		if x := d.at(i); x.v == v {
			return x.n
		}
	}
	return 0
}

func (d *distinctSet) len() int {
	if d == nil {
		return 0
	}
	if d.big != nil {
		return len(d.big)
	}
	return d.n
}

// corrGroup holds, for one group key, the window of each correlation that
// saw the key: correlations grouping on the same values share one lookup
// per event. A group is allocated with room for its windows and their
// first entries (group1, group2): what an event touches sits in one
// object.
type corrGroup struct {
	wins []groupWin     // in the group's room until it is outgrown
	room [][2]corrEntry // first entries of the windows
	key  string         // in kbuf when it fits
	h    uint64         // hash of key
	kbuf [16]byte       // an IPv4 address fits
}

// group1 and group2 are groups with room for one and two windows.
type group1 struct {
	g corrGroup
	w [1]groupWin
	e [1][2]corrEntry
}

type group2 struct {
	g corrGroup
	w [2]groupWin
	e [2][2]corrEntry
}

// newGroup returns a group with room for nwin windows (one or two).
func newGroup(key []byte, h uint64, nwin int) *corrGroup {
	var g *corrGroup
	if nwin <= 1 {
		x := &group1{}
		g = &x.g
		g.wins, g.room = x.w[:0], x.e[:]
	} else {
		x := &group2{}
		g = &x.g
		g.wins, g.room = x.w[:0], x.e[:]
	}
	g.h = h
	if len(key) <= len(g.kbuf) {
		if n := copy(g.kbuf[:], key); n > 0 {
			g.key = unsafe.String(&g.kbuf[0], n)
		}
	} else {
		g.key = string(key)
	}
	return g
}

// groupTable finds groups by key: open addressing with linear probing on a
// 64-bit hash of the key. A slot holds the hash and the group, so a lookup
// usually reads one slot line, then the group (whose key it compares and
// which the caller reads anyway). Groups whose keys share a hash sit in
// successive slots.
type groupTable struct {
	seed  maphash.Seed
	slots []groupSlot // a power of two of them; g nil: empty
	n     int         // groups held
}

type groupSlot struct {
	h uint64
	g *corrGroup
}

func (t *groupTable) hash(key []byte) uint64 { return maphash.Bytes(t.seed, key) }

func (t *groupTable) get(h uint64, key []byte) *corrGroup {
	if t.n == 0 {
		return nil
	}
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.g == nil {
			return nil
		}
		if s.h == h && s.g.key == string(key) {
			return s.g
		}
	}
}

// add adds a group for key with room for nwin windows.
func (t *groupTable) add(h uint64, key []byte, nwin int) *corrGroup {
	// At most three quarters full: short probe sequences, and always an
	// empty slot to end them.
	if 4*(t.n+1) > 3*len(t.slots) {
		old := t.slots
		t.slots = make([]groupSlot, max(8, 2*len(old)))
		for _, s := range old {
			if s.g != nil {
				t.put(s)
			}
		}
	}
	g := newGroup(key, h, nwin)
	t.put(groupSlot{h, g})
	t.n++
	return g
}

func (t *groupTable) put(s groupSlot) {
	mask := uint64(len(t.slots) - 1)
	i := s.h & mask
	for t.slots[i].g != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = s
}

// remove takes g (which must be held) out of the table. The slots after
// it move back to close the gap (no tombstones): each slot that is not
// between its hash's home slot and the gap fills the gap.
func (t *groupTable) remove(g *corrGroup) {
	mask := uint64(len(t.slots) - 1)
	i := g.h & mask
	for t.slots[i].g != g {
		i = (i + 1) & mask
	}
	for j := i; ; {
		t.slots[i] = groupSlot{}
		for {
			j = (j + 1) & mask
			s := t.slots[j]
			if s.g == nil {
				t.n--
				return
			}
			// s stays when its home k lies cyclically in (i, j].
			if k := s.h & mask; (j-k)&mask < (j-i)&mask {
				continue
			}
			t.slots[i] = s
			i = j
			break
		}
	}
}

// each calls fn on every group; fn may remove the group it is given.
func (t *groupTable) each(fn func(g *corrGroup)) {
	if t.n == 0 {
		return
	}
	// Start after an empty slot: a removal then only moves slots not yet
	// visited back into the slot just visited, which is visited again.
	mask := len(t.slots) - 1
	start := 0
	for t.slots[start].g != nil {
		start++
	}
	for k := 1; k < len(t.slots); k++ {
		i := (start + k) & mask
		for g := t.slots[i].g; g != nil; {
			fn(g)
			if t.slots[i].g == g {
				break
			}
			g = t.slots[i].g
		}
	}
}

type groupWin struct {
	r *Rule
	w corrWindow
}

// win returns the window of correlation r in g, or nil.
func (g *corrGroup) win(r *Rule) *corrWindow {
	for i := range g.wins {
		if g.wins[i].r == r {
			return &g.wins[i].w
		}
	}
	return nil
}

// entryRoom returns room for the first entries of a new window in the
// group, or nil when the room is taken (the first append allocates).
func (g *corrGroup) entryRoom() []corrEntry {
	for i := range g.room {
		p := &g.room[i]
		taken := false
		for j := range g.wins {
			if e := g.wins[j].w.Entries; cap(e) > 0 && &e[:1][0] == &p[0] {
				taken = true
				break
			}
		}
		if !taken {
			return p[:0]
		}
	}
	return nil
}

// drop removes the window of correlation r from g.
func (g *corrGroup) drop(r *Rule) {
	for i := range g.wins {
		if g.wins[i].r == r {
			clear(g.wins[i].w.Entries[:cap(g.wins[i].w.Entries)]) // the room may be reused
			last := len(g.wins) - 1
			g.wins[i] = g.wins[last]
			g.wins[last] = groupWin{}
			g.wins = g.wins[:last]
			return
		}
	}
}

// corrState is the correlation state of one partition.
type corrState struct {
	groups groupTable
	// open counts the windows of each correlation.
	open []ruleCount
}

type ruleCount struct {
	r *Rule
	n int
}

// opened returns the count of r's open windows.
func (st *corrState) opened(r *Rule) *int {
	for i := range st.open {
		if st.open[i].r == r {
			return &st.open[i].n
		}
	}
	st.open = append(st.open, ruleCount{r: r})
	return &st.open[len(st.open)-1].n
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
	// The group of the last key looked up (nil: none), so that the
	// correlations fed by one event look their key up once.
	lastGroup *corrGroup
	// onClose: some window of an upper-bound correlation was opened
	// (closeExpired has work to do).
	onClose bool
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
	return &correlator{st: corrState{groups: groupTable{seed: maphash.MakeSeed()}}, maxGroups: maxGroups, maxEntries: maxEntries, dropped: dc}
}

// corrFire is a correlation that fired.
type corrFire struct {
	rule   *Rule
	group  string
	key    string   // the group's values separated by NUL bytes
	ids    []string // ids kept of the counted events (online detector)
	value  float64
	first  time.Time
	last   time.Time
	count  int
	device string
}

// hit feeds a match of rule r at time t (the event is loaded in m) to the
// correlations r feeds, recursively for chains, calling fire for each
// correlation that fires.
func (co *correlator) hit(m *Matcher, r *Rule, t time.Time, fire func(corrFire), depth int) {
	if depth > 16 {
		return
	}
	var f corrFire
	for i := range r.feeds {
		l := &r.feeds[i]
		if co.feed(m, l, t, &f) {
			fire(f)
			co.hit(m, l.c, t, fire, depth+1)
		}
	}
}

// group returns the group of key, creating it when create is set, and
// the key's hash (0 when the group came from the cache).
func (co *correlator) group(key []byte, create bool) (*corrGroup, uint64) {
	if co.lastGroup != nil && string(key) == co.lastGroup.key {
		return co.lastGroup, 0
	}
	h := co.st.groups.hash(key)
	g := co.st.groups.get(h, key)
	if g == nil {
		if !create {
			return nil, h
		}
		g = co.st.groups.add(h, key, len(co.st.open))
	}
	co.lastGroup = g
	return g, h
}

// dropWin removes correlation r's window from group g (and the group when
// it is left empty).
func (co *correlator) dropWin(g *corrGroup, r *Rule) {
	g.drop(r)
	*co.st.opened(r)--
	if len(g.wins) == 0 {
		co.st.groups.remove(g)
		if co.lastGroup == g {
			co.lastGroup = nil
		}
	}
}

// feed adds the event to the window of l's correlation for the event's
// group and reports whether the correlation fired (f says how).
func (co *correlator) feed(m *Matcher, l *corrLink, t time.Time, f *corrFire) bool {
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
	now := t.UnixNano()
	g, h := co.group(key, false)
	var w *corrWindow
	if g != nil {
		w = g.win(lk)
	}
	if w == nil {
		if open := co.st.opened(lk); *open >= co.maxGroups {
			co.sweep(lk, now)
			if *open >= co.maxGroups {
				co.dropped.groups.add(1)
				return false
			}
		}
		if g == nil {
			// Known to be absent: insert without a second lookup (unless
			// the sweep removed groups meanwhile).
			if g = co.st.groups.get(h, key); g == nil {
				// Room for as many windows as correlations have opened
				// some: correlations on the same values share groups.
				g = co.st.groups.add(h, key, len(co.st.open))
			}
			co.lastGroup = g
		}
		room := g.entryRoom()
		g.wins = append(g.wins, groupWin{r: lk, w: corrWindow{Entries: room}})
		w = &g.wins[len(g.wins)-1].w
		*co.st.opened(lk)++
		co.onClose = co.onClose || c.onClose
	}
	closed := false
	if c.onClose {
		// Windows of upper-bound conditions are fixed, opened by their
		// first event and judged when they close.
		if l := w.live(); len(l) > 0 && now >= l[0].T+int64(c.Timespan) {
			closed = co.judge(lk, c, w, string(key), f)
			clear(w.Entries)
			*w = corrWindow{}
			w.Entries = g.entryRoom()
		}
	} else {
		w.evict(now - int64(c.Timespan))
	}
	if len(w.live()) >= co.maxEntries {
		co.dropped.entries.add(1)
		w.evict(w.live()[0].T + 1)
	}
	if dev := m.str(slotDevice); dev != w.Device {
		w.Device = strings.Clone(dev)
	}
	e := corrEntry{T: now, R: l.pos}
	distinct := false
	if l.valueSlot >= 0 {
		v := m.str(l.valueSlot)
		switch c.kind {
		case kindValueCount, kindValuePercentile:
			e.V = w.value(v)
			distinct = true
		default:
			e.N, _ = strconv.ParseFloat(v, 64)
			w.sum += e.N
		}
	}
	w.Entries = append(w.Entries, e)
	if m.keepIDs {
		if id := m.str(slotEventID); id != "" {
			w.keepID(now, id)
		}
	}
	if distinct {
		w.countValues()
	}
	if c.onClose {
		return closed
	}
	val, ok := co.measure(c, w, e)
	if !ok {
		return false
	}
	for _, cc := range c.Conds {
		if !cc.holds(val) {
			return false
		}
	}
	live := w.live()
	*f = corrFire{rule: l.c, group: strings.ReplaceAll(string(key), "\x00", ","), key: string(key), value: val,
		first: time.Unix(0, live[0].T).UTC(), last: t, count: len(live), device: w.Device, ids: w.liveIDs()}
	co.dropWin(g, lk) // a fired window starts afresh
	return true
}

// judge evaluates a closed window of an upper-bound correlation.
func (co *correlator) judge(r *Rule, c *Correlation, w *corrWindow, key string, f *corrFire) bool {
	live := w.live()
	if len(live) == 0 {
		return false
	}
	val, ok := co.measure(c, w, live[len(live)-1])
	if !ok {
		return false
	}
	for _, cc := range c.Conds {
		if !cc.holds(val) {
			return false
		}
	}
	*f = corrFire{rule: r, group: strings.ReplaceAll(key, "\x00", ","), key: key, value: val,
		first: time.Unix(0, live[0].T).UTC(), last: time.Unix(0, live[len(live)-1].T).UTC(), count: len(live), device: w.Device, ids: w.liveIDs()}
	return true
}

// closeExpired judges and removes the windows of upper-bound correlations
// that closed before now.
func (co *correlator) closeExpired(now time.Time, fire func(corrFire)) {
	if !co.onClose {
		return
	}
	n := now.UnixNano()
	co.st.groups.each(func(g *corrGroup) {
		for i := 0; i < len(g.wins); i++ {
			r, w := g.wins[i].r, &g.wins[i].w
			c := r.Correlation
			if !c.onClose {
				continue
			}
			if l := w.live(); len(l) > 0 && n < l[0].T+int64(c.Timespan) {
				continue
			}
			var f corrFire
			ok := co.judge(r, c, w, g.key, &f)
			co.dropWin(g, r)
			i-- // the last window took this place
			if ok {
				fire(f)
			}
		}
	})
}

// measure computes the value a correlation's condition is applied to.
func (co *correlator) measure(c *Correlation, w *corrWindow, cur corrEntry) (float64, bool) {
	live := w.live()
	switch c.kind {
	case kindEventCount:
		return float64(len(live)), true
	case kindValueCount:
		return float64(w.distinctValues()), true
	case kindValueSum:
		return w.sum, true
	case kindValueAvg:
		return w.sum / float64(len(live)), true
	case kindValuePercentile:
		// The share (in percent) of the window's events whose field has
		// the current event's value: "lte: 1" finds values seen in at
		// most 1% of the group's events.
		return 100 * float64(w.valueCount(cur.V)) / float64(len(live)), true
	case kindTemporal:
		seen := make([]bool, len(c.rules))
		n := 0
		for _, e := range live {
			if !seen[e.R] {
				seen[e.R] = true
				n++
			}
		}
		return float64(n), true
	case kindTemporalOrdered:
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

// sweep drops the windows of correlation r whose events are all older
// than its timespan.
func (co *correlator) sweep(r *Rule, now int64) {
	before := now - int64(r.Correlation.Timespan)
	co.st.groups.each(func(g *corrGroup) {
		if w := g.win(r); w != nil {
			if l := w.live(); len(l) == 0 || l[len(l)-1].T < before {
				co.dropWin(g, r)
			}
		}
	})
}

// open counts open windows.
func (co *correlator) open() int {
	n := 0
	for _, c := range co.st.open {
		n += c.n
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
	co.st.groups.each(func(g *corrGroup) {
		for _, gw := range g.wins {
			id := firstNonEmpty(gw.r.ID, gw.r.Name, gw.r.Title)
			m := cp.Windows[id]
			if m == nil {
				m = map[string]*corrWindow{}
				cp.Windows[id] = m
			}
			m[strings.Clone(g.key)] = &corrWindow{Entries: append([]corrEntry(nil), gw.w.live()...), Device: gw.w.Device}
		}
	})
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
		distinct := r.Correlation.Type == CorrValueCount || r.Correlation.Type == CorrValuePercentile
		for k, w := range groups {
			g, _ := co.group([]byte(k), true)
			if g.win(r) != nil {
				continue
			}
			g.wins = append(g.wins, groupWin{r: r, w: corrWindow{Entries: w.Entries, Device: w.Device}})
			nw := &g.wins[len(g.wins)-1].w
			all := nw.Entries
			for i := range all {
				e := &all[i]
				nw.sum += e.N
				if distinct {
					// As feed adds them: equal values share one copy.
					nw.Entries = all[:i]
					v := nw.value(e.V)
					nw.Entries = all[:i+1]
					e.V = v
					nw.countValues()
				}
			}
			*co.st.opened(r)++
			co.onClose = co.onClose || r.Correlation.onClose
		}
	}
}

type atomicU64 struct{ v atomic.Uint64 }

func (a *atomicU64) add(n uint64) { a.v.Add(n) }
func (a *atomicU64) load() uint64 { return a.v.Load() }
