package sigma

import (
	"strings"
)

// atom is a necessary condition of a rule: the lowercased field value
// contains lit. A rule with atoms can only match an event for which at
// least one of its atoms holds, so an Aho–Corasick scan of the event's
// fields selects the few rules worth evaluating.
type atom struct {
	field int
	lit   string
}

// necessary returns a set of atoms of which at least one holds whenever n
// matches, or nil when no such set is known (the rule is always evaluated).
func necessary(n node) []atom {
	a, ok := nec(n)
	if !ok || len(a) == 0 {
		return nil
	}
	return a
}

func atomScore(as []atom) int {
	if len(as) == 0 {
		return 0
	}
	min := 1 << 30
	for _, a := range as {
		if len(a.lit) < min {
			min = len(a.lit)
		}
	}
	// Longer literals are more selective; many alternatives cost a little.
	return min*16 - len(as)/8
}

func bestOf(kids []node) ([]atom, bool) {
	var best []atom
	found := false
	for _, k := range kids {
		a, ok := nec(k)
		if !ok {
			continue
		}
		if !found || atomScore(a) > atomScore(best) {
			best, found = a, true
		}
	}
	return best, found
}

func unionOf(kids []node) ([]atom, bool) {
	var out []atom
	for _, k := range kids {
		a, ok := nec(k)
		if !ok {
			return nil, false
		}
		out = append(out, a...)
	}
	return out, true
}

func nec(n node) ([]atom, bool) {
	switch x := n.(type) {
	case andNode:
		return bestOf(x)
	case orNode:
		return unionOf(x)
	case countNode:
		if x.min >= len(x.kids) {
			return bestOf(x.kids)
		}
		return unionOf(x.kids)
	case *keywordNode:
		var out []atom
		for i := range x.preds {
			lit, ok := predLiteral(&x.preds[i])
			if !ok {
				if x.all {
					continue
				}
				return nil, false
			}
			a := atom{field: kwField, lit: lit}
			if x.all {
				if len(out) == 0 || len(lit) > len(out[0].lit) {
					out = []atom{a}
				}
				continue
			}
			out = append(out, a)
		}
		return out, len(out) > 0
	case *fieldNode:
		if x.neg || x.absent || x.null || len(x.preds) == 0 {
			return nil, false
		}
		var out []atom
		for i := range x.preds {
			lit, ok := predLiteral(&x.preds[i])
			if !ok {
				if x.all {
					continue
				}
				return nil, false
			}
			a := atom{field: x.field, lit: lit}
			if x.all {
				if len(out) == 0 || len(lit) > len(out[0].lit) {
					out = []atom{a}
				}
				continue
			}
			out = append(out, a)
		}
		return out, len(out) > 0
	}
	return nil, false
}

// kwField is the atom field of keyword searches: any string of the event.
const kwField = -1

// predLiteral returns a lowercase ASCII literal that a matching value
// contains (ignoring case). Non-ASCII literals are not used: the
// automaton folds ASCII case only.
func predLiteral(p *pred) (string, bool) {
	lit, ok := predLiteral1(p)
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
		if p.lit == "" {
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
		if best == "" {
			return "", false
		}
		return strings.ToLower(best), true
	}
	return "", false
}

// acMachine is an Aho–Corasick automaton compiled to a dense transition
// table over byte classes.
type acMachine struct {
	classes [256]uint16
	ncls    int
	delta   []int32
	outs    [][]int32
}

func buildAC(pats []string) *acMachine {
	m := &acMachine{}
	used := [256]bool{}
	for _, p := range pats {
		for i := 0; i < len(p); i++ {
			used[p[i]] = true
		}
	}
	m.ncls = 1
	for b := 0; b < 256; b++ {
		if used[b] {
			m.classes[b] = uint16(m.ncls)
			m.ncls++
		}
	}
	// Fold ASCII case: patterns are lowercase, input need not be.
	for b := 'A'; b <= 'Z'; b++ {
		m.classes[b] = m.classes[b+'a'-'A']
	}
	type tnode struct {
		next map[uint16]int32
		out  []int32
	}
	trie := []tnode{{next: map[uint16]int32{}}}
	for pi, p := range pats {
		s := int32(0)
		for i := 0; i < len(p); i++ {
			c := m.classes[p[i]]
			nx, ok := trie[s].next[c]
			if !ok {
				nx = int32(len(trie))
				trie = append(trie, tnode{next: map[uint16]int32{}})
				trie[s].next[c] = nx
			}
			s = nx
		}
		trie[s].out = append(trie[s].out, int32(pi))
	}
	n := len(trie)
	m.delta = make([]int32, n*m.ncls)
	m.outs = make([][]int32, n)
	fail := make([]int32, n)
	queue := make([]int32, 0, n)
	for c, nx := range trie[0].next {
		m.delta[c] = nx
		queue = append(queue, nx)
	}
	m.outs[0] = trie[0].out
	for qi := 0; qi < len(queue); qi++ {
		s := queue[qi]
		m.outs[s] = append(append([]int32(nil), trie[s].out...), m.outs[fail[s]]...)
		row := m.delta[int(s)*m.ncls : int(s+1)*m.ncls]
		copy(row, m.delta[int(fail[s])*m.ncls:int(fail[s]+1)*m.ncls])
		for c, nx := range trie[s].next {
			fail[nx] = m.delta[int(fail[s])*m.ncls+int(c)]
			row[c] = nx
			queue = append(queue, nx)
		}
	}
	return m
}

// route is the plan for events of one logsource: the rules that apply and
// the literal scans that select candidates among them.
type route struct {
	rules    []*Rule
	scans    []fieldScan
	kwScan   *fieldScan // keyword literals, scanned over every string
	keywords bool
}

type fieldScan struct {
	field    int
	m        *acMachine
	patRules [][]int32 // pattern → rule indexes
}

func buildRoute(rules []*Rule) *route {
	rt := &route{rules: rules}
	type fieldPats struct {
		pats  []string
		index map[string]int
		rules [][]int32
	}
	byField := map[int]*fieldPats{}
	var order []int
	for _, r := range rules {
		if r.keywords {
			rt.keywords = true
		}
		for _, a := range r.prefilt {
			fp := byField[a.field]
			if fp == nil {
				fp = &fieldPats{index: map[string]int{}}
				byField[a.field] = fp
				order = append(order, a.field)
			}
			pi, ok := fp.index[a.lit]
			if !ok {
				pi = len(fp.pats)
				fp.index[a.lit] = pi
				fp.pats = append(fp.pats, a.lit)
				fp.rules = append(fp.rules, nil)
			}
			rs := fp.rules[pi]
			if len(rs) == 0 || rs[len(rs)-1] != int32(r.index) {
				fp.rules[pi] = append(rs, int32(r.index))
			}
		}
	}
	for _, f := range order {
		fp := byField[f]
		fs := fieldScan{field: f, m: buildAC(fp.pats), patRules: fp.rules}
		if f == kwField {
			rt.kwScan = &fs
			continue
		}
		rt.scans = append(rt.scans, fs)
	}
	return rt
}

// mark scans s and stamps the rules whose literals occur in it.
func (fs *fieldScan) mark(c *evalCtx, s string) {
	m := fs.m
	st := int32(0)
	ncls := int32(m.ncls)
	for i := 0; i < len(s); i++ {
		st = m.delta[st*ncls+int32(m.classes[s[i]])]
		if outs := m.outs[st]; len(outs) > 0 {
			for _, pi := range outs {
				for _, ri := range fs.patRules[pi] {
					c.stamp[ri] = c.gen
				}
			}
		}
	}
}
