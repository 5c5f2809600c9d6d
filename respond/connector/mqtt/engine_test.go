package mqtt_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/respond"
	"github.com/vigil-iot/vigil/respond/connector/mqtt"
	"github.com/vigil-iot/vigil/respond/playbook"
	"github.com/vigil-iot/vigil/store/sqlite"
)

const quarantinePB = `
name: quarantine-bruteforcer
trigger: {rules: [mqtt-auth-bruteforce]}
steps:
  - action: quarantine_client
    params: {client_id: '{{.Entity "mqtt.client_id"}}'}
rollback: {on_false_positive: true}
`

// TestEngineEndToEnd: an alert on a brute-forcing client → the playbook's
// action → the real broker disconnects and locks out the client → the
// incident is contained; closing the incident as a false positive
// releases the client.
func TestEngineEndToEnd(t *testing.T) {
	url := broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pb, errs := playbook.Parse("q.yaml", []byte(quarantinePB))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	conn, _ := mqtt.New(mqtt.Options{Broker: url, Username: "admin", Password: "adminpw"})
	defer conn.Close()
	contained := make(chan time.Time, 1)
	eng, err := respond.New(respond.Options{Store: st, Audit: audit.NewRecorder(st, nil, nil),
		Playbooks: []*playbook.Playbook{pb}, Connectors: []respond.Connector{conn},
		OnContained: func(_ context.Context, id string, at time.Time) error { contained <- at; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	inc := vigil.Incident{ID: "inc-1", Status: vigil.IncidentOpen, Detected: time.Now()}
	st.PutIncident(ctx, inc)

	lost := make(chan struct{}, 1)
	if _, err := client(t, url, "cam-7", "campw", func() { lost <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	acts, err := eng.HandleAlert(ctx, vigil.Alert{ID: "al-1", RuleID: "mqtt-auth-bruteforce", Severity: vigil.SeverityHigh,
		IncidentID: "inc-1", Entities: []string{"ip:10.0.0.9", "mqtt.client_id:cam-7"}, Provenance: []string{"sensor-cert:sensor-1"}})
	if err != nil || len(acts) != 1 {
		t.Fatalf("%+v %v", acts, err)
	}
	eng.Wait()
	select {
	case <-lost:
	case <-ctx.Done():
		t.Fatal("the client was not disconnected")
	}
	select {
	case at := <-contained:
		t.Logf("time to contain %s", at.Sub(inc.Detected))
	case <-ctx.Done():
		t.Fatal("not contained")
	}
	if a, _ := st.GetAction(ctx, acts[0].ID); a.State != vigil.ActionSucceeded {
		t.Fatalf("action %+v", a)
	}
	if _, err := client(t, url, "cam-7", "campw", nil); err == nil {
		t.Fatal("the quarantined client logged in")
	}

	inc.Status = vigil.IncidentFalsePositive
	undo, err := eng.HandleIncident(ctx, inc, playbook.EventFalsePositive)
	if err != nil || len(undo) != 1 || undo[0].Type != "release_client" {
		t.Fatalf("%+v %v", undo, err)
	}
	eng.Wait()
	if a, _ := st.GetAction(ctx, acts[0].ID); a.State != vigil.ActionRolledBack {
		t.Fatalf("after the false positive %+v", a)
	}
	if _, err := client(t, url, "cam-7", "campw", nil); err != nil {
		t.Fatalf("released client cannot log in: %v", err)
	}
	if rep, err := audit.Verify(ctx, st); err != nil || !rep.OK {
		t.Fatalf("audit %v %v", rep, err)
	}
}
