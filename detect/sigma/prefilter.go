package sigma

import (
	"math/bits"
	"sort"
	"strings"
	"sync/atomic"
)

// routeIDs numbers routes.
var routeIDs atomic.Uint32

// atom is a literal test: the field value contains lit (ignoring ASCII
// case). A rule's necessary condition is a conjunction of up to
// maxClauses clauses, each a disjunction of atoms (atom.group numbers the
// clause): the rule can only match an event for which every clause has an
// atom that holds, so an Aho–Corasick scan of the event's fields selects
// the few rules worth evaluating.
type atom struct {
	field int
	lit   string
	group uint8
}

type clause []atom

const maxClauses = 3

// litKey is a literal of one field (or kwField).
type litKey struct {
	field int
	lit   string
}

// litFreq counts, per literal, the rules of a rule set that test it. A
// literal many rules test is a value the events of that source commonly
// hold (`type: EXECVE`, `cs-method: GET`), so it selects few events and
// is a poor prefilter. tri counts, per trigram, the rules whose literals
// (every run of a wildcard pattern included) hold it: of a pattern's
// runs, the one whose trigrams fewest rules use is the most telling
// (`.b64 ` rather than ` /tmp/` in `* /tmp/*.b64 *`).
type litFreq struct {
	n   map[litKey]int
	tri map[string]int
}

// ruleLitFreq counts the literals of rules' conditions.
func ruleLitFreq(rules []*Rule) litFreq {
	df := litFreq{n: map[litKey]int{}, tri: map[string]int{}}
	for _, r := range rules {
		seen := map[litKey]bool{}
		tris := map[string]bool{}
		addTris := func(l string) {
			for i := 0; i+3 <= len(l); i++ {
				tris[l[i:i+3]] = true
			}
		}
		eachLeaf(r.cond, func(n node) {
			var ps []pred
			switch x := n.(type) {
			case *keywordNode:
				ps = x.preds
			case *fieldNode:
				ps = x.preds
			}
			for i := range ps {
				l, ok := predLiteral(&ps[i])
				if x, isField := n.(*fieldNode); isField && ok {
					seen[litKey{x.field, l}] = true
				}
				switch {
				case ps[i].op == opGlob:
					for _, t := range ps[i].glob {
						if !t.star && !t.one {
							addTris(strings.ToLower(t.lit))
						}
					}
				case ok:
					addTris(l)
				}
			}
		})
		for k := range seen {
			df.n[k]++
		}
		for t := range tris {
			df.tri[t]++
		}
	}
	return df
}

// predLiteral is predLiteral, except that a wildcard pattern is
// represented by its run whose trigrams fewest rules use (see litFreq),
// longer runs first among equals.
func (df litFreq) predLiteral(p *pred) (string, bool) {
	if p.op != opGlob || df.tri == nil {
		return predLiteral(p)
	}
	best, bestScore := "", 0
	for _, t := range p.glob {
		if t.star || t.one || len(t.lit) < 3 {
			continue
		}
		l, ok := asciiLit(strings.ToLower(t.lit), true)
		if !ok {
			continue
		}
		rarest := 1 << 30
		for i := 0; i+3 <= len(l); i++ {
			rarest = min(rarest, df.tri[l[i:i+3]])
		}
		if sc := len(l)*16 - 24*bits.Len(uint(rarest)); best == "" || sc > bestScore {
			best, bestScore = l, sc
		}
	}
	return best, best != ""
}

// necessary returns the atoms of a rule's necessary condition and the
// number of clauses, or nil when none is known (the rule is always
// evaluated).
func (df litFreq) necessary(n node) ([]atom, int) {
	cls, ok := df.nec(n)
	if !ok || len(cls) == 0 {
		return nil, 0
	}
	var out []atom
	for g, cl := range cls {
		for _, a := range cl {
			a.group = uint8(g)
			out = append(out, a)
		}
	}
	return out, len(cls)
}

