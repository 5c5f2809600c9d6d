package incident_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/incident"
	"github.com/vigil-iot/vigil/store/sqlite"
)

// kevMap is a KEVSource over a map, as the vulnerability DB answers.
type kevMap map[string][]string

func (m kevMap) KEV(id string) []string { return m[id] }

func factor(p *vigil.Priority, name string) vigil.PriorityFactor {
	for _, f := range p.Factors {
		if f.Name == name {
			return f
		}
	}
	return vigil.PriorityFactor{}
}

// TestCorrelatorPriorities assigns alerts through a correlator with a
// Prioritizer on a real store and checks the priorities of the alerts and
// their incident: criticality from the device class and tags, exposure
// from KEV findings and public addresses, confidence from provenance, the
// blast radius from a pluggable function, and the incident's priority
// computed again as it changes (a new device, containment after the
// inventory changed).
func TestCorrelatorPriorities(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, d := range []vigil.Device{
		{ID: "cam-1", Class: vigil.ClassCamera},
		{ID: "plc-1", Class: "plc"},
		{ID: "plc-2", Class: "plc"},
		{ID: "meter-1", Class: vigil.ClassSmartMeter, Tags: []string{"criticality:low"}},
	} {
		if err := st.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	blastCalls := 0
	prio := &incident.Prioritizer{Devices: st, KEV: kevMap{"cam-1": {"CVE-2023-1389"}},
		BlastRadius: func(ctx context.Context, inc *vigil.Incident) (int, string, error) {
			blastCalls++
			return len(inc.DeviceIDs), "test measure", nil
		}}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	c, err := incident.NewCorrelator(ctx, st, incident.Options{Clock: &fakeClock{t: t0}, Priority: prio})
	if err != nil {
		t.Fatal(err)
	}
	assign := func(a vigil.Alert) vigil.Alert {
		t.Helper()
		a.Created, a.FirstEventTime, a.LastEventTime = t0, t0, t0
		if err := c.Assign(ctx, &a); err != nil {
			t.Fatal(err)
		}
		if a.Priority == nil {
			t.Fatalf("alert %s got no priority", a.ID)
		}
		return a
	}
	// High on a camera with a KEV, talking with a public address, trusted
	// evidence: 45 + 15 + 10 = 70.
	a1 := assign(vigil.Alert{ID: "a1", RuleID: "r", Severity: vigil.SeverityHigh, DeviceID: "cam-1",
		Entities: []string{"ip:203.0.113.9", "ip:10.0.0.2"}, Provenance: []string{"device-cert:cam-1"}})
	if a1.Priority.Score != 70 {
		t.Errorf("a1 priority %d, want 70: %+v", a1.Priority.Score, a1.Priority.Factors)
	}
	if v := factor(a1.Priority, "exposure").Value; !strings.Contains(v, "CVE-2023-1389") || !strings.Contains(v, "203.0.113.9") || strings.Contains(v, "10.0.0.2") {
		t.Errorf("a1 exposure %q", v)
	}
	// Medium on a PLC from an API token: (30 + 20) × 0.7 = 35.
	a2 := assign(vigil.Alert{ID: "a2", RuleID: "r2", Severity: vigil.SeverityMedium, DeviceID: "plc-1", Provenance: []string{"token:ops"}})
	if a2.Priority.Score != 35 || !strings.Contains(factor(a2.Priority, "criticality").Value, "plc-1 is a plc") {
		t.Errorf("a2 priority %d: %+v", a2.Priority.Score, a2.Priority.Factors)
	}
	// Low-criticality meter, no provenance: (45 - 10) × 0.8 = 28.
	a3 := assign(vigil.Alert{ID: "a3", RuleID: "r3", Severity: vigil.SeverityHigh, DeviceID: "meter-1"})
	if a3.Priority.Score != 28 {
		t.Errorf("a3 priority %d: %+v", a3.Priority.Score, a3.Priority.Factors)
	}
	inc1, err := st.GetIncident(ctx, a1.IncidentID)
	if err != nil {
		t.Fatal(err)
	}
	if inc1.Priority == nil || inc1.Priority.Score != 70 {
		t.Fatalf("incident of a1: %+v", inc1.Priority)
	}
	// An alert on another PLC sharing the public address joins a1's
	// incident: its priority now has the PLC's criticality and two
	// devices.
	a4 := assign(vigil.Alert{ID: "a4", RuleID: "r4", Severity: vigil.SeverityLow, DeviceID: "plc-2",
		Entities: []string{"ip:203.0.113.9"}, Provenance: []string{"sensor-cert:s1"}})
	if a4.IncidentID != a1.IncidentID {
		t.Fatalf("a4 in incident %s, want %s", a4.IncidentID, a1.IncidentID)
	}
	inc1, _ = st.GetIncident(ctx, a1.IncidentID)
	// high 45 + safety 20 + KEV 15 + internet 10 + 2 devices 5 = 95.
	if inc1.Priority.Score != 95 || factor(inc1.Priority, "blast_radius").Value != "2 devices: test measure" {
		t.Errorf("incident after a4: %d %+v", inc1.Priority.Score, inc1.Priority.Factors)
	}
	if blastCalls == 0 {
		t.Error("the blast radius function was not used")
	}
	// The PLC leaves the inventory's safety class: containment computes
	// the priority again.
	if err := st.PutDevice(ctx, vigil.Device{ID: "plc-2", Class: "sensor"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Contain(ctx, inc1.ID, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	inc1, _ = st.GetIncident(ctx, a1.IncidentID)
	if inc1.Priority.Score != 75 {
		t.Errorf("incident after containment: %d %+v", inc1.Priority.Score, inc1.Priority.Factors)
	}
	// Without a Prioritizer nothing is set.
	c2, err := incident.NewCorrelator(ctx, st, incident.Options{Clock: &fakeClock{t: t0}})
	if err != nil {
		t.Fatal(err)
	}
	a5 := vigil.Alert{ID: "a5", RuleID: "r", DeviceID: "other", Created: t0}
	if err := c2.Assign(ctx, &a5); err != nil || a5.Priority != nil {
		t.Errorf("without a Prioritizer: %v %+v", err, a5.Priority)
	}
}

// TestCriticality checks where a device's criticality comes from.
func TestCriticality(t *testing.T) {
	f := func(d vigil.Device, want vigil.Criticality) {
		t.Helper()
		if got, why := incident.Criticality(&d); got != want {
			t.Errorf("%+v: %s (%s), want %s", d, got, why, want)
		}
	}
	f(vigil.Device{ID: "x", Class: "camera"}, vigil.CriticalityNormal)
	f(vigil.Device{ID: "x", Class: "PLC"}, vigil.CriticalitySafety)
	f(vigil.Device{ID: "x", Class: "rtu"}, vigil.CriticalitySafety)
	f(vigil.Device{ID: "x", Class: "safety-controller"}, vigil.CriticalitySafety)
	f(vigil.Device{ID: "x", Class: vigil.ClassPLCGateway}, vigil.CriticalitySafety)
	f(vigil.Device{ID: "x", Class: vigil.ClassGateway}, vigil.CriticalityHigh)
	f(vigil.Device{ID: "x", Class: "camera", Tags: []string{"safety-critical"}}, vigil.CriticalitySafety)
	f(vigil.Device{ID: "x", Class: "plc", Tags: []string{"criticality:low"}}, vigil.CriticalityLow)
	f(vigil.Device{ID: "x", Class: "camera", Tags: []string{"criticality:high"}}, vigil.CriticalityHigh)
	f(vigil.Device{ID: "x", Class: "camera", Tags: []string{"criticality:bogus"}}, vigil.CriticalityNormal)
}
