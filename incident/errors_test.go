package incident_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/alert"
	"github.com/vigil-iot/vigil/incident"
)

// The alert stage hands alerts to the correlator through this interface.
var _ alert.IncidentAssigner = (*incident.Correlator)(nil)

func TestCorrelatorErrors(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "vigil.db"))
	defer st.Close()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	c, err := incident.NewCorrelator(ctx, st, incident.Options{Clock: &fakeClock{t: t0}, Registerer: reg, Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if c.Window() != time.Minute {
		t.Errorf("window = %v, want 1m", c.Window())
	}
	f := func(err error, code string) {
		t.Helper()
		if got := vigil.ErrorCode(err); got != code {
			t.Errorf("error %v has code %q, want %q", err, got, code)
		}
	}
	f(c.Assign(ctx, &vigil.Alert{Title: "no id"}), vigil.EINVALID)
	f(c.Assign(ctx, nil), vigil.EINVALID)
	f(c.Contain(ctx, "nope", t0), vigil.ENOTFOUND)
	f(c.Resolve(ctx, "nope", vigil.IncidentResolved, t0), vigil.ENOTFOUND)

	a := vigil.Alert{ID: "a1", Title: "x", DeviceID: "d1", Created: t0, Severity: vigil.SeverityLow}
	if err := c.Assign(ctx, &a); err != nil {
		t.Fatal(err)
	}
	f(c.Resolve(ctx, a.IncidentID, vigil.IncidentOpen, t0), vigil.EINVALID)
	f(c.Resolve(ctx, a.IncidentID, vigil.IncidentFalsePositive, time.Time{}), "")
	f(c.Resolve(ctx, a.IncidentID, vigil.IncidentFalsePositive, t0.Add(time.Hour)), "") // same status again: no-op
	f(c.Resolve(ctx, a.IncidentID, vigil.IncidentResolved, t0), vigil.ECONFLICT)
	f(c.Contain(ctx, a.IncidentID, t0), vigil.ECONFLICT)

	inc, err := st.GetIncident(ctx, a.IncidentID)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Status != vigil.IncidentFalsePositive || !inc.Resolved.Equal(t0) {
		t.Errorf("incident after resolve: status %s resolved %v, want false_positive at %v (the clock's now)", inc.Status, inc.Resolved, t0)
	}
	// A merged alert whose incident is closed opens a new one.
	first := a.IncidentID
	a.Count = 2
	if err := c.Assign(ctx, &a); err != nil {
		t.Fatal(err)
	}
	if a.IncidentID == first || a.IncidentID == "" {
		t.Errorf("alert of a closed incident got incident %q, want a new one", a.IncidentID)
	}
	if n := counterValue(t, reg, "vigil_incidents_created_total"); n != 2 {
		t.Errorf("vigil_incidents_created_total = %v, want 2", n)
	}
}

// counterValue returns the value of the named unlabelled counter of reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// TestResolveBecause keeps the reason and the closer with the incident;
// a reason beyond MaxResolution is refused and leaves it open.
func TestResolveBecause(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "vigil.db"))
	defer st.Close()
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	c, err := incident.NewCorrelator(ctx, st, incident.Options{Clock: &fakeClock{t: t0}, Registerer: prometheus.NewRegistry(), Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	a := vigil.Alert{ID: "a1", Title: "x", DeviceID: "d1", Created: t0, Severity: vigil.SeverityLow}
	if err := c.Assign(ctx, &a); err != nil {
		t.Fatal(err)
	}
	long := string(make([]byte, incident.MaxResolution+1))
	if err := c.ResolveBecause(ctx, a.IncidentID, vigil.IncidentResolved, long, "user:ana", t0); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Fatalf("a long reason: %v, want EINVALID", err)
	}
	if inc, _ := st.GetIncident(ctx, a.IncidentID); inc.Status != vigil.IncidentOpen {
		t.Fatalf("refused resolution changed the incident: %s", inc.Status)
	}
	if err := c.ResolveBecause(ctx, a.IncidentID, vigil.IncidentResolved, "firmware updated, password rotated", "user:ana", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	inc, err := st.GetIncident(ctx, a.IncidentID)
	if err != nil || inc.Status != vigil.IncidentResolved || inc.Resolution != "firmware updated, password rotated" || inc.ResolvedBy != "user:ana" || !inc.Resolved.Equal(t0.Add(time.Hour)) {
		t.Fatalf("incident after ResolveBecause: %+v %v", inc, err)
	}
}
