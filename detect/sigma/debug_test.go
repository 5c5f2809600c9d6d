package sigma

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"testing"
)

func TestDebugTop(t *testing.T) {
	f := os.Getenv("VIGIL_SIGMA_BENCH_EVENTS")
	if f == "" {
		t.Skip("no events")
	}
	rs := benchRules(t)
	data, _ := os.ReadFile(f)
	st, _ := DetectStream(bytes.NewReader(data), io.Discard, rs)
	fmt.Println(st)
	s := rs.Stats()
	sort.Slice(s, func(i, j int) bool { return s[i].Matches > s[j].Matches })
	for _, x := range s[:15] {
		fmt.Println(x.Matches, x.Evals, x.Title)
	}
	sort.Slice(s, func(i, j int) bool { return s[i].EvalNanos > s[j].EvalNanos })
	for _, x := range s[:15] {
		fmt.Println(x.EvalNanos/1e6, "ms", x.Evals, x.Title)
	}
	kw := 0
	for _, r := range rs.Rules {
		if r.keywords {
			kw++
			fmt.Println("kw:", r.Logsource, r.Title, len(r.prefilt))
		}
	}
}

func TestDebugRoutes(t *testing.T) {
	if os.Getenv("VIGIL_SIGMA_BENCH_EVENTS") == "" {
		t.Skip("no events")
	}
	rs := benchRules(t)
	for _, ls := range []Logsource{{Product: "linux", Category: "process_creation"}, {Category: "webserver"}, {Category: "proxy"}, {Category: "dns"}, {Product: "linux", Service: "auditd"}} {
		rt := rs.routeFor(ls, "")
		always := 0
		for _, r := range rt.rules {
			if r.prefilt == nil {
				always++
				fmt.Println("   always:", r.Title)
			}
		}
		fmt.Println(ls, "rules", len(rt.rules), "always", always, "fields", len(rt.fields), "kw", rt.keywords, "cands", len(rt.lits.flat))
	}
}

func TestDebugEvals(t *testing.T) {
	f := os.Getenv("VIGIL_SIGMA_BENCH_EVENTS")
	if f == "" {
		t.Skip("no events")
	}
	rs := benchRules(t)
	data, _ := os.ReadFile(f)
	DetectStream(bytes.NewReader(data), io.Discard, rs)
	s := rs.Rules
	sort.Slice(s, func(i, j int) bool { return s[i].evals.Load() > s[j].evals.Load() })
	tot := uint64(0)
	for _, r := range s {
		tot += r.evals.Load()
	}
	fmt.Println("total evals", tot)
	for _, r := range s[:25] {
		var lits []string
		for _, a := range r.prefilt {
			lits = append(lits, a.lit)
		}
		if len(lits) > 6 {
			lits = lits[:6]
		}
		fmt.Println(r.evals.Load(), r.evalNanos.Load()/1e6, "ms", r.Title, lits)
	}
}

