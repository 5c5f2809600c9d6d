package incident_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/incident"
	"github.com/vigil-iot/vigil/store"
)

// TestSharedCorrelators runs two correlators on one store, as two cluster
// nodes between which the alert stage moves: alerts of one device join
// the incident the other opened once it reloads, and an incident resolved
// through one node takes no more alerts on the other.
func TestSharedCorrelators(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "vigil.db"))
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: t0}
	open := func() *incident.Correlator {
		c, err := incident.NewCorrelator(ctx, st, incident.Options{Clock: clock, Shared: true})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := open(), open()
	alert := func(id string, at time.Time) *vigil.Alert {
		return &vigil.Alert{ID: id, DeviceID: "d1", RuleID: "r", Title: "x", Severity: vigil.SeverityHigh, Created: at, LastEventTime: at}
	}
	a1 := alert("a1", t0)
	if err := a.Assign(ctx, a1); err != nil {
		t.Fatal(err)
	}
	// b took over the alert stage: it reloads and joins.
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	a2 := alert("a2", t0.Add(time.Minute))
	if err := b.Assign(ctx, a2); err != nil {
		t.Fatal(err)
	}
	if a2.IncidentID != a1.IncidentID {
		t.Fatalf("alert on the second node opened %s, want to join %s", a2.IncidentID, a1.IncidentID)
	}
	// The first node resolves it (an API call); the second must not join
	// the closed incident although its index still holds it.
	if err := a.Resolve(ctx, a1.IncidentID, vigil.IncidentResolved, t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	a3 := alert("a3", t0.Add(3*time.Minute))
	if err := b.Assign(ctx, a3); err != nil {
		t.Fatal(err)
	}
	if a3.IncidentID == a1.IncidentID {
		t.Fatal("alert joined an incident resolved on another node")
	}
	inc, err := st.GetIncident(ctx, a1.IncidentID)
	if err != nil {
		t.Fatal(err)
	}
	if inc.Status != vigil.IncidentResolved || len(inc.AlertIDs) != 2 {
		t.Errorf("incident %s: status %s, alerts %v; want resolved with a1, a2", inc.ID, inc.Status, inc.AlertIDs)
	}
	list, _, err := st.ListIncidents(ctx, store.IncidentFilter{Page: store.Page{Limit: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Errorf("%d incidents, want 2", len(list))
	}
}
