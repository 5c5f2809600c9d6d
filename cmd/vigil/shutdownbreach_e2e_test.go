package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/internal/localagent"
	"github.com/vigil-iot/vigil/node"
	"github.com/vigil-iot/vigil/respond"
	"github.com/vigil-iot/vigil/respond/playbook"
)

// TestShutDownOnBreachEndToEnd runs a server whose playbook shuts down a
// breached camera, and two real vigil-agent processes whose policy allows
// shutdown (its command replaced by one that writes a file, so the test
// machine stays up): a brute force on the first camera is detected, the
// playbook sends shutdown, the agent verifies it, answers and then runs
// the command, and the incident is contained. The second camera is tagged
// safety-critical: its shutdown waits for approval and nothing runs until
// an operator approves it.
func TestShutDownOnBreachEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent binary; skipped with -short")
	}
	pbDir := t.TempDir()
	os.WriteFile(filepath.Join(pbDir, "shut-down.yaml"), []byte("name: shut-down-camera\n"+
		"trigger: {rules: [vigil-auth-bruteforce], device_classes: [camera]}\nsteps:\n  - action: shutdown\n"), 0o644)
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.SigmaDirs = []string{t.TempDir()}
	cfg.PlaybooksDir = pbDir
	a := runTestApp(t, cfg)
	ctx := t.Context()
	conn := []string{"--server", a.URL(), "--token", a.AdminToken(), "--ca", filepath.Join(a.Config().DataDir, "pki", "ca.crt")}
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	bin := filepath.Join(t.TempDir(), "vigil-agent")
	if out, err := exec.Command("go", "build", "-o", bin, "../vigil-agent").CombinedOutput(); err != nil {
		t.Fatalf("cannot build vigil-agent: %v\n%s", err, out)
	}
	type camera struct{ id, dir, marker string }
	// start enrolls a camera, tags it when tags are given (before its
	// agent runs: the inventory stage keeps its own copy of a device once
	// it has seen it, and would write it back without a tag set later),
	// and runs its agent.
	start := func(tags ...string) camera {
		t.Helper()
		out, code := run(t, "ctl", "enroll-token", "create", "--class", "camera", "--ttl", "10m", "--data-dir", a.Config().DataDir)
		if code != 0 {
			t.Fatalf("enroll-token create: %d %s", code, out)
		}
		dir := t.TempDir()
		state := filepath.Join(dir, "state")
		if out, err := exec.Command(bin, "enroll", "--server", a.URL(), "--token", strings.TrimSpace(out), "--state", state,
			"--ca", filepath.Join(a.Config().DataDir, "pki", "ca.crt")).CombinedOutput(); err != nil {
			t.Fatalf("enroll: %v\n%s", err, out)
		}
		id, err := agent.LoadIdentity(state)
		if err != nil {
			t.Fatal(err)
		}
		cam := camera{id.DeviceID, dir, filepath.Join(dir, "powered-off")}
		for _, tag := range tags {
			tagDevice(t, a, cam.id, tag)
		}
		policy := filepath.Join(dir, "policy.json")
		os.WriteFile(policy, []byte(`{"allow": ["shutdown"], "shutdown": "halt"}`), 0o600)
		b, _ := json.Marshal(map[string]any{"server": a.URL(), "state_dir": state, "interval": "60s", "poll_wait": "2s",
			"commands": true, "policy_file": policy, "shutdown_command": []string{"/bin/sh", "-c", "echo halted > " + cam.marker},
			"class": "camera", "disable": []string{"processes", "authlog", "fim", "packages", "network", "dos", "hardware"}})
		cfgFile := filepath.Join(dir, "agent.json")
		os.WriteFile(cfgFile, b, 0o600)
		cmd := exec.CommandContext(ctx, bin, "run", "--config", cfgFile)
		logf, _ := os.Create(filepath.Join(dir, "agent.log"))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
		return cam
	}
	poweredOff := func(cam camera) bool {
		b, _ := os.ReadFile(cam.marker)
		return strings.TrimSpace(string(b)) == "halted"
	}
	breach := func(cam camera, n int) {
		t.Helper()
		dc, err := localagent.EnrolledClient(a, filepath.Join(cam.dir, "state"))
		if err != nil {
			t.Fatal(err)
		}
		defer dc.Close()
		bruteForceReport(t, dc, cam.id, n) // evidence sent by the device's own certificate
	}
	shutdownOf := func(cam camera, state vigil.ActionState) func() (bool, string) {
		return func() (bool, string) {
			acts := actionsOf(t, conn, cam.id)
			for _, x := range acts {
				if x.Type == "shutdown" && x.State == state {
					return true, ""
				}
			}
			return false, states(acts)
		}
	}

	// A camera: shut down at once, the incident contained.
	cam := start()
	breach(cam, 1)
	waitFor(t, "shutdown of "+cam.id+" succeeded", shutdownOf(cam, vigil.ActionSucceeded))
	waitFor(t, "the agent ran the shutdown command", func() (bool, string) {
		l, _ := os.ReadFile(filepath.Join(cam.dir, "agent.log"))
		return poweredOff(cam), string(l)
	})
	var act respond.ActionView
	for _, x := range actionsOf(t, conn, cam.id) {
		if x.Type == "shutdown" {
			act = x
		}
	}
	waitFor(t, "incident contained", func() (bool, string) {
		in, err := c.GetIncident(ctx, act.IncidentID)
		return err == nil && in.Incident.Status == vigil.IncidentContained, fmt.Sprintf("%+v %v", in.Incident.Status, err)
	})

	// A safety-critical camera: held for approval, nothing runs before.
	crit := start(playbook.SafetyCriticalTag)
	breach(crit, 2)
	waitFor(t, "shutdown of "+crit.id+" held", shutdownOf(crit, vigil.ActionPendingApproval))
	var held respond.ActionView
	for _, x := range actionsOf(t, conn, crit.id) {
		if x.Type == "shutdown" {
			held = x
		}
	}
	if !strings.Contains(held.Engine.Held, "safety-critical") {
		t.Errorf("held shutdown says %q", held.Engine.Held)
	}
	time.Sleep(3 * time.Second)
	if poweredOff(crit) {
		t.Fatal("the safety-critical camera was shut down before approval")
	}
	if out, code := run(t, append([]string{"ctl", "actions", "approve", held.ID}, conn...)...); code != 0 {
		t.Fatalf("ctl actions approve: exit %d\n%s", code, out)
	}
	waitFor(t, "the approved shutdown ran", func() (bool, string) {
		l, _ := os.ReadFile(filepath.Join(crit.dir, "agent.log"))
		return poweredOff(crit), string(l)
	})
}
