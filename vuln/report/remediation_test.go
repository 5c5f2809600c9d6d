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
