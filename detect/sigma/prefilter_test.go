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
	rt := buildRoute(rs.Rules, len(rs.fieldNames))
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
		m.js.rs, m.js.line, m.js.scanned = rs, line, true
		c.src = &m.js
		prefilter(c, rt)
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

// TestPrefilterSoundCorpus runs the corpus rules on events built to hit
// their literals (every string value of every rule's test-like values is
// unknown here, so this uses the benchmark events when given).
func TestPrefilterSoundCorpus(t *testing.T) {
	f := os.Getenv("VIGIL_SIGMA_BENCH_EVENTS")
	if f == "" {
		t.Skip("VIGIL_SIGMA_BENCH_EVENTS not set; skipping")
	}
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
