package sigma

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// checkPrefilterSound evaluates every rule of rs on each line twice: with
// the literal prefilter and without it. A rule the prefilter skips must
// not match.
func checkPrefilterSound(t *testing.T, rs *RuleSet, lines [][]byte) {
	t.Helper()
	rt := buildRoute(rs.Rules, len(rs.fieldNames), rs.keys.slots)
	m := rs.NewMatcher()
	c := m.ctx
	checked := 0
	for _, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		c.reset(len(rs.fieldNames))
		if err := rs.scanEvent(c, line); err != nil {
			continue
		}
		m.js.rs, m.js.line = rs, line
		c.src = &m.js
		prefilter(c, rs, rt)
		for _, r := range rs.Rules {
			selected := r.prefilt == nil || (c.stamp[r.index] == c.gen && c.mask[r.index] == uint8(1)<<r.clauses-1)
			if !selected && r.cond.eval(c) {
				t.Errorf("prefilter skipped %q (%s) which matches %s", r.Title, r.File, line)
			}
			checked++
		}
		c.src = nil
	}
	if checked == 0 {
		t.Fatal("nothing checked")
	}
}

func TestPrefilterSoundConformance(t *testing.T) {
	files, _ := filepath.Glob("testdata/*/rule.yml")
	for _, f := range files {
		dir := filepath.Dir(f)
		b, _ := os.ReadFile(f)
		cfg := DefaultConfig()
		if cb, err := os.ReadFile(filepath.Join(dir, "config.yml")); err == nil {
			c, _ := ParseConfig(cb)
			cfg.Placeholders = c.Placeholders
		}
		rs, errs := LoadBytes(f, b, cfg)
		if len(errs) > 0 {
			continue
		}
		ev, err := os.ReadFile(filepath.Join(dir, "events.jsonl"))
		if err != nil {
			continue
		}
		checkPrefilterSound(t, rs, bytes.Split(ev, []byte{'\n'}))
	}
}

// soundEvents is the NDJSON file the soundness tests use: the benchmark
// events when VIGIL_SIGMA_BENCH_EVENTS names them, else a committed sample
// of 3,000 `sigbase gen` events.
func soundEvents() string {
	if f := os.Getenv("VIGIL_SIGMA_BENCH_EVENTS"); f != "" {
		return f
	}
	return "testdata/sigbase-sample.jsonl"
}

// TestPrefilterSoundCorpus checks the prefilter on the corpus subset.
func TestPrefilterSoundCorpus(t *testing.T) {
	f := soundEvents()
	rs := benchRules(t)
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(data, []byte{'\n'})
	if len(lines) > 50000 {
		lines = lines[:50000]
	}
	checkPrefilterSound(t, rs, lines)
}

// stripIndex removes the trigram indexes of long ORs from a rule tree.
func stripIndex(n node) {
	eachLeaf(n, func(n node) {
		switch x := n.(type) {
		case *fieldNode:
			x.idx = nil
		case *keywordNode:
			x.idx = nil
		}
	})
}

// TestPredIndexSound compares every corpus subset rule with and without
// the long-OR index on the benchmark events.
func TestPredIndexSound(t *testing.T) {
	f := soundEvents()
	a, b := benchRules(t), benchRules(t)
	for _, r := range b.Rules {
		stripIndex(r.cond)
	}
	data, _ := os.ReadFile(f)
	lines := bytes.Split(bytes.TrimSpace(data), []byte{'\n'})
	if len(lines) > 30000 {
		lines = lines[:30000]
	}
	ma, mb := a.NewMatcher(), b.NewMatcher()
	for _, line := range lines {
		for _, x := range []struct {
			rs *RuleSet
			m  *Matcher
		}{{a, ma}, {b, mb}} {
			x.m.ctx.reset(len(x.rs.fieldNames))
			x.rs.scanEvent(x.m.ctx, line)
			x.m.js.rs, x.m.js.line = x.rs, line
			x.m.ctx.src = &x.m.js
		}
		for i := range a.Rules {
			if ga, gb := a.Rules[i].cond.eval(ma.ctx), b.Rules[i].cond.eval(mb.ctx); ga != gb {
				t.Errorf("%q: indexed=%v plain=%v on %s", a.Rules[i].Title, ga, gb, line)
			}
		}
	}
}
