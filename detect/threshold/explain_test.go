package threshold_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect/threshold"
)

// TestCountExplained: a count rule's alert says its group, its window,
// how many events crossed which threshold, and keeps an excerpt of the
// event that crossed it.
func TestCountExplained(t *testing.T) {
	rules := mustRules(t, "id: spray\ntitle: Failed logins from one address\ntype: count\nlevel: medium\nwhere: {kind: auth, outcome: failure}\ngroup_by: [source.ip]\ncount: 3\nwindow: 1m\n")
	d := threshold.New(rules, threshold.Options{})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var alerts []vigil.Alert
	var last string
	for i := range 3 {
		ev := event("d1", t0.Add(time.Duration(i)*time.Second), "auth", "failure", map[string]any{"source.ip": "198.51.100.4", "user.name": "admin"})
		last = ev.ID
		d.Detect(context.Background(), 0, &ev, func(a vigil.Alert) { alerts = append(alerts, a) })
	}
	if len(alerts) != 1 || alerts[0].Explanation == nil {
		t.Fatalf("alerts = %+v, want one explained", alerts)
	}
	x := alerts[0].Explanation
	if x.Rule == nil || x.Rule.Title != "Failed logins from one address" || x.Rule.Level != "medium" || x.Rule.Condition != "at least 3 matching events within 1m0s" {
		t.Errorf("rule = %+v", x.Rule)
	}
	if x.Group["source.ip"] != "198.51.100.4" || x.Window != "1m0s" {
		t.Errorf("group %v window %q", x.Group, x.Window)
	}
	if th := x.Threshold; th == nil || *th != (vigil.ExplainedThreshold{Series: "events", Op: ">=", Threshold: "3", Observed: "3", Count: 3}) {
		t.Errorf("threshold = %+v", x.Threshold)
	}
	if len(x.Evidence) != 1 || x.Evidence[0].EventID != last || x.Evidence[0].Fields["source.ip"] != "198.51.100.4" || x.Evidence[0].Fields["user.name"] != "admin" {
		t.Errorf("evidence = %+v", x.Evidence)
	}
}

// TestThresholdExplained: a threshold rule's alert names the series, the
// comparison and the value observed.
func TestThresholdExplained(t *testing.T) {
	rules := mustRules(t, "id: cpu\ntitle: Sustained CPU\ntype: threshold\nlevel: high\nwhere: {kind: health}\nfield: host.cpu.pct\nop: \">\"\nvalue: 90\nconsecutive: 2\n")
	d := threshold.New(rules, threshold.Options{})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var alerts []vigil.Alert
	for i, v := range []float64{95, 97.5} {
		ev := event("d1", t0.Add(time.Duration(i)*time.Second), "health", "", map[string]any{"host.cpu.pct": v})
		d.Detect(context.Background(), 0, &ev, func(a vigil.Alert) { alerts = append(alerts, a) })
	}
	if len(alerts) != 1 || alerts[0].Explanation == nil {
		t.Fatalf("alerts = %+v, want one explained", alerts)
	}
	x := alerts[0].Explanation
	if th := x.Threshold; th == nil || *th != (vigil.ExplainedThreshold{Series: "host.cpu.pct", Op: ">", Threshold: "90", Observed: "97.5", Count: 2}) {
		t.Errorf("threshold = %+v", x.Threshold)
	}
	if x.Rule == nil || x.Rule.Condition != "host.cpu.pct > 90 for 2 consecutive events" {
		t.Errorf("rule = %+v", x.Rule)
	}
	if len(x.Evidence) != 1 || x.Evidence[0].Fields["host.cpu.pct"] != "97.5" {
		t.Errorf("evidence = %+v", x.Evidence)
	}
}