func TestDebugBigrams(t *testing.T) {
	f := os.Getenv("VIGIL_SIGMA_BENCH_EVENTS")
	if f == "" {
		t.Skip("no events")
	}
	rs := benchRules(t)
	data, _ := os.ReadFile(f)
	lines := bytes.Split(bytes.TrimSpace(data), []byte{'\n'})[:20000]
	m := rs.NewMatcher()
	c := m.ctx
	bitHits, candChecks, verified, bytesScanned, cands := 0, 0, 0, 0, 0
	hot := map[string]int{}
	for _, line := range lines {
		c.reset(len(rs.fieldNames))
		rs.scanEvent(c, line)
		m.js.rs, m.js.line, m.js.scanned = rs, line, true
		c.src = &m.js
		rt := m.lastRoute(Logsource{Product: m.str(slotProduct), Category: m.str(slotCategory), Service: m.str(slotService)})
		for _, v := range c.vals {
			use := rt.keywords && v.str
			var vids []int
			if v.key >= 0 {
				vids = rs.keys.slots[v.key].ids
			}
			for _, id := range vids {
				use = use || rt.scanned[id]
			}
			if !use {
				continue
			}
			s := v.s
			bytesScanned += len(s)
			for i := 0; i+2 < len(s); i++ {
				k := trigram(s[i], s[i+1], s[i+2])
				if rt.lits.bits3[k>>6]&(1<<(k&63)) == 0 {
					continue
				}
				bitHits++
				hot[string([]byte{lowerTab[s[i]], lowerTab[s[i+1]], lowerTab[s[i+2]]})]++
				for _, cd := range rt.lits.flat[rt.lits.off[k]:rt.lits.off[k+1]] {
					candChecks++
					st := i - cd.off
					if st >= 0 && st+len(cd.lit) <= len(s) && eqFoldASCII(s[st:st+len(cd.lit)], cd.lit) {
						verified++
					}
				}
			}
		}
		c.src = nil
		n := 0
		prefilter(c, rs, rt)
		for _, r := range rt.rules {
			if r.prefilt == nil || (c.stamp[r.index] == c.gen && c.mask[r.index] == uint8(1)<<r.clauses-1) {
				n++
			}
		}
		cands += n
	}
	N := len(lines)
	fmt.Printf("per event: bytes=%d bitHits=%.1f candChecks=%.1f verified=%.1f candidates=%.1f\n", bytesScanned/N, float64(bitHits)/float64(N), float64(candChecks)/float64(N), float64(verified)/float64(N), float64(cands)/float64(N))
	type kv struct {
		k string
		v int
	}
	var kvs []kv
	for k, v := range hot {
		kvs = append(kvs, kv{k, v})
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].v > kvs[j].v })
	for _, x := range kvs[:20] {
		fmt.Printf("%q %d\n", x.k, x.v/N)
	}
}

func TestDebugShort(t *testing.T) {
	if os.Getenv("VIGIL_SIGMA_BENCH_EVENTS") == "" {
		t.Skip("no events")
	}
	rs := benchRules(t)
	for _, r := range rs.Rules {
		for _, a := range r.prefilt {
			if len(a.lit) == 2 {
				fmt.Printf("%q field=%v clauses=%d %s\n", a.lit, a.field, r.clauses, r.Title)
			}
		}
	}
}

func TestDebugWhy(t *testing.T) {
	f := os.Getenv("VIGIL_SIGMA_BENCH_EVENTS")
	title := os.Getenv("WHY")
	if f == "" || title == "" {
		t.Skip("no events")
	}
	rs := benchRules(t)
	var rule *Rule
	for _, r := range rs.Rules {
		if r.Title == title {
			rule = r
		}
	}
	data, _ := os.ReadFile(f)
	lines := bytes.Split(bytes.TrimSpace(data), []byte{'\n'})[:20000]
	m := rs.NewMatcher()
	c := m.ctx
	hits := map[string]int{}
	for _, line := range lines {
		c.reset(len(rs.fieldNames))
		rs.scanEvent(c, line)
		for _, v := range c.vals {
			lv := strings.ToLower(v.s)
			for _, a := range rule.prefilt {
				if strings.Contains(lv, a.lit) {
					hits[fmt.Sprintf("%q in %q", a.lit, v.s)]++
				}
			}
		}
	}
	n := 0
	for k, v := range hits {
		fmt.Println(v, k)
		if n++; n > 15 {
			break
		}
	}
}

func TestDebugKwMatches(t *testing.T) {
	f := os.Getenv("VIGIL_SIGMA_BENCH_EVENTS")
	if f == "" {
		t.Skip("no events")
	}
	rs := benchRules(t)
	data, _ := os.ReadFile(f)
	DetectStream(bytes.NewReader(data), io.Discard, rs)
	tot := uint64(0)
	for _, r := range rs.Rules {
		if r.keywords && r.matches.Load() > 0 {
			fmt.Println(r.matches.Load(), r.Title)
			tot += r.matches.Load()
		}
	}
	fmt.Println("keyword rule matches", tot)
}
