package remediate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/respond/playbook"
	"github.com/vigil-iot/vigil/store/sqlite"
	"github.com/vigil-iot/vigil/vuln"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

// queue records the commands the engine sends and answers with the
// results the test sets, as the enroll handler would.
type queue struct {
	n       int
	sent    []command.Command
	results map[string]command.Result
}

func (q *queue) Send(dev, action string, params map[string]string, ttl time.Duration) (command.Command, error) {
	q.n++
	c := command.Command{ID: fmt.Sprintf("c%d", q.n), DeviceID: dev, Action: action, Params: params}
	q.sent = append(q.sent, c)
	return c, nil
}

func (q *queue) Result(id string) (command.Command, command.Result, bool) {
	r, ok := q.results[id]
	return command.Command{}, r, ok
}

func (q *queue) last(dev string) command.Command {
	for i := len(q.sent) - 1; i >= 0; i-- {
		if q.sent[i].DeviceID == dev {
			return q.sent[i]
		}
	}
	return command.Command{}
}

type audits []string

func (a *audits) RecordJSON(_ context.Context, actor, action, object string, _ any) (vigil.AuditRecord, error) {
	*a = append(*a, actor+" "+action)
	return vigil.AuditRecord{}, nil
}

// TestPlanApprovalGuardsAndHealthTimeout: a finding that is not KEV gets
// a plan that waits for approval; once approved, its canary wave goes out;
// the second wave waits for the guards; a device that installs but never
// reports the new version is rolled back when the wave times out, the plan
// halts and an alert names it.
func TestPlanApprovalGuardsAndHealthTimeout(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "v.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ck := &clock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	sw := func(v string) []vigil.Component {
		return []vigil.Component{{Name: "busybox", Version: v, Source: "opkg", PURL: "pkg:opkg/busybox@" + v}}
	}
	for _, id := range []string{"gw-1", "gw-2", "gw-3"} {
		if err := st.PutDevice(ctx, vigil.Device{ID: id, Class: "gateway", Model: "G2", Software: sw("1.35.0"), FirstSeen: ck.t, LastSeen: ck.t, Enrolled: ck.t}); err != nil {
			t.Fatal(err)
		}
	}
	art := vigil.Artifact{ID: "a1", Product: "busybox", Version: "1.36.1", Classes: []string{"gateway"}, Size: 3, Signature: "c2ln", Created: ck.t}
	sum := sha256.Sum256([]byte("pkg"))
	art.SHA256 = hex.EncodeToString(sum[:])
	if err := st.PutArtifact(ctx, art, []byte("pkg")); err != nil {
		t.Fatal(err)
	}
	findings := func() []vuln.Finding {
		var out []vuln.Finding
		for _, id := range []string{"gw-1", "gw-2", "gw-3"} {
			out = append(out, vuln.Finding{ID: id + "|CVE-2022-48174|busybox", DeviceID: id, Vuln: "CVE-2022-48174", CVSS: 9.8,
				Component: "busybox", ComponentVersion: "1.35.0", FixedVersion: "1.36.0", FirstSeen: ck.t.Add(-time.Hour)})
		}
		return out
	}
	q := &queue{results: map[string]command.Result{}}
	var au audits
	var alerts []vigil.Alert
	e, err := New(Options{Store: st, Commands: q, Findings: findings, Audit: &au, Alert: func(a vigil.Alert) { alerts = append(alerts, a) },
		Guards: playbook.Guards{MaxActions: 2, Window: 10 * time.Minute}, Canary: 0.3, WaveTimeout: 5 * time.Minute, Settle: 2 * time.Minute, Clock: ck})
	if err != nil {
		t.Fatal(err)
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
	p := tick()
	if p.State != vigil.PlanProposed || p.Auto || len(q.sent) != 0 || len(p.Waves) != 2 || len(p.Waves[0].Targets) != 1 || !strings.Contains(p.Reason, "KEV and exposed") {
		t.Fatalf("proposed plan %+v, sent %v", p, q.sent)
	}
	if p2 := tick(); len(q.sent) != 0 || p2.ID != p.ID {
		t.Fatal("a proposed plan sent commands, or a second plan was made")
	}
	if _, err := e.Approve(ctx, p.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Approve(ctx, p.ID, "alice"); vigil.ErrorCode(err) != vigil.ECONFLICT {
		t.Fatalf("second approval: %v", err)
	}
	p = tick()
	c := q.last("gw-1")
	if len(q.sent) != 1 || c.Action != command.ActionUpdate || c.Params["url"] != "/api/v1/agent/artifacts/a1" || c.Params["version"] != "1.36.1" ||
		c.Params["sha256"] != art.SHA256 || p.Waves[0].Targets[0].Previous != "1.35.0" {
		t.Fatalf("canary: %+v %+v", q.sent, p.Waves[0])
	}
	// The canary installs, comes back with the new version and health.
	ck.t = ck.t.Add(time.Minute)
	q.results[c.ID] = command.Result{Status: command.StatusSucceeded}
	st.PutDevice(ctx, vigil.Device{ID: "gw-1", Class: "gateway", Model: "G2", Software: sw("1.36.1"), LastSeen: ck.t, Enrolled: ck.t,
		Health: &vigil.Health{Time: ck.t, CPU: 10, Memory: 30}})
	tick() // installed
	if p = tick(); p.Waves[0].Targets[0].State != vigil.TargetInstalled {
		t.Fatalf("canary passed before it settled: %+v", p.Waves[0])
	}
	ck.t = ck.t.Add(2 * time.Minute)
	p = tick()
	if p.Waves[0].Targets[0].State != vigil.TargetUpdated || p.Waves[0].Finished.IsZero() || p.Findings[0].Closed.IsZero() {
		t.Fatalf("canary after its report: %+v, finding %+v", p.Waves[0], p.Findings[0])
	}
	if ttr := p.Findings[0].TimeToRemediate(); ttr != time.Hour+time.Minute {
		t.Errorf("time to remediate %s", ttr)
	}
	// Wave 2 (two devices) would make three commands in the window: it waits.
	p = tick()
	if !p.Waves[1].Started.IsZero() || len(q.sent) != 1 {
		t.Fatalf("wave 2 went out over the guards: %+v", p.Waves[1])
	}
	ck.t = ck.t.Add(11 * time.Minute)
	p = tick()
	if p.Waves[1].Started.IsZero() || len(q.sent) != 3 {
		t.Fatalf("wave 2 after the window: %+v", p.Waves[1])
	}
	// gw-2 updates; gw-3 says it installed but keeps reporting 1.35.0.
	for _, d := range []string{"gw-2", "gw-3"} {
		q.results[q.last(d).ID] = command.Result{Status: command.StatusSucceeded}
	}
	ck.t = ck.t.Add(time.Minute)
	st.PutDevice(ctx, vigil.Device{ID: "gw-2", Class: "gateway", Model: "G2", Software: sw("1.36.1"), LastSeen: ck.t, Enrolled: ck.t, Health: &vigil.Health{Time: ck.t}})
	st.PutDevice(ctx, vigil.Device{ID: "gw-3", Class: "gateway", Model: "G2", Software: sw("1.35.0"), LastSeen: ck.t, Enrolled: ck.t, Health: &vigil.Health{Time: ck.t}})
	tick()
	p = tick()
	if p.State != vigil.PlanRunning {
		t.Fatalf("halted before the wave timeout: %+v", p)
	}
	ck.t = ck.t.Add(5 * time.Minute)
	p = tick()
	rb := q.last("gw-3")
	if rb.Action != command.ActionRollback || rb.Params["product"] != "busybox" || rb.Params["version"] != "1.35.0" {
		t.Fatalf("rollback command %+v", rb)
	}
	q.results[rb.ID] = command.Result{Status: command.StatusSucceeded}
	p = tick()
	if p.State != vigil.PlanHalted || !p.Waves[1].Failed || p.Waves[1].Targets[0].State != vigil.TargetUpdated || p.Waves[1].Targets[1].State != vigil.TargetRolledBack {
		t.Fatalf("after the timeout: %+v", p)
	}
	if len(alerts) != 1 || alerts[0].DeviceID != "gw-3" || alerts[0].RuleID != "update-plan-halted" {
		t.Fatalf("alerts %+v", alerts)
	}
	want := []string{"vigil update_plan.propose", "alice update_plan.approve", "vigil update_plan.wave", "vigil finding.close", "vigil update_plan.wave",
		"vigil finding.close", "vigil update_plan.rollback", "vigil update_plan.halt"}
	if fmt.Sprint(au) != fmt.Sprint(want) {
		t.Errorf("audit\n got %v\nwant %v", au, want)
	}
	if _, err := e.Halt(ctx, p.ID, "bob", ""); vigil.ErrorCode(err) != vigil.ECONFLICT {
		t.Errorf("halting a halted plan: %v", err)
	}
}
