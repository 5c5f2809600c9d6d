package sigma

import (
	"strings"
	"time"
)

// routeKey identifies the events that share a route.
type routeKey struct {
	ls   Logsource
	kind string
}

const maxRoutes = 4096

// routeFor returns the plan for events of logsource ls (or, when ls is
// empty, of Vigil event kind kind).
func (rs *RuleSet) routeFor(ls Logsource, kind string) *route {
	if ls != (Logsource{}) {
		kind = ""
	}
	key := Logsource{Product: ls.Product, Category: ls.Category, Service: ls.Service}
	if kind != "" {
		key = Logsource{Product: "\x00kind", Category: kind}
	}
	rs.mu.RLock()
	rt, ok := rs.routes[key]
	rs.mu.RUnlock()
	if ok {
		return rt
	}
	var sel []*Rule
	for _, r := range rs.Rules {
		if kind == "" {
			if r.Logsource.covers(ls) {
				sel = append(sel, r)
			}
			continue
		}
		for _, kls := range rs.cfg.Kinds[kind] {
			if r.Logsource.covers(kls) {
				sel = append(sel, r)
				break
			}
		}
	}
	rt = buildRoute(sel, len(rs.fieldNames), rs.keys.slots)
	key = Logsource{Product: strings.Clone(key.Product), Category: strings.Clone(key.Category), Service: strings.Clone(key.Service)}
	rs.mu.Lock()
	if len(rs.routes) < maxRoutes {
		rs.routes[key] = rt
	}
	rs.mu.Unlock()
	return rt
}

// newCtx returns an evaluation context sized for this rule set.
func (rs *RuleSet) newCtx() *evalCtx {
	c := newEvalCtx(len(rs.fieldNames))
	c.stamp = make([]uint32, len(rs.Rules))
	c.mask = make([]uint8, len(rs.Rules))
	c.want = make([]uint8, len(rs.Rules))
	for i, r := range rs.Rules {
		c.want[i] = uint8(1)<<r.clauses - 1
	}
	return c
}

// sampleEvery is how often (in events) rule evaluation time is measured;
// the measured time is scaled up so counters estimate the total.
const sampleEvery = 256

// evalRoute evaluates the rules of rt on the event loaded in c and calls
// hit for each match. It returns the number of matches.
func (rs *RuleSet) evalRoute(c *evalCtx, rt *route, seq uint64, hit func(r *Rule)) int {
	if !rt.small() {
		prefilter(c, rs, rt)
	}
	return evalRules(c, rs, rt, seq, hit)
}

// prefilter marks the rules of rt whose literals occur in the event.
func prefilter(c *evalCtx, rs *RuleSet, rt *route) {
	if len(rt.fields) == 0 && !rt.keywords {
		return
	}
	if _, ok := c.src.(*jsonSource); ok {
		// Every scalar of the line was collected by the scanner.
		slots := rs.keys.slots
		for i := range c.vals {
			v := &c.vals[i]
			if !(rt.keywords && v.str) && rt.keyScan[v.key+1] == 0 {
				continue
			}
			var ids []int
			if v.key >= 0 {
				ids = slots[v.key].ids
			}
			c.scanLits(rt, v.key, v.s, ids)
		}
	} else {
		for _, f := range rt.fields {
			s := c.get(f)
			if !s.present || s.null {
				continue
			}
			ids := []int{f}
			if s.isList {
				for _, e := range s.list {
					rt.lits.scan(c, e, ids)
				}
				continue
			}
			rt.lits.scan(c, s.s, ids)
		}
		if rt.keywords && c.src != nil {
			c.src.strings(c, func(v string) bool {
				rt.lits.scan(c, v, nil)
				return true
			})
		}
	}
}

// evalRules evaluates the rules the prefilter selected.
func evalRules(c *evalCtx, rs *RuleSet, rt *route, seq uint64, hit func(r *Rule)) int {
	// Candidates: rules whose every prefilter clause holds, and rules
	// without a prefilter; evaluated in rule order.
	sel := c.sel[:0]
	for _, ri := range c.cands {
		if c.mask[ri] == c.want[ri] {
			sel = append(sel, ri)
		}
	}
	for _, ri := range rt.always { // few: cheaper than a memmove call
		sel = append(sel, ri)
	}
	for i := 1; i < len(sel); i++ {
		for j := i; j > 0 && sel[j] < sel[j-1]; j-- {
			sel[j], sel[j-1] = sel[j-1], sel[j]
		}
	}
	c.sel = sel
	timed := seq%sampleEvery == 0
	n := 0
	for _, ri := range sel {
		r := rs.Rules[ri]
		if r.disabled.Load() {
			continue
		}
		var t0 time.Time
		if timed {
			t0 = time.Now()
		}
		ok := r.cond.eval(c)
		if timed {
			r.evalNanos.Add(uint64(time.Since(t0)) * sampleEvery)
			r.evals.Add(sampleEvery)
		}
		if ok {
			r.matches.Add(1)
			n++
			if hit != nil {
				hit(r)
			}
		}
	}
	return n
}

// RuleStats are a rule's counters.
type RuleStats struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Matches uint64 `json:"matches"`
	// Evals and EvalNanos are estimated from sampled events.
	Evals     uint64 `json:"evals"`
	EvalNanos uint64 `json:"eval_nanos"`
}

// Stats returns the counters of every detection rule.
func (rs *RuleSet) Stats() []RuleStats {
	out := make([]RuleStats, 0, len(rs.Rules))
	for _, r := range rs.Rules {
		out = append(out, RuleStats{ID: r.ID, Title: r.Title, Matches: r.matches.Load(), Evals: r.evals.Load(), EvalNanos: r.evalNanos.Load()})
	}
	return out
}
