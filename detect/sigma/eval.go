package sigma

import (
	"encoding/binary"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// slot holds one referenced field's value for the event being evaluated.
// Strings may point into the input line or the context's arena: they are
// valid only while that event is evaluated.
type slot struct {
	gen     uint32
	present bool
	null    bool
	lowered bool
	isList  bool
	s       string
	lower   string
	list    []string
}

// source loads field values lazily and lists an event's strings for
// keyword searches.
type source interface {
	load(c *evalCtx, f int, s *slot)
	strings(c *evalCtx, fn func(s string) bool) bool
}

// evalCtx is the per-goroutine evaluation state. It is reused from one
// event to the next.
type evalCtx struct {
	gen   uint32
	slots []slot
	src   source // nil: slots are filled eagerly, unset means absent
	arena []byte
	// tmp is a scratch buffer for unescaping; name holds dotted paths.
	tmp  []byte
	name []byte
	// stamp[rule index] == gen marks a rule selected by the prefilter.
	stamp []uint32
	// mask[rule index] has a bit per prefilter clause that holds; want,
	// the bits of all the rule's clauses (a dense copy of the rules').
	mask, want []uint8
	// cands are the rules the prefilter stamped for this event.
	cands []int32
	sel   []int32
	// rec collects prefilter entries of one value; memo remembers them
	// per value (litmemo.go).
	rec  []int32
	memo *litMemo
	// vals are the scalars of the current NDJSON line.
	vals []scalarVal
	// bs is the index of the next backslash in the line being scanned
	// (-1: not searched yet).
	bs int
	// qm and bm are the quote and backslash masks of the line (quotes.go).
	qm, bm []uint64
	pad    [64]byte
	// Key prediction for top-level keys. A key id is a slot of kt (the
	// rule set's key table) below len(kt.slots), the start of a line at
	// len(kt.slots), and above it a key no rule reads (lkeys, learnt
	// from the lines). kpred[id] are the ids of the keys that followed key
	// id, most recent first; kprev is the previous key's id.
	kt    *keyTable
	kpred []predSet
	kpat  []keyPat // the compact form of each key id
	kprev int32
	lkeys []string
	lidx  map[string]int32
	// anyMemo remembers the results of long ORs per value.
	anyMemo map[*fieldNode]map[string]bool
}

func newEvalCtx(nfields int) *evalCtx {
	return &evalCtx{slots: make([]slot, nfields), arena: make([]byte, 0, 4096), name: make([]byte, 0, 256)}
}

// reset starts a new event.
func (c *evalCtx) reset(nfields int) {
	c.gen++
	if c.gen == 0 { // wrapped: clear stale generations
		for i := range c.slots {
			c.slots[i].gen = 0
		}
		clear(c.stamp)
		c.gen = 1
	}
	if len(c.slots) < nfields {
		c.slots = append(c.slots, make([]slot, nfields-len(c.slots))...)
	}
	c.arena = c.arena[:0]
	c.cands = c.cands[:0]
}

// get returns field f's slot for the current event.
func (c *evalCtx) get(f int) *slot {
	s := &c.slots[f]
	if s.gen != c.gen {
		s.gen = c.gen
		s.present, s.null, s.lowered, s.isList = false, false, false, false
		s.list = s.list[:0]
		if c.src != nil {
			c.src.load(c, f, s)
		}
	}
	return s
}

// set fills slot f with a string value (used by eager sources).
func (c *evalCtx) set(f int, v string, null bool) {
	s := &c.slots[f]
	s.gen = c.gen
	s.present, s.null, s.lowered, s.isList = true, null, false, false
	s.s = v
	s.list = s.list[:0]
}

// appendList adds an element to slot f's list value.
func (c *evalCtx) appendList(f int, v string) {
	s := &c.slots[f]
	if s.gen != c.gen || !s.isList {
		s.gen = c.gen
		s.present, s.null, s.lowered, s.isList = true, false, false, true
		s.s = ""
		s.list = s.list[:0]
	}
	s.list = append(s.list, v)
}

// str returns bytes b stored in the arena as a string valid for this event.
func (c *evalCtx) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(c.arena)-len(c.arena) < len(b) {
		// A fresh arena: strings already handed out keep the old one alive.
		n := 2 * cap(c.arena)
		if n < len(b)+4096 {
			n = len(b) + 4096
		}
		c.arena = make([]byte, 0, n)
	}
	start := len(c.arena)
	c.arena = append(c.arena, b...)
	return unsafe.String(&c.arena[start], len(b))
}