func (df litFreq) clauseScore(as clause) int {
	if len(as) == 0 {
		return 0
	}
	min := 1 << 30
	for _, a := range as {
		// Longer literals are more selective, and so are literals few
		// rules test.
		sc := len(a.lit) * 16
		if n := df.n[litKey{a.field, a.lit}]; n > 1 {
			sc -= 24 * bits.Len(uint(n-1))
		}
		if sc < min {
			min = sc
		}
	}
	// Many alternatives cost a little.
	return min - len(as)/8
}

// best keeps the maxClauses most selective clauses.
func (df litFreq) best(cls []clause) []clause {
	sort.SliceStable(cls, func(i, j int) bool { return df.clauseScore(cls[i]) > df.clauseScore(cls[j]) })
	if len(cls) > maxClauses {
		cls = cls[:maxClauses]
	}
	return cls
}

func (df litFreq) andOf(kids []node) ([]clause, bool) {
	var all []clause
	for _, k := range kids {
		if cl, ok := df.nec(k); ok {
			all = append(all, cl...)
		}
	}
	if len(all) == 0 {
		return nil, false
	}
	return df.best(all), true
}

func (df litFreq) orOf(kids []node) ([]clause, bool) {
	var out clause
	for _, k := range kids {
		cl, ok := df.nec(k)
		if !ok || len(cl) == 0 {
			return nil, false
		}
		out = append(out, cl[0]...) // the best clause of each alternative
	}
	return []clause{out}, true
}

// literalClauses turns value predicates into clauses: one clause with
// every value when they are ORed, one clause per value under |all.
func (df litFreq) literalClauses(field int, preds []pred, all bool) ([]clause, bool) {
	var one clause
	var cls []clause
	for i := range preds {
		if p := &preds[i]; p.op == opRe {
			var rc clause
			for _, l := range p.reLits {
				if l, ok := asciiLit(l, len(l) >= 3); ok {
					rc = append(rc, atom{field: field, lit: l})
				} else {
					rc = nil
					break
				}
			}
			if len(rc) == 0 {
				if all {
					continue
				}
				return nil, false
			}
			if all {
				cls = append(cls, rc)
			} else {
				one = append(one, rc...)
			}
			continue
		}
		lit, ok := df.predLiteral(&preds[i])
		if !ok {
			if all {
				continue
			}
			return nil, false
		}
		a := atom{field: field, lit: lit}
		if all {
			cls = append(cls, clause{a})
			continue
		}
		one = append(one, a)
	}
	if all {
		if len(cls) == 0 {
			return nil, false
		}
		return df.best(cls), true
	}
	return []clause{one}, len(one) > 0
}

func (df litFreq) nec(n node) ([]clause, bool) {
	switch x := n.(type) {
	case andNode:
		return df.andOf(x)
	case orNode:
		return df.orOf(x)
	case countNode:
		if x.min >= len(x.kids) {
			return df.andOf(x.kids)
		}
		return df.orOf(x.kids)
	case *keywordNode:
		return df.literalClauses(kwField, x.preds, x.all)
	case *fieldNode:
		if x.neg || x.absent || x.null || len(x.preds) == 0 {
			return nil, false
		}
		return df.literalClauses(x.field, x.preds, x.all)
	}
	return nil, false
}

// kwField is the atom field of keyword searches: any string of the event.
const kwField = -1

// predLiteral returns a lowercase ASCII literal of three bytes or more
// that a matching value contains (ignoring case). Non-ASCII literals are
// not used: the filter folds ASCII case only.
func predLiteral(p *pred) (string, bool) {
	lit, ok := predLiteral1(p)
	return asciiLit(lit, ok)
}

func asciiLit(lit string, ok bool) (string, bool) {
	if !ok {
		return "", false
	}
	for i := 0; i < len(lit); i++ {
		if lit[i] >= 0x80 {
			return "", false
		}
	}
	return lit, true
}

func predLiteral1(p *pred) (string, bool) {
	switch p.op {
	case opEq, opPrefix, opSuffix, opContains:
		if len(p.lit) < 3 {
			return "", false
		}
		return strings.ToLower(p.lit), true
	case opGlob:
		best := ""
		for _, t := range p.glob {
			if !t.star && !t.one && len(t.lit) > len(best) {
				best = t.lit
			}
		}
		if len(best) < 3 {
			return "", false
		}
		return strings.ToLower(best), true
	}
	return "", false
}

