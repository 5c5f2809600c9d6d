package remediate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/store/sqlite"
	"github.com/vigil-iot/vigil/vuln"
)

// bounds is a Baselines: the learned upper bounds of normal per device.
type bounds map[string]map[string]float64

func (b bounds) HealthBounds(dev string) (map[string]float64, bool) {
	m, ok := b[dev]
	return m, ok
}

// TestBehaviourAfterUpdate: between waves a device passes only when its
// behaviour is normal too, not only its health under the fixed limits.
// The canary's CPU above its own learned normal keeps it from passing
// until it comes back under; in the second wave, a learned-behaviour
// alert (medium) about one device after its update rolls it back at once
// and halts the plan, a device whose CPU stays above its learned normal is
// rolled back at the wave timeout, and the alerts that say nothing of
// behaviour (a finding, the new version of the product itself, a low
// alert, one from before the update, a retro-hunt) do not fail the device
// they are about.
func TestBehaviourAfterUpdate(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "v.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ck := &clock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	devs := []string{"gw-1", "gw-2", "gw-3", "gw-4"}
	sw := func(v string) []vigil.Component {
		return []vigil.Component{{Name: "busybox", Version: v, Source: "opkg", PURL: "pkg:opkg/busybox@" + v}}
	}
	report := func(id, v string, cpu float64) {
		t.Helper()
		if err := st.PutDevice(ctx, vigil.Device{ID: id, Class: "gateway", Model: "G2", Software: sw(v), LastSeen: ck.t, Enrolled: ck.t,
			Health: &vigil.Health{Time: ck.t, CPU: cpu, Memory: 40}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range devs {
		report(id, "1.35.0", 10)
	}
	sum := sha256.Sum256([]byte("pkg"))
	if err := st.PutArtifact(ctx, vigil.Artifact{ID: "a1", Product: "busybox", Version: "1.36.1", Classes: []string{"gateway"}, Size: 3,
		SHA256: hex.EncodeToString(sum[:]), Signature: "c2ln", Created: ck.t}, []byte("pkg")); err != nil {
		t.Fatal(err)
	}
	findings := func() []vuln.Finding {
		var out []vuln.Finding
		for _, id := range devs {
			out = append(out, vuln.Finding{ID: id + "|CVE-2022-48174|busybox", DeviceID: id, Vuln: "CVE-2022-48174", KEV: true, Exposed: true,
				CVSS: 9.8, Component: "busybox", ComponentVersion: "1.35.0", FixedVersion: "1.36.0", FirstSeen: ck.t.Add(-time.Hour)})
		}
		return out
	}
	n := 0
	alert := func(dev, detector, rule string, sev vigil.Severity, created time.Time, mod func(*vigil.Alert)) {
		t.Helper()
		n++
		a := vigil.Alert{ID: "al-" + dev + "-" + rule + "-" + string(rune('a'+n)), DedupKey: rule + dev, Detector: detector, RuleID: rule,
			Title: rule + " on " + dev, Severity: sev, DeviceID: dev, FirstEventTime: created, LastEventTime: created, Created: created, Count: 1}
		if mod != nil {
			mod(&a)
		}
		if err := st.PutAlert(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	// Before the plan: a medium alert on gw-2 that the update must not
	// be blamed for.
	alert("gw-2", "sigma", "ssh-brute-force", vigil.SeverityMedium, ck.t.Add(-time.Minute), nil)

	learned := bounds{"gw-1": {"cpu_pct": 25, "memory_pct": 60}, "gw-4": {"cpu_pct": 25}}
	q := &queue{results: map[string]command.Result{}}
	var alerts []vigil.Alert
	e, err := New(Options{Store: st, Commands: q, Findings: findings, Alert: func(a vigil.Alert) { alerts = append(alerts, a) },
		Alerts: st, Baselines: learned, Canary: 0.25, WaveTimeout: 20 * time.Minute, Clock: ck})
	if err != nil {
		t.Fatal(err)
	}
	if e.o.Settle != 5*time.Minute {
		t.Fatalf("default settle %s, want 5m (a quarter of 20m is more)", e.o.Settle)
	}
	tick := func() vigil.UpdatePlan {
		t.Helper()
		if err := e.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		ps, err := st.ListUpdatePlans(ctx)
		if err != nil || len(ps) != 1 {
			t.Fatalf("plans %+v %v", ps, err)
		}
		return ps[0]
	}
	target := func(p vigil.UpdatePlan, dev string) vigil.PlanTarget {
		for _, w := range p.Waves {
			for _, tg := range w.Targets {
				if tg.DeviceID == dev {
					return tg
				}
			}
		}
		t.Fatalf("no target %s", dev)
		return vigil.PlanTarget{}
	}
	installed := func(devs ...string) {
		t.Helper()
		for _, d := range devs {
			q.results[q.last(d).ID] = command.Result{Status: command.StatusSucceeded}
		}
		tick()
	}

	// The canary: updated, CPU 30 % — under the fixed 95 %, above its
	// learned 25 %. It does not pass, settled or not.
	p := tick()
	if p.State != vigil.PlanRunning || len(p.Waves[0].Targets) != 1 || q.last("gw-1").Action != command.ActionUpdate {
		t.Fatalf("plan %+v", p)
	}
	ck.t = ck.t.Add(time.Minute)
	installed("gw-1")
	report("gw-1", "1.36.1", 30)
	ck.t = ck.t.Add(6 * time.Minute)
	if p = tick(); target(p, "gw-1").State != vigil.TargetInstalled {
		t.Fatalf("canary above its learned CPU passed: %+v", target(p, "gw-1"))
	}
	report("gw-1", "1.36.1", 20)
	if p = tick(); target(p, "gw-1").State != vigil.TargetUpdated || p.Waves[0].Finished.IsZero() {
		t.Fatalf("canary back under its learned CPU: %+v", target(p, "gw-1"))
	}

	// Wave 2.
	p = tick()
	sent := p.Waves[1].Started
	if sent.IsZero() {
		t.Fatalf("wave 2 not started: %+v", p.Waves[1])
	}
	ck.t = ck.t.Add(time.Minute)
	installed("gw-2", "gw-3", "gw-4")
	for _, d := range []string{"gw-2", "gw-3"} {
		report(d, "1.36.1", 10)
	}
	report("gw-4", "1.36.1", 40)
	// Alerts that say nothing of gw-2's behaviour.
	alert("gw-2", "vuln", "vuln:CVE-2022-48174", vigil.SeverityCritical, ck.t, nil)
	alert("gw-2", "baseline", "baseline.new_software", vigil.SeverityMedium, ck.t, func(a *vigil.Alert) {
		a.Fields = map[string]any{"baseline.observed": "busybox 1.36.1"}
	})
	alert("gw-2", "baseline", "baseline.new_process", vigil.SeverityLow, ck.t, nil)
	alert("gw-2", "sigma", "old-history", vigil.SeverityHigh, ck.t, func(a *vigil.Alert) { a.Retro = true })
	// One that does: gw-3's CPU, judged against its learned behaviour.
	ck.t = ck.t.Add(time.Minute)
	alert("gw-3", "baseline", "baseline.telemetry_cpu_pct", vigil.SeverityMedium, ck.t, nil)
	p = tick()
	g3 := target(p, "gw-3")
	if rb := q.last("gw-3"); g3.State != vigil.TargetFailed || rb.Action != command.ActionRollback || rb.Params["version"] != "1.35.0" ||
		!strings.Contains(g3.Detail, "misbehaves after the update") || !strings.Contains(g3.Detail, "baseline.telemetry_cpu_pct") {
		t.Fatalf("gw-3 after a learned-behaviour alert: %+v, last command %+v", g3, q.last("gw-3"))
	}
	q.results[g3.Rollback] = command.Result{Status: command.StatusSucceeded}
	ck.t = ck.t.Add(5 * time.Minute)
	p = tick()
	if g2 := target(p, "gw-2"); g2.State != vigil.TargetUpdated {
		t.Fatalf("gw-2, whose alerts say nothing of its behaviour: %+v", g2)
	}
	if g4 := target(p, "gw-4"); g4.State != vigil.TargetInstalled || p.State != vigil.PlanRunning {
		t.Fatalf("gw-4 before the wave timeout: %+v, plan %s", g4, p.State)
	}
	// gw-4 stays above its learned CPU until the wave times out.
	ck.t = sent.Add(21 * time.Minute)
	p = tick()
	g4 := target(p, "gw-4")
	if g4.State != vigil.TargetFailed || !strings.Contains(g4.Detail, "above its learned normal") || q.last("gw-4").Action != command.ActionRollback {
		t.Fatalf("gw-4 at the timeout: %+v", g4)
	}
	q.results[g4.Rollback] = command.Result{Status: command.StatusSucceeded}
	p = tick()
	if p.State != vigil.PlanHalted || !p.Waves[1].Failed || target(p, "gw-3").State != vigil.TargetRolledBack || target(p, "gw-4").State != vigil.TargetRolledBack {
		t.Fatalf("plan after the wave: %s %+v", p.State, p.Waves[1])
	}
	if len(alerts) != 1 || alerts[0].RuleID != "update-plan-halted" || alerts[0].Fields["update_plan.failed"] != "gw-3,gw-4" {
		t.Fatalf("halt alerts %+v", alerts)
	}
}