// lowerOf returns s lowercased, allocating in the arena only when needed.
func (c *evalCtx) lowerOf(s string) string {
	// Eight bytes at a time: any non-ASCII byte sends the value to
	// strings.ToLower; without capitals it is its own lowercase form.
	var up uint64
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := load8(s, i)
		if w&hi8 != 0 {
			return strings.ToLower(s)
		}
		up |= upper8(w)
	}
	for ; i < len(s); i++ {
		if b := s[i]; b >= 0x80 {
			return strings.ToLower(s)
		} else if 'A' <= b && b <= 'Z' {
			up = 1
		}
	}
	if up == 0 {
		return s
	}
	if cap(c.arena)-len(c.arena) < len(s) {
		c.arena = make([]byte, 0, max(2*cap(c.arena), len(s)+4096))
	}
	start := len(c.arena)
	c.arena = c.arena[:start+len(s)]
	dst := c.arena[start:]
	for i = 0; i+8 <= len(s); i += 8 {
		w := load8(s, i)
		binary.LittleEndian.PutUint64(dst[i:], w|upper8(w)>>2)
	}
	for ; i < len(s); i++ {
		dst[i] = lowerTab[s[i]]
	}
	return unsafe.String(&dst[0], len(s))
}

// load8 reads eight bytes of s from i (i+8 <= len(s)), little-endian.
func load8(s string, i int) uint64 {
	return binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s), len(s))[i:])
}

// upper8 marks, with its high bit, each byte of an ASCII word that is an
// upper-case letter (adding 0x20 — the mark shifted right by two — lowers
// it).
func upper8(w uint64) uint64 {
	return (w + 0x3f3f3f3f3f3f3f3f) &^ (w + 0x2525252525252525) & hi8
}

func (c *evalCtx) lowerSlot(s *slot) string {
	if !s.lowered {
		s.lower = c.lowerOf(s.s)
		s.lowered = true
	}
	return s.lower
}

// Predicate operations.
const (
	opEq uint8 = iota
	opPrefix
	opSuffix
	opContains
	opAny // "*": any value
	opGlob
	opRe
	opCIDR
	opLt
	opLte
	opGt
	opGte
	opNumEq
	opNull
	opRefEq
	opRefPrefix
	opRefSuffix
	opRefContains
)

// Time parts for the minute..year modifiers.
const (
	partNone uint8 = iota
	partMinute
	partHour
	partDay
	partWeek
	partMonth
	partYear
)

// pred is one compiled value test.
type pred struct {
	op    uint8
	cased bool
	part  uint8 // time part extracted before a numeric comparison
	lit   string
	glob  []globTok
	re    *regexp.Regexp
	// reLits are literals one of which every match of re contains
	// (lowercase); reCased, for an expression without the i flag, the same
	// as written, tested on the value itself.
	reLits, reCased []string
	nets            []netip.Prefix
	num             float64
	ref             int
	raw             string // the value as written, for explanations
}

type globTok struct {
	lit  string
	star bool
	one  bool
}

// val is a value under test with its lowercase form computed on demand.
type val struct {
	s    string
	l    string
	done bool
	sl   *slot // when set, the lowercase form is cached in the slot
}

func (v *val) lower(c *evalCtx) string {
	if !v.done {
		if v.sl != nil {
			v.l = c.lowerSlot(v.sl)
		} else {
			v.l = c.lowerOf(v.s)
		}
		v.done = true
	}
	return v.l
}