// lowerTab folds ASCII upper case.
var lowerTab = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
		if 'A' <= i && i <= 'Z' {
			t[i] = byte(i + 'a' - 'A')
		}
	}
	return t
}()

// byteRarity guesses how rare a byte is in log text (higher is rarer).
func byteRarity(b byte) int {
	switch {
	case 'a' <= b && b <= 'z', b == ' ':
		return 1
	case '0' <= b && b <= '9':
		return 2
	case b == '.' || b == '/' || b == '-' || b == '_' || b == ':' || b == ',' || b == '"' || b == '=':
		return 3
	case b >= 0x80:
		return 3
	}
	return 6
}

// litTable finds literals in values with an n-gram filter: every literal
// (three bytes or more) is represented by its rarest trigram; a
// bitmap of those n-grams is tested at each position (independent loads,
// no automaton state chain), and hits are verified against the literals
// that own the n-gram.
type litTable struct {
	bits3  [1 << (tri - 6)]uint64
	cands3 map[uint32][]litCand // while building
	// off[k]..off[k+1] are the candidates of hash k in flat.
	off  []uint32
	flat []litCand
}

// tri is the number of bits of the trigram hash.
const tri = 16

// freeze lays the candidates out flat for the scan.
func (t *litTable) freeze() {
	t.off = make([]uint32, 1<<tri+1)
	t.flat = t.flat[:0]
	for k := 0; k < 1<<tri; k++ {
		t.off[k] = uint32(len(t.flat))
		t.flat = append(t.flat, t.cands3[uint32(k)]...)
	}
	t.off[1<<tri] = uint32(len(t.flat))
	t.cands3 = nil
}

type litCand struct {
	lit   string
	off   int // position of the n-gram in lit
	field int // slot, or kwField for keyword literals
	rules []int32
}

func trigram(a, b, c byte) uint32 {
	return triHash(uint32(lowerTab[a])<<16 | uint32(lowerTab[b])<<8 | uint32(lowerTab[c]))
}

func triHash(x uint32) uint32 { return (x * 2654435761) >> (32 - tri) }

// scan marks the rules whose literals occur in s, a value of the fields
// ids (nil: a value only keyword literals apply to).
func (t *litTable) scan(c *evalCtx, s string, ids []int) {
	c.rec = t.collect(s, ids, c.rec[:0])
	c.markAll(c.rec)
}

// collect appends to out the entries (rule index<<3 | clause) of the
// literals that occur in s, a value of the fields ids (nil: a value only
// keyword literals apply to).
func (t *litTable) collect(s string, ids []int, out []int32) []int32 {
	if len(s) < 3 {
		return out
	}
	// A rolling window of the last three folded bytes.
	x := uint32(lowerTab[s[0]])<<8 | uint32(lowerTab[s[1]])
	for i := 2; i < len(s); i++ {
		x = (x<<8 | uint32(lowerTab[s[i]])) & 0xffffff
		k := triHash(x)
		if t.bits3[k>>6]&(1<<(k&63)) == 0 {
			continue
		}
		for ci, end := t.off[k], t.off[k+1]; ci < end; ci++ {
			cd := &t.flat[ci]
			start := i - 2 - cd.off
			if start < 0 || start+len(cd.lit) > len(s) || (cd.field != kwField && !hasID(ids, cd.field)) ||
				!eqFoldASCII(s[start:start+len(cd.lit)], cd.lit) {
				continue
			}
			if len(cd.rules) == 1 { // the usual case, without a memmove call
				out = append(out, cd.rules[0])
			} else {
				out = append(out, cd.rules...)
			}
		}
	}
	return out
}

// markAll marks the prefilter clauses of entries vs (rule index<<3 |
// clause) as holding for the current event.
func (c *evalCtx) markAll(vs []int32) {
	for _, v := range vs {
		ri := v >> 3
		if c.stamp[ri] != c.gen {
			c.stamp[ri] = c.gen
			c.mask[ri] = 0
			c.cands = append(c.cands, ri)
		}
		c.mask[ri] |= 1 << (v & 7)
	}
}

func hasID(ids []int, f int) bool {
	for _, x := range ids {
		if x == f {
			return true
		}
	}
	return false
}

