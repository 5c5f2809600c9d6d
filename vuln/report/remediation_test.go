package report

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// TestRemediationTimes: the time to remediate per finding and the mean
// per cohort and overall, from the plans' closed findings; open ones are
// counted, not timed.
func TestRemediationTimes(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	pf := func(dev string, open, closed time.Duration) vigil.PlanFinding {
		f := vigil.PlanFinding{FindingID: dev + "|CVE-1", DeviceID: dev, Vuln: "CVE-1", FirstSeen: t0.Add(open)}
		if closed > 0 {
			f.Closed = t0.Add(closed)
		}
		return f
	}
	r := Build(Input{Now: t0.Add(48 * time.Hour), Plans: []vigil.UpdatePlan{
		{ID: "p1", Cohort: "camera/IPC-2", State: vigil.PlanHalted, Findings: []vigil.PlanFinding{pf("c1", 0, 2*time.Hour), pf("c2", 0, 4*time.Hour), pf("c3", 0, 0)}},
		{ID: "p2", Cohort: "gateway/G2", State: vigil.PlanCompleted, Findings: []vigil.PlanFinding{pf("g1", time.Hour, 10*time.Hour)}},
	}})
	s := r.Remediation
	if s.Plans != 2 || s.Halted != 1 || s.Completed != 1 || s.Closed != 3 || s.Open != 1 || s.MeanTTR.Text != "5h0m0s" {
		t.Fatalf("summary %+v", s)
	}
	if len(s.ByCohort) != 2 || s.ByCohort[0].Cohort != "camera/IPC-2" || s.ByCohort[0].MeanTTR.Text != "3h0m0s" || s.ByCohort[0].Open != 1 ||
		s.ByCohort[1].MeanTTR.Text != "9h0m0s" {
		t.Fatalf("by cohort %+v", s.ByCohort)
	}
	if len(s.Fixed) != 3 || s.Fixed[0].DeviceID != "g1" || s.Fixed[0].TTR.Text != "9h0m0s" {
		t.Fatalf("fixed %+v", s.Fixed)
	}
	var b strings.Builder
	if err := Write(&b, "html", r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "mean time to remediate <b>5h0m0s</b>") || !strings.Contains(b.String(), "<td>gateway/G2</td>") {
		t.Errorf("HTML lacks the remediation section")
	}
}

// TestDeviceRemediation: the findings of the devices asked for, one per
// device and vulnerability (a later plan that closed it wins over one
// still open), with the time to remediate of the posture report or how
// long it has been open; other devices' findings left out.
func TestDeviceRemediation(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f := func(dev, cve string, closed time.Duration) vigil.PlanFinding {
		pf := vigil.PlanFinding{DeviceID: dev, Vuln: cve, Component: "busybox", Fixed: "1.36.1", FirstSeen: t0}
		if closed > 0 {
			pf.Closed = t0.Add(closed)
		}
		return pf
	}
	plans := []vigil.UpdatePlan{
		{ID: "p1", State: vigil.PlanHalted, Findings: []vigil.PlanFinding{f("c1", "CVE-2", 0), f("c1", "CVE-1", 0), f("c9", "CVE-1", time.Hour)}},
		{ID: "p2", State: vigil.PlanCompleted, Findings: []vigil.PlanFinding{f("c1", "CVE-1", 3*time.Hour), f("c2", "CVE-3", 90*time.Minute)}},
		{ID: "p3", State: vigil.PlanProposed, Findings: []vigil.PlanFinding{f("c1", "CVE-1", 0)}},
	}
	rows := DeviceRemediation(plans, []string{"c1", "c2"}, t0.Add(24*time.Hour))
	var got []string
	for _, r := range rows {
		got = append(got, r.DeviceID+" "+r.Vuln+" "+r.PlanID+" ttr="+r.TTR.Text+" open="+r.OpenFor.Text)
	}
	want := []string{
		"c1 CVE-1 p2 ttr=3h0m0s open=",
		"c1 CVE-2 p1 ttr= open=24h0m0s",
		"c2 CVE-3 p2 ttr=1h30m0s open=",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if rows[0].PlanState != vigil.PlanCompleted || rows[0].Fixed != "1.36.1" || !rows[0].Closed.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("closed row %+v", rows[0])
	}
	if len(DeviceRemediation(plans, nil, t0)) != 0 {
		t.Fatal("rows for no device")
	}
}
