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

// TestStageFiresOncePerKeyUntilCleared checks the re-fire control of
// rules with once_per: one alert per device and key, whatever its age,
// until its incident is resolved; then the next repeat is a new alert. An
// alert merged by the window is cleared by its incident's resolution too.
func TestStageFiresOncePerKeyUntilCleared(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	corr, err := incident.NewCorrelator(ctx, st, incident.Options{Clock: fixedClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	var created []string
	s, err := alert.NewStage(nil, st, alert.Options{
		Assigner: corr, Clock: fixedClock(t0),
		Dedup: alert.DedupOptions{Incidents: st},
		OnStored: func(a vigil.Alert, o alert.Outcome) {
			if o == alert.Created {
				created = append(created, a.ID)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	listen := func(id string, min int, port string) vigil.Alert {
		a := raised(id, min, vigil.SeverityMedium, "ev-"+id)
		a.Detector, a.RuleID, a.Title = "sigma", "new-listener", "New listening port outside the device baseline"
		a.DedupKey, a.UntilCleared = "sigma|new-listener|cam-1|destination.port="+port, true
		return a
	}
	handle := func(a vigil.Alert) {
		t.Helper()
		if err := s.Handle(ctx, []vigil.Alert{a}); err != nil {
			t.Fatal(err)
		}
	}
	handle(listen("l1", 0, "31337"))
	handle(listen("l2", 20, "31337"))  // past the 10-minute window: still l1
	handle(listen("l3", 180, "31337")) // three hours on: still l1
	handle(listen("p1", 181, "4444"))  // another port: its own alert
	l1, err := st.GetAlert(ctx, "l1")
	if err != nil {
		t.Fatal(err)
	}
	if l1.Count != 3 || len(created) != 2 {
		t.Fatalf("l1 count %d, alerts created %v; want 3 and [l1 p1]", l1.Count, created)
	}
	if err := corr.Resolve(ctx, l1.IncidentID, vigil.IncidentResolved, t0.Add(190*time.Minute)); err != nil {
		t.Fatal(err)
	}
	handle(listen("l4", 200, "31337")) // cleared: fires again
	if len(created) != 3 || created[2] != "l4" {
		t.Fatalf("after the incident was resolved, alerts created %v; want l4 last", created)
	}
	if l4, err := st.GetAlert(ctx, "l4"); err != nil || l4.IncidentID == l1.IncidentID || l4.Count != 1 {
		t.Errorf("l4: %+v, %v; want a new alert in a new incident", l4, err)
	}

	// Within the dedup window too, a resolved incident clears its alert.
	w1 := raised("w1", 300, vigil.SeverityLow, "ev-w1")
	w1.DeviceID = "cam-9"
	handle(w1)
	w1, _ = st.GetAlert(ctx, "w1")
	if err := corr.Resolve(ctx, w1.IncidentID, vigil.IncidentFalsePositive, t0.Add(301*time.Minute)); err != nil {
		t.Fatal(err)
	}
	w2 := raised("w2", 302, vigil.SeverityLow, "ev-w2")
	w2.DeviceID = "cam-9"
	handle(w2)
	if got, _ := st.GetAlert(ctx, "w1"); got.Count != 1 || created[len(created)-1] != "w2" {
		t.Errorf("a repeat after a false positive merged into it (w1 count %d, created %v)", got.Count, created)
	}
}
