package main

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	if _, code = run(t, "detect", "--input", bad); code == 0 {
		t.Errorf("neither --rules nor --learn: exit 0")
	}
}

// TestServeRunsBaseline checks that vigil serve's detectors include the
// learned baseline, and that baseline.enabled: false leaves it out.
func TestServeRunsBaseline(t *testing.T) {
	names := func(cfg config) string {
		dets, _, err := loadDetectors(cfg, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, d := range dets {
			n = append(n, d.Name())
		}
		return strings.Join(n, ",")
	}
	cfg := defaultConfig()
	if got := names(cfg); !strings.Contains(got, "baseline") {
		t.Errorf("detectors %s, want baseline among them", got)
	}
	cfg.Baseline.Enabled = false
	if got := names(cfg); strings.Contains(got, "baseline") {
		t.Errorf("baseline disabled, detectors %s", got)
	}
	cfg = defaultConfig()
	cfg.Baseline.Learn = 0
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "baseline.learn") {
		t.Errorf("validate with learn 0: %v", err)
	}
}
