package respond_test

import (
	"context"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/respond"
)

// TestContainmentNeedsTrustedEvidence is the guard of issue 14 item 4:
// the built-in isolation of a brute-forced camera runs automatically only
// when the alert's evidence was sent by the camera's own certificate or
// an enrolled sensor. Evidence posted with an API token (anyone holding an
// agent token can forge failed logins), from another device's
// certificate, mixed, or of unknown provenance waits for approval; the
// notification still goes.
func TestContainmentNeedsTrustedEvidence(t *testing.T) {
	f := func(name string, auto bool, held string, prov ...string) {
		t.Helper()
		e := newEnv(t, respond.Options{}, isolatePB)
		e.device("cam-1", "camera")
		a := vigil.Alert{ID: "al-1", RuleID: "ssh-bruteforce", Title: "SSH brute force", Severity: vigil.SeverityHigh,
			Tags: []string{"attack.t1110"}, DeviceID: "cam-1", Count: 1, Created: e.clock.Now(), Provenance: prov}
		acts, err := e.eng.HandleAlert(context.Background(), a)
		if err != nil {
			t.Fatal(err)
		}
		e.eng.Wait()
		iso, notify := e.get(acts[0].ID), e.get(acts[1].ID)
		if notify.State != vigil.ActionSucceeded {
			t.Errorf("%s: notify %s", name, notify.State)
		}
		if auto {
			if iso.State != vigil.ActionSucceeded || len(e.agent.calls()) != 1 {
				t.Errorf("%s: isolate %s, %d calls: want automatic", name, iso.State, len(e.agent.calls()))
			}
			return
		}
		if iso.State != vigil.ActionPendingApproval || len(e.agent.calls()) != 0 || !strings.Contains(iso.Params[respond.MetaHeld], held) {
			t.Errorf("%s: isolate %s (%q), %d calls: want held for approval naming %q", name, iso.State, iso.Params[respond.MetaHeld], len(e.agent.calls()), held)
		}
	}
	f("device certificate", true, "", "device-cert:cam-1")
	f("sensor", true, "", "sensor-cert:sensor-1")
	f("device and sensor", true, "", "device-cert:cam-1", "sensor-cert:sensor-1")
	f("agent token", false, "token:fleet", "token:fleet")
	f("token mixed in", false, "token:fleet", "device-cert:cam-1", "token:fleet")
	f("another device", false, "device-cert:cam-2", "device-cert:cam-2")
	f("unknown", false, "unknown provenance")
	f("unknown marker", false, "unknown", vigil.ProvenanceUnknown)
}

// TestIncidentContainmentNeedsTrustedEvidence: a playbook triggered by an
// incident (not by an alert) isolates a device automatically only when one
// of the incident's alerts on that device has trusted evidence; an
// incident made of token-posted alerts waits for approval.
func TestIncidentContainmentNeedsTrustedEvidence(t *testing.T) {
	const pb = `
name: isolate-on-incident
trigger: {incident: [opened]}
steps:
  - action: isolate
    params: {reason: "incident {{.Incident.ID}}"}
`
	f := func(name string, auto bool, prov ...string) {
		t.Helper()
		e := newEnv(t, respond.Options{}, pb)
		e.device("cam-1", "camera")
		inc := e.incident("inc-1", "cam-1")
		a := vigil.Alert{ID: "al-1", DedupKey: "k1", RuleID: "ssh-bruteforce", Title: "SSH brute force", Severity: vigil.SeverityHigh,
			DeviceID: "cam-1", IncidentID: "inc-1", Count: 1, Created: e.clock.Now(), Provenance: prov}
		if err := e.st.PutAlert(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		acts, err := e.eng.HandleIncident(context.Background(), inc, "opened")
		if err != nil || len(acts) != 1 {
			t.Fatalf("%s: %d actions, %v", name, len(acts), err)
		}
		e.eng.Wait()
		iso := e.get(acts[0].ID)
		switch {
		case auto && (iso.State != vigil.ActionSucceeded || len(e.agent.calls()) != 1):
			t.Errorf("%s: isolate %s, %d calls: want automatic", name, iso.State, len(e.agent.calls()))
		case !auto && (iso.State != vigil.ActionPendingApproval || len(e.agent.calls()) != 0 || !strings.Contains(iso.Params[respond.MetaHeld], "evidence")):
			t.Errorf("%s: isolate %s (%q), %d calls: want held for approval", name, iso.State, iso.Params[respond.MetaHeld], len(e.agent.calls()))
		}
	}
	f("device certificate", true, "device-cert:cam-1")
	f("agent token", false, "token:fleet")
	f("no provenance", false)
}