// match tests one value.
func (p *pred) match(c *evalCtx, vv *val) bool {
	v := vv.s
	switch p.op {
	case opEq, opPrefix, opSuffix, opContains:
		x := v
		if !p.cased {
			x = vv.lower(c)
		}
		switch p.op {
		case opEq:
			return x == p.lit
		case opPrefix:
			return strings.HasPrefix(x, p.lit)
		case opSuffix:
			return strings.HasSuffix(x, p.lit)
		default:
			return strings.Contains(x, p.lit)
		}
	case opAny:
		return true
	case opGlob:
		x := v
		if !p.cased {
			x = vv.lower(c)
		}
		if !strings.Contains(x, p.lit) {
			return false
		}
		return globMatch(p.glob, x)
	case opRe:
		if len(p.reCased) > 0 {
			found := false
			for _, l := range p.reCased {
				if strings.Contains(v, l) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		} else if len(p.reLits) > 0 {
			// A match contains one of these literals: a cheap test first.
			lv, found := vv.lower(c), false
			for _, l := range p.reLits {
				if strings.Contains(lv, l) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return p.re.MatchString(v)
	case opCIDR:
		a, err := netip.ParseAddr(v)
		if err != nil {
			return false
		}
		a = a.Unmap()
		for _, n := range p.nets {
			if n.Contains(a) {
				return true
			}
		}
		return false
	case opLt, opLte, opGt, opGte, opNumEq:
		var f float64
		if p.part != partNone {
			t, ok := parseTime(v)
			if !ok {
				return false
			}
			f = float64(timePart(t, p.part))
		} else {
			var err error
			f, err = strconv.ParseFloat(v, 64)
			if err != nil {
				return false
			}
		}
		switch p.op {
		case opLt:
			return f < p.num
		case opLte:
			return f <= p.num
		case opGt:
			return f > p.num
		case opGte:
			return f >= p.num
		default:
			return f == p.num
		}
	case opRefEq, opRefPrefix, opRefSuffix, opRefContains:
		rs := c.get(p.ref)
		if !rs.present || rs.null {
			return false
		}
		x, y := v, rs.s
		if rs.isList {
			if len(rs.list) == 0 {
				return false
			}
			y = rs.list[0]
		}
		if !p.cased {
			x, y = vv.lower(c), c.lowerOf(y)
		}
		switch p.op {
		case opRefEq:
			return x == y
		case opRefPrefix:
			return strings.HasPrefix(x, y)
		case opRefSuffix:
			return strings.HasSuffix(x, y)
		default:
			return strings.Contains(x, y)
		}
	}
	return false
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05Z07:00", "2006-01-02"}

func parseTime(v string) (time.Time, bool) {
	if t, ok := parseUTC(v); ok {
		return t, true
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t, true
		}
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n > 0 {
		if n > 1e12 { // milliseconds
			return time.UnixMilli(int64(n)).UTC(), true
		}
		return time.Unix(int64(n), 0).UTC(), true
	}
	return time.Time{}, false
}

// minuteCache remembers the start of the last minute parseUTC read, so
// that the times of a stream, which mostly share their minute with the
// previous event's, cost a compare of their first sixteen bytes and the
// parse of the seconds.
type minuteCache struct {
	prefix string // "2006-01-02T15:04"
	unix   int64  // that minute's Unix time
}

// eventTime is parseTime with the minute of the previous time remembered.
func (m *minuteCache) eventTime(v string) (time.Time, bool) {
	if len(v) >= 20 && len(m.prefix) == 16 && v[:16] == m.prefix && v[16] == ':' && v[len(v)-1] == 'Z' {
		s0, s1 := v[17]-'0', v[18]-'0'
		if s0 <= 5 && s1 <= 9 {
			if ns, ok := fraction(v[19 : len(v)-1]); ok {
				return time.Unix(m.unix+int64(s0)*10+int64(s1), ns).UTC(), true
			}
		}
	}
	if t, ok := parseUTC(v); ok {
		m.prefix = strings.Clone(v[:16])
		m.unix = t.Unix() - int64(t.Second())
		return t, true
	}
	return parseTime(v)
}

// fraction reads the fractional seconds of an RFC 3339 time: "" or "."
// and one to nine digits.
func fraction(f string) (int64, bool) {
	if f == "" {
		return 0, true
	}
	if f[0] != '.' || len(f) < 2 || len(f) > 10 {
		return 0, false
	}
	ns := int64(0)
	for i := 1; i < len(f); i++ {
		c := f[i] - '0'
		if c > 9 {
			return 0, false
		}
		ns = ns*10 + int64(c)
	}
	for i := len(f); i < 10; i++ {
		ns *= 10
	}
	return ns, true
}

// parseUTC reads the common form of event times, RFC 3339 in UTC with up
// to nine fractional digits ("2026-08-21T01:22:14.987Z"), without the
// general parser; ok is false for any other form.
func parseUTC(v string) (time.Time, bool) {
	if len(v) < 20 || len(v) > 30 || v[4] != '-' || v[7] != '-' || v[10] != 'T' || v[13] != ':' || v[16] != ':' || v[len(v)-1] != 'Z' {
		return time.Time{}, false
	}
	var dig [14]int
	for i, p := range [14]uint8{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
		c := v[p] - '0'
		if c > 9 {
			return time.Time{}, false
		}
		dig[i] = int(c)
	}
	y := dig[0]*1000 + dig[1]*100 + dig[2]*10 + dig[3]
	mo, d := dig[4]*10+dig[5], dig[6]*10+dig[7]
	h, mi, sec := dig[8]*10+dig[9], dig[10]*10+dig[11], dig[12]*10+dig[13]
	if mo < 1 || mo > 12 || d < 1 || d > daysIn(mo, y) || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	ns := 0
	if len(v) > 20 {
		if v[19] != '.' || len(v) == 21 {
			return time.Time{}, false
		}
		scale := 100000000
		for i := 20; i < len(v)-1; i++ {
			c := v[i] - '0'
			if c > 9 {
				return time.Time{}, false
			}
			ns += int(c) * scale
			scale /= 10
		}
	}
	// Days since 1970-01-01 of the civil date (proleptic Gregorian).
	yy := y
	if mo <= 2 {
		yy--
	}
	era := yy / 400
	if yy < 0 {
		era = (yy - 399) / 400
	}
	yoe := yy - era*400
	mp := (mo + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	days := era*146097 + doe - 719468
	return time.Unix(int64(days)*86400+int64(h*3600+mi*60+sec), int64(ns)).UTC(), true
}

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func timePart(t time.Time, part uint8) int {
	switch part {
	case partMinute:
		return t.Minute()
	case partHour:
		return t.Hour()
	case partDay:
		return t.Day()
	case partWeek:
		_, w := t.ISOWeek()
		return w
	case partMonth:
		return int(t.Month())
	default:
		return t.Year()
	}
}

// globMatch matches s against a pattern of literals, '*' and '?' (one
// character) tokens, with the classic linear backtracking on the last star.
func globMatch(toks []globTok, s string) bool {
	ti, si := 0, 0
	starT, starS := -1, 0
	for {
		if ti < len(toks) {
			t := toks[ti]
			switch {
			case t.star:
				starT, starS = ti, si
				ti++
				continue
			case t.one:
				if si < len(s) {
					_, n := utf8.DecodeRuneInString(s[si:])
					si += n
					ti++
					continue
				}
			default:
				if strings.HasPrefix(s[si:], t.lit) {
					si += len(t.lit)
					ti++
					continue
				}
			}
		} else if si == len(s) {
			return true
		}
		if starT < 0 || starS >= len(s) {
			return false
		}
		if nt := starT + 1; nt < len(toks) && toks[nt].lit != "" && toks[nt].lit[0]&0xc0 != 0x80 {
			// The star can only end where the literal after it occurs:
			// jump there instead of trying every rune (a literal that
			// does not start inside a UTF-8 sequence only occurs where
			// a rune starts).
			k := strings.Index(s[starS+1:], toks[nt].lit)
			if k < 0 {
				return false
			}
			starS += 1 + k
		} else {
			_, n := utf8.DecodeRuneInString(s[starS:])
			starS += n
		}
		ti, si = starT+1, starS
	}
}

// node is a compiled boolean expression over one event.
type node interface {
	eval(c *evalCtx) bool
}

type andNode []node

func (n andNode) eval(c *evalCtx) bool {
	for _, x := range n {
		if !x.eval(c) {
			return false
		}
	}
	return true
}

type orNode []node

func (n orNode) eval(c *evalCtx) bool {
	for _, x := range n {
		if x.eval(c) {
			return true
		}
	}
	return false
}

type notNode struct{ n node }

func (n notNode) eval(c *evalCtx) bool { return !n.n.eval(c) }

// countNode is "N of": at least min children true (min == len for "all").
type countNode struct {
	min  int
	kids []node
}

func (n countNode) eval(c *evalCtx) bool {
	hit := 0
	for i, x := range n.kids {
		if x.eval(c) {
			hit++
			if hit >= n.min {
				return true
			}
		}
		if hit+len(n.kids)-i-1 < n.min {
			return false
		}
	}
	return hit >= n.min
}

// eachLeaf calls fn on every leaf of the condition tree n: the nodes
// that are not and, or, not or count nodes.
func eachLeaf(n node, fn func(node)) {
	switch x := n.(type) {
	case andNode:
		for _, k := range x {
			eachLeaf(k, fn)
		}
	case orNode:
		for _, k := range x {
			eachLeaf(k, fn)
		}
	case notNode:
		eachLeaf(x.n, fn)
	case countNode:
		for _, k := range x.kids {
			eachLeaf(k, fn)
		}
	default:
		fn(n)
	}
}

type constNode bool

func (n constNode) eval(*evalCtx) bool { return bool(n) }

// fieldNode tests one field against a list of values.
type fieldNode struct {
	field  int
	name   string
	preds  []pred
	all    bool // values are ANDed
	neg    bool // neq: the result is inverted
	absent bool // the result when the field is absent (before neg)
	null   bool // the result when the field is JSON null (before neg)
	idx    *predIndex
}

func (n *fieldNode) eval(c *evalCtx) bool {
	return n.test(c) != n.neg
}

func (n *fieldNode) test(c *evalCtx) bool {
	s := c.get(n.field)
	if !s.present {
		return n.absent
	}
	if s.null {
		return n.null
	}
	if s.isList {
		if n.all {
			for i := range n.preds {
				if !n.anyElem(c, &n.preds[i], s) {
					return false
				}
			}
			return len(n.preds) > 0
		}
		for i := range n.preds {
			if n.anyElem(c, &n.preds[i], s) {
				return true
			}
		}
		return false
	}
	vv := val{s: s.s, sl: s}
	if n.all {
		for i := range n.preds {
			if !n.preds[i].match(c, &vv) {
				return false
			}
		}
		return len(n.preds) > 0
	}
	if n.idx != nil {
		if n.idx.pure {
			return c.anyCached(n, &vv)
		}
		return n.idx.any(c, n.preds, &vv)
	}
	for i := range n.preds {
		if n.preds[i].match(c, &vv) {
			return true
		}
	}
	return false
}

func (n *fieldNode) anyElem(c *evalCtx, p *pred, s *slot) bool {
	for _, e := range s.list {
		vv := val{s: e}
		if p.match(c, &vv) {
			return true
		}
	}
	return false
}

// existsNode is field|exists.
type existsNode struct {
	field int
	want  bool
}

func (n existsNode) eval(c *evalCtx) bool { return c.get(n.field).present == n.want }

// keywordNode searches every string of the event.
type keywordNode struct {
	preds []pred
	all   bool
	idx   *predIndex // for long ORs
}

func (n *keywordNode) eval(c *evalCtx) bool {
	if c.src == nil {
		return false
	}
	if n.all {
		for i := range n.preds {
			p := &n.preds[i]
			found := !c.src.strings(c, func(v string) bool {
				vv := val{s: v}
				return !p.match(c, &vv)
			})
			if !found {
				return false
			}
		}
		return len(n.preds) > 0
	}
	return !c.src.strings(c, func(v string) bool {
		vv := val{s: v}
		if n.idx != nil {
			return !n.idx.any(c, n.preds, &vv)
		}
		for i := range n.preds {
			if n.preds[i].match(c, &vv) {
				return false
			}
		}
		return true
	})
}

// predIndex speeds up a long OR of value tests: each test with a literal
// of three bytes or more is reached through a small trigram filter, so a
// value is matched against the few tests whose literal it contains.
type predIndex struct {
	bits  [64]uint64 // 4096-entry trigram filter
	cands map[uint32][]predRef
	rest  []int // tests without a usable literal, always run
	// pure: the result depends on the value alone (no fieldref test), so
	// it may be remembered per value (anyCached).
	pure bool
}

// maxAnyCache bounds the values remembered per long OR and context.
const maxAnyCache = 4096

// anyCached is n.idx.any remembered per value: the long ORs of the corpus
// (user agents, tools, paths) meet the same values again and again.
func (c *evalCtx) anyCached(n *fieldNode, v *val) bool {
	m := c.anyMemo[n]
	if m == nil {
		if c.anyMemo == nil {
			c.anyMemo = map[*fieldNode]map[string]bool{}
		}
		m = map[string]bool{}
		c.anyMemo[n] = m
	}
	if r, ok := m[v.s]; ok {
		return r
	}
	r := n.idx.any(c, n.preds, v)
	if len(m) >= maxAnyCache {
		clear(m)
	}
	m[strings.Clone(v.s)] = r
	return r
}

type predRef struct {
	pred int
	lit  string
	off  int
}

const minIndexed = 8

func tri12(x uint32) uint32 { return (x * 2654435761) >> 20 }

func newPredIndex(preds []pred) *predIndex {
	if len(preds) < minIndexed {
		return nil
	}
	ix := &predIndex{cands: map[uint32][]predRef{}, pure: true}
	for i := range preds {
		p := &preds[i]
		if p.op >= opRefEq && p.op <= opRefContains {
			ix.pure = false
		}
		var lits []string
		if p.op == opRe {
			for _, l := range p.reLits {
				if l, ok := asciiLit(l, len(l) >= 3); ok {
					lits = append(lits, l)
				} else {
					lits = nil
					break
				}
			}
		} else if l, ok := predLiteral(p); ok {
			lits = []string{l}
		}
		if len(lits) == 0 {
			ix.rest = append(ix.rest, i)
			continue
		}
		for _, l := range lits {
			x := uint32(l[0])<<16 | uint32(l[1])<<8 | uint32(l[2])
			k := tri12(x)
			ix.bits[k>>6] |= 1 << (k & 63)
			ix.cands[k] = append(ix.cands[k], predRef{pred: i, lit: l})
		}
	}
	if len(ix.rest) == len(preds) {
		return nil
	}
	return ix
}

// any reports whether one of preds matches v.
func (ix *predIndex) any(c *evalCtx, preds []pred, v *val) bool {
	for _, i := range ix.rest {
		if preds[i].match(c, v) {
			return true
		}
	}
	s := v.s
	if len(s) < 3 {
		return false
	}
	x := uint32(lowerTab[s[0]])<<8 | uint32(lowerTab[s[1]])
	for i := 2; i < len(s); i++ {
		x = (x<<8 | uint32(lowerTab[s[i]])) & 0xffffff
		k := tri12(x)
		if ix.bits[k>>6]&(1<<(k&63)) == 0 {
			continue
		}
		for _, r := range ix.cands[k] {
			start := i - 2
			if start+len(r.lit) <= len(s) && eqFoldASCII(s[start:start+len(r.lit)], r.lit) && preds[r.pred].match(c, v) {
				return true
			}
		}
	}
	return false
}
