package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/internal/localagent"
	"github.com/vigil-iot/vigil/respond"
	"github.com/vigil-iot/vigil/store"
)

// TestForgedLoginsDoNotIsolate replays the attack of issue 14 item 4 on a
// running server with its built-in playbooks: the holder of an agent token
// posts failed logins in the name of a camera. Before, the camera was
// isolated at once. Now events about a camera with an enrolled identity
// are refused to the token (bulk and report), and the forged brute force
// on a camera without one raises its alert but its isolation waits for
// approval, saying the evidence came from the token; the events show
// their provenance.
func TestForgedLoginsDoNotIsolate(t *testing.T) {
	a := startTestApp(t)
	ctx := t.Context()
	admin, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.ca.Pool()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	cam, err := localagent.Start(ctx, a, a.CAFile(), "camera", "lobby", t.TempDir(), []string{"isolate", "restore"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Stop()
	tok, err := admin.CreateToken(ctx, "fleet", auth.RoleAgent)
	if err != nil {
		t.Fatal(err)
	}
	attacker, err := client.New(a.URL(), tok.Secret, client.TLSConfig(a.ca.Pool()))
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()

	// 1. The enrolled camera: refused, line by line and as a report.
	var body strings.Builder
	now := time.Now().UTC()
	for i := range 6 {
		ev, _ := json.Marshal(map[string]any{"time": now.Add(time.Duration(i-6) * time.Second).Format(time.RFC3339Nano),
			"device_id": cam.DeviceID, "kind": "auth", "action": "login", "outcome": "failure",
			"fields": map[string]any{"user.name": "admin", "source.ip": "203.0.113.66"}})
		body.Write(append(ev, '\n'))
	}
	_, err = attacker.PostEvents(ctx, []byte(body.String()))
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Ingest == nil || ce.Ingest.Accepted != 0 || ce.Ingest.RejectedCount != 6 ||
		!strings.Contains(ce.Ingest.Rejected[0].Error, "enrolled identity") {
		t.Fatalf("forged bulk events for the enrolled camera: %v", err)
	}
	rep := fmt.Sprintf(`{"version":"1","device_id":%q,"time":%q,"events":[{"time":%q,"kind":"auth","outcome":"failure"}]}`,
		cam.DeviceID, now.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
	if _, err := attacker.PostReport(ctx, "application/json", []byte(rep)); vigil.ErrorCode(err) != vigil.EFORBIDDEN {
		t.Fatalf("forged report for the enrolled camera: err = %v, want forbidden", err)
	}

	// 2. A camera without an enrolled identity: the alert is raised, the
	// isolation waits for a person.
	if err := a.store.PutDevice(ctx, vigil.Device{ID: "cam-legacy", Class: "camera", State: vigil.StateActive,
		FirstSeen: now, LastSeen: now}); err != nil {
		t.Fatal(err)
	}
	bruteForce(t, attacker, "cam-legacy", 7)
	var held respond.ActionView
	waitFor(t, "isolation of cam-legacy held for approval", func() (bool, string) {
		acts := actionsOf(t, admin, "cam-legacy")
		for _, x := range acts {
			if x.Type == "isolate" && x.State == vigil.ActionPendingApproval {
				held = x
				return true, ""
			}
		}
		return false, states(acts)
	})
	if !strings.Contains(held.Engine.Held, "token:fleet") {
		t.Errorf("held isolation says %q, want the token named", held.Engine.Held)
	}
	alerts, _, err := admin.ListAlerts(ctx, store.AlertFilter{DeviceID: "cam-legacy"})
	if err != nil || len(alerts) == 0 || alerts[0].EvidenceTrusted() || !strings.Contains(strings.Join(alerts[0].Provenance, ","), "token:fleet") {
		t.Fatalf("alerts of cam-legacy: %+v %v", alerts, err)
	}
	evs, _, err := admin.ListEvents(ctx, store.EventFilter{DeviceID: "cam-legacy", Page: store.Page{Limit: 10}})
	if err != nil || len(evs) == 0 {
		t.Fatalf("events of cam-legacy: %v %v", evs, err)
	}
	for _, e := range evs {
		if e.Provenance != "token:fleet" {
			t.Errorf("event %s provenance %q, want token:fleet", e.ID, e.Provenance)
		}
	}

	// Nothing was isolated: the enrolled camera has no action at all.
	a.respond.engine.Wait()
	if acts := actionsOf(t, admin, cam.DeviceID); len(acts) != 0 {
		t.Errorf("actions on the enrolled camera: %s", states(acts))
	}
	if got := cam.Exec.Actions(); len(got) != 0 {
		t.Errorf("the enrolled camera's agent ran %v", got)
	}
}

// TestConfigIngestKeys checks the config keys of the ingest bounds:
// max_clock_skew (positive) and redact_patterns (valid, non-empty-matching
// regular expressions), each error naming its key.
func TestConfigIngestKeys(t *testing.T) {
	f := func(yaml, wantErr string) Config {
		t.Helper()
		path := filepath.Join(t.TempDir(), "vigil.yaml")
		if err := os.WriteFile(path, []byte("data_dir: "+t.TempDir()+"\n"+yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		c := DefaultConfig()
		err := LoadConfig(path, &c)
		if err == nil {
			err = c.Validate()
		}
		if wantErr == "" && err != nil || wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Fatalf("%q: err = %v, want %q", yaml, err, wantErr)
		}
		return c
	}
	if c := f("", ""); time.Duration(c.MaxClockSkew) != 5*time.Minute || len(c.RedactPatterns) != 0 {
		t.Fatalf("defaults: %v %q", time.Duration(c.MaxClockSkew), c.RedactPatterns)
	}
	if c := f("max_clock_skew: 30s\nredact_patterns: ['ACME-[0-9]+']\n", ""); time.Duration(c.MaxClockSkew) != 30*time.Second || c.RedactPatterns[0] != "ACME-[0-9]+" {
		t.Fatalf("set: %v %q", time.Duration(c.MaxClockSkew), c.RedactPatterns)
	}
	f("max_clock_skew: 0s\n", "max_clock_skew")
	f("redact_patterns: ['(']\n", "redact_patterns")
	f("redact_patterns: ['x*']\n", "matches the empty string")
}
