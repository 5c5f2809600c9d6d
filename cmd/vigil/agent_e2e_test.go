package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/agent"
	"github.com/vigil-iot/vigil/store"
)

// TestAgentEnrollsAndReportsOverMutualTLS builds the real vigil-agent,
// enrolls it with a token from `vigil ctl enroll-token create`, runs one
// collection and report over mutual TLS, and checks the server stored the
// device's report under the identity of its certificate. A revoked device
// is then refused.
func TestAgentEnrollsAndReportsOverMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent binary; skipped with -short")
	}
	a := startTestApp(t)
	bin := filepath.Join(t.TempDir(), "vigil-agent")
	if out, err := exec.Command("go", "build", "-o", bin, "../vigil-agent").CombinedOutput(); err != nil {
		t.Fatalf("cannot build vigil-agent: %v\n%s", err, out)
	}
	out, code := run(t, "ctl", "enroll-token", "create", "--class", "camera", "--ttl", "10m", "--data-dir", a.Config().DataDir)
	if code != 0 {
		t.Fatalf("enroll-token create: %d %s", code, out)
	}
	token := strings.TrimSpace(out)
	state := t.TempDir()
	ca := filepath.Join(a.Config().DataDir, "pki", "ca.crt")
	enrollOut, err := exec.Command(bin, "enroll", "--server", a.URL(), "--token", token, "--state", state, "--ca", ca).CombinedOutput()
	if err != nil {
		t.Fatalf("enroll: %v\n%s", err, enrollOut)
	}
	// The enrollment handed the update key (update artifacts are signed
	// with it, never with the command key).
	if id, err := agent.LoadIdentity(state); err != nil || !id.UpdateKey().Equal(a.UpdatePublicKey()) {
		t.Fatalf("update key after enrollment: %v", err)
	}
	// A token is single-use.
	if again, err := exec.Command(bin, "enroll", "--server", a.URL(), "--token", token, "--state", t.TempDir(), "--ca", ca).CombinedOutput(); err == nil {
		t.Fatalf("a used token enrolled again:\n%s", again)
	}

	cfg := map[string]any{"server": a.URL(), "state_dir": state, "format": "xml", "interval": "60s", "commands": false,
		"class": "camera", "vendor": "Acme", "model": "IPC-2000", "disable": []string{"processes", "authlog", "fim"}}
	cfgFile := filepath.Join(t.TempDir(), "agent.json")
	b, _ := json.Marshal(cfg)
	os.WriteFile(cfgFile, b, 0o600)
	runOut, err := exec.Command(bin, "run", "--config", cfgFile, "--once").CombinedOutput()
	if err != nil {
		t.Fatalf("run --once: %v\n%s", err, runOut)
	}

	var devID string
	deadline := time.Now().Add(20 * time.Second)
	for devID == "" && time.Now().Before(deadline) {
		ds, _, err := a.Store().ListDevices(t.Context(), store.DeviceFilter{Class: "camera"})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.Health != nil && d.OS != "" {
				devID = d.ID
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if devID == "" {
		t.Fatalf("no enrolled camera with health and inventory; agent said:\n%s\n%s", enrollOut, runOut)
	}
	evs, _, err := a.Store().ListEvents(t.Context(), store.EventFilter{DeviceID: devID, Kind: "health"})
	if err != nil || len(evs) == 0 {
		t.Fatalf("no health event stored for %s: %v", devID, err)
	}

	if err := revokeDevice(t, a, devID); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "run", "--config", cfgFile, "--once").CombinedOutput(); err == nil {
		t.Fatalf("a revoked device could still report:\n%s", out)
	}
}
