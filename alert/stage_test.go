package alert_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/alert"
	"github.com/vigil-iot/vigil/incident"
	"github.com/vigil-iot/vigil/store"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// counter returns the value of a counter of reg, summed over its labels
// when label is "", else the one with that label value.
func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || (len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == label) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// newStage returns a stage on a sqlite store with a real incident
// correlator, and the pieces to look at.
func newStage(t *testing.T, assigner alert.IncidentAssigner) (*alert.Stage, store.Store, *prometheus.Registry) {
	t.Helper()
	st := openStore(t, "")
	if assigner == nil {
		c, err := incident.NewCorrelator(context.Background(), st, incident.Options{Clock: fixedClock(t0)})
		if err != nil {
			t.Fatal(err)
		}
		assigner = c
	}
	sup, err := alert.NewSuppressor(alert.Suppression{RuleID: "noisy", Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := alert.NewStage(nil, st, alert.Options{
		Assigner: assigner, Suppressor: sup, Clock: fixedClock(t0), Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, st, reg
}

func TestStageHandle(t *testing.T) {
	ctx := context.Background()
	s, st, reg := newStage(t, nil)

	noisy := raised("n1", 1, vigil.SeverityLow)
	noisy.RuleID = "noisy"
	other := raised("o1", 2, vigil.SeverityCritical)
	other.DeviceID = "cam-2"
	other.Entities = []string{"ip:203.0.113.9"}
	first := raised("a1", 0, vigil.SeverityMedium, "e1")
	first.Entities = []string{"ip:203.0.113.9"}
	batch := []vigil.Alert{
		first,
		raised("a2", 3, vigil.SeverityHigh, "e2"), // merges into a1
		{ID: "bad", Detector: "sigma"},            // no rule, no title: rejected
		noisy,                                     // suppressed
		other,                                     // another device, shared entity: same incident
	}
	if err := s.Handle(ctx, batch); err != nil {
		t.Fatal(err)
	}
	a1, err := st.GetAlert(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	o1, err := st.GetAlert(ctx, "o1")
	if err != nil {
		t.Fatal(err)
	}
	if a1.Count != 2 || a1.Severity != vigil.SeverityHigh || a1.IncidentID == "" || o1.IncidentID != a1.IncidentID {
		t.Errorf("a1: count %d severity %s incident %q; o1 incident %q; want 2, high, one shared incident",
			a1.Count, a1.Severity, a1.IncidentID, o1.IncidentID)
	}
	for _, id := range []string{"a2", "bad", "n1"} {
		if _, err := st.GetAlert(ctx, id); vigil.ErrorCode(err) != vigil.ENOTFOUND {
			t.Errorf("alert %s was stored (err %v)", id, err)
		}
	}
	inc, err := st.GetIncident(ctx, a1.IncidentID)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Severity != vigil.SeverityCritical || len(inc.AlertIDs) != 2 || len(inc.DeviceIDs) != 2 {
		t.Errorf("incident: severity %s alerts %v devices %v; want critical, [a1 o1], [cam-1 cam-2]",
			inc.Severity, inc.AlertIDs, inc.DeviceIDs)
	}

	// The bus redelivers the whole batch: nothing is counted twice.
	if err := s.Handle(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if a1, _ := st.GetAlert(ctx, "a1"); a1.Count != 2 {
		t.Errorf("a1 count after redelivery = %d, want 2", a1.Count)
	}
	f := func(name, label string, want float64) {
		t.Helper()
		if got := counter(t, reg, name, label); got != want {
			t.Errorf("%s{%s} = %v, want %v", name, label, got, want)
		}
	}
	f("vigil_alerts_total", "", 3)
	f("vigil_alerts_total", "critical", 1)
	f("vigil_alerts_deduplicated_total", "", 1)
	f("vigil_alerts_rejected_total", "", 2) // "bad" in both deliveries
	f("vigil_alerts_suppressed_total", "", 2)
}

type assignerFunc func(ctx context.Context, a *vigil.Alert) error

func (f assignerFunc) Assign(ctx context.Context, a *vigil.Alert) error { return f(ctx, a) }

func TestStageRetriesWhenAssignFails(t *testing.T) {
	ctx := context.Background()
	fail := true
	s, st, _ := newStage(t, assignerFunc(func(_ context.Context, a *vigil.Alert) error {
		if fail {
			return errors.New("incident store down")
		}
		a.IncidentID = "inc-1"
		return nil
	}))
	batch := []vigil.Alert{raised("a1", 0, vigil.SeverityLow)}
	if err := s.Handle(ctx, batch); err == nil {
		t.Fatal("Handle succeeded although the incident could not be assigned")
	}
	if _, err := st.GetAlert(ctx, "a1"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("alert stored before its incident was assigned (err %v)", err)
	}
	fail = false
	if err := s.Handle(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if a, err := st.GetAlert(ctx, "a1"); err != nil || a.IncidentID != "inc-1" || a.Count != 1 {
		t.Errorf("after retry: %+v, %v; want stored with incident inc-1 and count 1", a, err)
	}
}
