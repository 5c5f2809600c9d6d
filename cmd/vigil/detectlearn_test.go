package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/node"
)

// TestDetectLearn runs `vigil detect --learn` over the baseline's test
// cases: the new Modbus writer raises the baseline's alert and the
// rewritten pack rule (which needs baseline.new_writer), with an
// explanation; normal traffic raises nothing.
func TestDetectLearn(t *testing.T) {
	dir := filepath.Join("..", "..", "detect", "baseline", "testdata")
	out, code := run(t, "detect", "--learn", filepath.Join(dir, "new_modbus_writer", "learn.jsonl"), "--input", filepath.Join(dir, "new_modbus_writer", "input.jsonl"))
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	rules := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var a struct {
			RuleID   string         `json:"rule_id"`
			Severity string         `json:"severity"`
			Fields   map[string]any `json:"fields"`
		}
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("not an alert: %s: %v", line, err)
		}
		rules[a.RuleID] = a.Severity
		if a.RuleID == "baseline.new_modbus_writer" && !strings.Contains(a.Fields["explanation"].(string), "10.0.4.66") {
			t.Errorf("explanation without the writer: %v", a.Fields["explanation"])
		}
	}
	if rules["baseline.new_modbus_writer"] != "high" || rules["b4f9cf79-e275-4286-94de-175bc1d4e7a9"] != "high" {
		t.Errorf("alerts %v, want baseline.new_modbus_writer and the pack's Modbus write rule, high", rules)
	}
	if !strings.Contains(out, "detect: learned=831 events=139 alerts=2") {
		t.Errorf("summary missing:\n%s", out)
	}

	// A scan of unit ids by the known master: the baseline marks each new
	// unit id, and the pack's unit id scan correlation counts them.
	out, code = run(t, "detect", "--learn", filepath.Join(dir, "modbus_unit_scan", "learn.jsonl"), "--input", filepath.Join(dir, "modbus_unit_scan", "input.jsonl"))
	if code != 0 || !strings.Contains(out, `"rule_id":"cb7fc45f-d1d3-4257-b135-1cfae0f91c66"`) {
		t.Errorf("unit id scan: exit %d, no Modbus unit id scan alert:\n%s", code, out)
	}

	out, code = run(t, "detect", "--learn", filepath.Join(dir, "normal_traffic", "learn.jsonl"), "--input", filepath.Join(dir, "normal_traffic", "input.jsonl"))
	if code != 0 || !strings.Contains(out, "alerts=0") {
		t.Errorf("normal traffic: exit %d:\n%s", code, out)
	}

	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, []byte("{\"time\":\"2026-11-20T10:00:00Z\",\"kind\":\"x\"}\n{\"time\": 12\n"), 0o644)
	out, code = run(t, "detect", "--learn", bad, "--input", bad)
	if code != 0 || !strings.Contains(out, "bad lines skipped, first: learn line 2: invalid JSON at byte") {
		t.Errorf("bad lines: exit %d:\n%s", code, out)
	}
}

// TestDetectWholeSet runs `vigil detect` without --rules: the whole
// built-in set runs as in vigil serve. A brute force raises the threshold
// rule, and with --intel a connection to an address of a feed imported
// into a data dir raises the intel detector's alert.
func TestDetectWholeSet(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := range 6 {
		fmt.Fprintf(&b, `{"time":"2026-11-20T10:00:0%dZ","device_id":"cam-1","kind":"auth","action":"login","outcome":"failure","fields":{"user.name":"admin"}}`+"\n", i)
	}
	b.WriteString(`{"time":"2026-11-20T10:00:09Z","device_id":"cam-1","kind":"network","action":"connect","network":{"transport":"tcp","src_ip":"10.0.0.5","src_port":40000,"dst_ip":"203.0.113.66","dst_port":4444}}` + "\n")
	events := filepath.Join(dir, "events.jsonl")
	os.WriteFile(events, []byte(b.String()), 0o600)
	out, code := run(t, "detect", "--input", events)
	if code != 0 || !strings.Contains(out, `"rule_id":"vigil-auth-bruteforce"`) || !strings.Contains(out, "events=7") {
		t.Errorf("detect without --rules: exit %d, want the threshold brute force rule:\n%s", code, out)
	}
	if strings.Contains(out, `"detector":"intel"`) {
		t.Errorf("an intel alert without intel:\n%s", out)
	}
	data := t.TempDir()
	list := filepath.Join(dir, "bad.txt")
	os.WriteFile(list, []byte("203.0.113.66\n"), 0o600)
	if out, code := run(t, "intel", "import", "--data", data, "--name", "bad", "--format", "list", list); code != 0 {
		t.Fatalf("intel import: exit %d: %s", code, out)
	}
	out, code = run(t, "detect", "--input", events, "--intel", data)
	if code != 0 || !strings.Contains(out, `"detector":"intel"`) || !strings.Contains(out, "203.0.113.66") {
		t.Errorf("detect --intel: exit %d, want an intel alert:\n%s", code, out)
	}
	if out, code := run(t, "detect", "--input", events, "--intel", filepath.Join(dir, "nothing")); code == 0 {
		t.Errorf("detect --intel with no intel there: exit 0: %s", out)
	}
}

// TestServeRunsBaseline checks that vigil serve's detectors include the
// learned baseline, and that baseline.enabled: false leaves it out.
func TestServeRunsBaseline(t *testing.T) {
	names := func(cfg node.Config) string {
		dets, _, err := node.Detectors(cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, d := range dets {
			n = append(n, d.Name())
		}
		return strings.Join(n, ",")
	}
	cfg := node.DefaultConfig()
	if got := names(cfg); !strings.Contains(got, "baseline") {
		t.Errorf("detectors %s, want baseline among them", got)
	}
	cfg.Baseline.Enabled = false
	if got := names(cfg); strings.Contains(got, "baseline") {
		t.Errorf("baseline disabled, detectors %s", got)
	}
	cfg = node.DefaultConfig()
	cfg.Baseline.Learn = 0
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "baseline.learn") {
		t.Errorf("validate with learn 0: %v", err)
	}
}
