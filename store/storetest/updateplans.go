package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// testUpdatePlans checks update plans: a plan round-trips whole (waves,
// targets, findings, times), a put replaces it (the state moves), lists
// filter by state in creation order, ENOTFOUND, and bad plans refused.
func testUpdatePlans(t *testing.T, s store.Store) {
	if _, err := s.GetUpdatePlan(ctx(t), "none"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("GetUpdatePlan before any: %v, want ENOTFOUND", err)
	}
	if ps, err := s.ListUpdatePlans(ctx(t)); err != nil || len(ps) != 0 {
		t.Fatalf("ListUpdatePlans when empty: %v %v", ps, err)
	}
	p1 := vigil.UpdatePlan{ID: "p1", Cohort: "camera/IPC-2", Product: "openssl", Version: "1.0.1e-2+deb7u5", ArtifactID: "a1",
		State: vigil.PlanProposed, Reason: "not KEV", Created: base.Add(time.Minute), Updated: base.Add(time.Minute),
		Findings: []vigil.PlanFinding{{FindingID: "f1", DeviceID: "d1", Vuln: "CVE-2014-0160", KEV: true, Component: "openssl", From: "1.0.1e-2+deb7u4", FirstSeen: base}},
		Waves: []vigil.PlanWave{{Targets: []vigil.PlanTarget{{DeviceID: "d1", State: vigil.TargetPending}}},
			{Targets: []vigil.PlanTarget{{DeviceID: "d2", State: vigil.TargetPending}, {DeviceID: "d3", State: vigil.TargetPending}}}}}
	p0 := vigil.UpdatePlan{ID: "p0", Cohort: "gateway/G2", Product: "busybox", Version: "1.36.1", ArtifactID: "a2", State: vigil.PlanRunning, Auto: true,
		Created: base, Updated: base}
	for _, p := range []vigil.UpdatePlan{p1, p0} {
		must(t, s.PutUpdatePlan(ctx(t), p), "PutUpdatePlan "+p.ID)
	}
	got, err := s.GetUpdatePlan(ctx(t), "p1")
	if err != nil || !reflect.DeepEqual(got, p1) {
		t.Fatalf("GetUpdatePlan p1:\n got %+v %v\nwant %+v", got, err, p1)
	}
	p1.State, p1.ApprovedBy, p1.Approved = vigil.PlanRunning, "alice", base.Add(2*time.Minute)
	p1.Waves[0].Targets[0] = vigil.PlanTarget{DeviceID: "d1", State: vigil.TargetUpdated, Command: "c1", Sent: base.Add(3 * time.Minute), Done: base.Add(4 * time.Minute)}
	p1.Findings[0].Closed = base.Add(4 * time.Minute)
	must(t, s.PutUpdatePlan(ctx(t), p1), "PutUpdatePlan p1 again")
	if got, err = s.GetUpdatePlan(ctx(t), "p1"); err != nil || !reflect.DeepEqual(got, p1) {
		t.Fatalf("after replace:\n got %+v %v\nwant %+v", got, err, p1)
	}
	if got.Findings[0].TimeToRemediate() != 4*time.Minute {
		t.Errorf("time to remediate %s", got.Findings[0].TimeToRemediate())
	}
	ids := func(ps []vigil.UpdatePlan) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	if ps, err := s.ListUpdatePlans(ctx(t)); err != nil || !reflect.DeepEqual(ids(ps), []string{"p0", "p1"}) {
		t.Fatalf("list all: %v %v", ids(ps), err)
	}
	if ps, err := s.ListUpdatePlans(ctx(t), vigil.PlanRunning); err != nil || !reflect.DeepEqual(ids(ps), []string{"p0", "p1"}) {
		t.Fatalf("list running: %v %v", ids(ps), err)
	}
	if ps, err := s.ListUpdatePlans(ctx(t), vigil.PlanProposed, vigil.PlanHalted); err != nil || len(ps) != 0 {
		t.Fatalf("list proposed+halted: %v %v", ids(ps), err)
	}
	for _, bad := range []vigil.UpdatePlan{{ArtifactID: "a", State: vigil.PlanRunning}, {ID: "x", State: vigil.PlanRunning}, {ID: "x", ArtifactID: "a", State: "done"}} {
		if err := s.PutUpdatePlan(ctx(t), bad); vigil.ErrorCode(err) != vigil.EINVALID {
			t.Errorf("PutUpdatePlan %+v: %v, want EINVALID", bad, err)
		}
	}
}