// eqFoldASCII compares s with a lowercase literal, folding s's ASCII case.
func eqFoldASCII(s, lit string) bool {
	for i := 0; i < len(lit); i++ {
		if lowerTab[s[i]] != lit[i] {
			return false
		}
	}
	return true
}

// route is the plan for events of one logsource: the rules that apply and
// the literal table that selects candidates among them.
type route struct {
	id      uint32 // distinct among the routes of a process (litMemo keys)
	rules   []*Rule
	always  []int32 // indexes of rules without a prefilter
	lits    *litTable
	scanned []bool // slot → some literal of this route is on that field
	fields  []int  // the scanned slots
	// keyScan[key table position + 1] is 1 when some field of that key
	// is scanned (keyScan[0], for keys no rule reads, is 0).
	keyScan  []uint8
	keywords bool // some literal is a keyword literal (any string)
}

// small reports whether the route evaluates all its rules (always)
// without sweeping the event for their literals.
func (rt *route) small() bool { return len(rt.rules) <= smallRoute }

// smallRoute is the most rules a route evaluates without a prefilter.
const smallRoute = 4

// buildRoute plans the route of rules; keys is the rule set's key table.
func buildRoute(rules []*Rule, nfields int, keys []keySlot) *route {
	rt := &route{id: routeIDs.Add(1), rules: rules, scanned: make([]bool, nfields)}
	t := &litTable{cands3: map[uint32][]litCand{}}
	type ckey struct {
		field int
		lit   string
	}
	index := map[ckey][2]int{} // → trigram, position in cands
	// How many distinct literals contain each trigram.
	triUse := map[string]int{}
	seen := map[string]bool{}
	for _, r := range rules {
		for _, a := range r.prefilt {
			if seen[a.lit] {
				continue
			}
			seen[a.lit] = true
			own := map[string]bool{}
			for i := 0; i+2 < len(a.lit); i++ {
				if t := a.lit[i : i+3]; !own[t] {
					own[t] = true
					triUse[t]++
				}
			}
		}
	}
	for _, r := range rules {
		if r.prefilt == nil {
			rt.always = append(rt.always, int32(r.index))
		}
		for _, a := range r.prefilt {
			v := int32(r.index)<<3 | int32(a.group)
			if pos, ok := index[ckey{a.field, a.lit}]; ok {
				cd := &t.cands3[uint32(pos[0])][pos[1]]
				if n := len(cd.rules); n == 0 || cd.rules[n-1] != v {
					cd.rules = append(cd.rules, v)
				}
				continue
			}
			// The trigram fewest of the route's literals contain (a proxy
			// for how common it is in the data), then the rarest bytes.
			best, bestScore := 0, -1<<30
			for i := 0; i+2 < len(a.lit); i++ {
				sc := byteRarity(a.lit[i])*byteRarity(a.lit[i+1])*byteRarity(a.lit[i+2]) - 64*triUse[a.lit[i:i+3]]
				if sc > bestScore {
					best, bestScore = i, sc
				}
			}
			k := trigram(a.lit[best], a.lit[best+1], a.lit[best+2])
			t.bits3[k>>6] |= 1 << (k & 63)
			t.cands3[k] = append(t.cands3[k], litCand{lit: a.lit, off: best, field: a.field, rules: []int32{v}})
			index[ckey{a.field, a.lit}] = [2]int{int(k), len(t.cands3[k]) - 1}
			if a.field == kwField {
				rt.keywords = true
			} else if !rt.scanned[a.field] {
				rt.scanned[a.field] = true
				rt.fields = append(rt.fields, a.field)
			}
		}
	}
	t.freeze()
	rt.lits = t
	rt.keyScan = make([]uint8, len(keys)+1)
	for k, ks := range keys {
		for _, id := range ks.ids {
			if rt.scanned[id] {
				rt.keyScan[k+1] = 1
			}
		}
	}
	if rt.small() {
		// A few rules cost less to evaluate than a sweep of the event.
		rt.always = rt.always[:0]
		for _, r := range rules {
			rt.always = append(rt.always, int32(r.index))
		}
	}
	return rt
}
