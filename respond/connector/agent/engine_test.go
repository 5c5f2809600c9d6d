package agent_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/respond"
	"github.com/vigil-iot/vigil/respond/playbook"
	"github.com/vigil-iot/vigil/store/sqlite"
)

// TestEngineIsolates: an alert on a camera → the playbook isolates it
// through the real command channel and agent → the agent's result
// acknowledges the action → the incident is contained with that time.
func TestEngineIsolates(t *testing.T) {
	conn, device, exec := channel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pb, errs := playbook.Parse("iso.yaml", []byte(`
name: isolate-camera
trigger: {min_severity: high, device_classes: [camera]}
steps: [{action: isolate}]
rollback: {on_false_positive: true}
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	contained := make(chan time.Time, 1)
	eng, err := respond.New(respond.Options{Store: st, Audit: audit.NewRecorder(st, nil, nil),
		Playbooks: []*playbook.Playbook{pb}, Connectors: []respond.Connector{conn},
		OnContained: func(_ context.Context, id string, at time.Time) error { contained <- at; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	st.PutDevice(ctx, vigil.Device{ID: device, Class: "camera", State: vigil.StateActive})
	inc := vigil.Incident{ID: "inc-1", Status: vigil.IncidentOpen, DeviceIDs: []string{device}, Detected: time.Now()}
	st.PutIncident(ctx, inc)
	acts, err := eng.HandleAlert(ctx, vigil.Alert{ID: "al-1", RuleID: "telnet-bruteforce", Severity: vigil.SeverityCritical,
		DeviceID: device, IncidentID: "inc-1", Provenance: []string{"device-cert:" + device}})
	if err != nil || len(acts) != 1 {
		t.Fatalf("%+v %v", acts, err)
	}
	eng.Wait()
	select {
	case at := <-contained:
		t.Logf("time to contain (alert → isolation acknowledged by the agent) %s", at.Sub(inc.Detected))
	case <-ctx.Done():
		t.Fatal("not contained")
	}
	a, _ := st.GetAction(ctx, acts[0].ID)
	if a.State != vigil.ActionSucceeded || a.Result != "done isolate" {
		t.Fatalf("action %+v", a)
	}
	inc.Status = vigil.IncidentFalsePositive
	if _, err := eng.HandleIncident(ctx, inc, playbook.EventFalsePositive); err != nil {
		t.Fatal(err)
	}
	eng.Wait()
	if a, _ := st.GetAction(ctx, acts[0].ID); a.State != vigil.ActionRolledBack {
		t.Fatalf("after the false positive %+v", a)
	}
	exec.mu.Lock()
	defer exec.mu.Unlock()
	if strings.Join(exec.runs, ",") != "isolate,restore" {
		t.Fatalf("the agent ran %v", exec.runs)
	}
}
