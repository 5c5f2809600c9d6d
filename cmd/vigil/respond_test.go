package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/internal/localagent"
	"github.com/vigil-iot/vigil/node"
	"github.com/vigil-iot/vigil/respond"
	"github.com/vigil-iot/vigil/respond/playbook"
	"github.com/vigil-iot/vigil/store"
)

// bruteForce posts six failed logins on dev (from an address and as a user
// of their own for each n, so each is an incident of its own) through the real ingest API:
// the built-in rule vigil-auth-bruteforce raises a high alert tagged
// attack.t1110.
func bruteForce(t *testing.T, c *client.Client, dev string, n int) {
	t.Helper()
	ip := fmt.Sprintf("203.0.113.%d", 10+n)
	var b strings.Builder
	now := time.Now().UTC()
	for i := range 6 {
		ev, _ := json.Marshal(map[string]any{
			"time": now.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano), "device_id": dev,
			"kind": "auth", "action": "login", "outcome": "failure", "fields": map[string]any{"user.name": fmt.Sprintf("admin%d", n), "source.ip": ip},
		})
		b.Write(ev)
		b.WriteByte('\n')
	}
	if res, err := c.PostEvents(t.Context(), []byte(b.String())); err != nil || res.Accepted != 6 {
		t.Fatalf("post: %+v %v", res, err)
	}
}

// bruteForceReport is bruteForce sent as the device itself: one agent
// report with the six failed logins, posted by c, a client presenting
// the device's enrolled certificate (enrolledClient). A device with an
// enrolled identity speaks only for itself: no API token may send its
// events.
func bruteForceReport(t *testing.T, c *client.Client, dev string, n int) {
	t.Helper()
	now := time.Now().UTC()
	rep := map[string]any{"version": "1", "device_id": dev, "time": now.Format(time.RFC3339Nano), "sequence": n}
	var evs []map[string]any
	for i := range 6 {
		evs = append(evs, map[string]any{"time": now.Add(time.Duration(i-6) * time.Second).Format(time.RFC3339Nano),
			"kind": "auth", "action": "login", "outcome": "failure",
			"fields": map[string]any{"user.name": fmt.Sprintf("admin%d", n), "source.ip": fmt.Sprintf("203.0.113.%d", 10+n)}})
	}
	rep["events"] = evs
	body, _ := json.Marshal(rep)
	if res, err := c.PostReport(t.Context(), "application/json", body); err != nil || res.Accepted != 6 {
		t.Fatalf("post report: %+v %v", res, err)
	}
}

// waitFor polls cond every 100 ms until it holds, or fails after 30 s
// with what last returned.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached; last: %s", what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// actionsOf lists the actions on a device through the CLI (-o json).
func actionsOf(t *testing.T, conn []string, dev string) []respond.ActionView {
	t.Helper()
	out, code := run(t, append([]string{"ctl", "actions", "--device", dev, "-o", "json"}, conn...)...)
	if code != 0 {
		t.Fatalf("ctl actions: exit %d:\n%s", code, out)
	}
	var acts []respond.ActionView
	if err := json.Unmarshal([]byte(out), &acts); err != nil {
		t.Fatalf("ctl actions -o json: %v\n%s", err, out)
	}
	return acts
}

func states(acts []respond.ActionView) string {
	var s []string
	for _, a := range acts {
		s = append(s, fmt.Sprintf("%s:%s(%s)", a.Type, a.State, a.Result))
	}
	return strings.Join(s, ", ")
}

// TestAutomaticContainment runs the server with its built-in playbooks and
// real enrolled agents (in process, with a recording executor: the host's
// firewall is never touched) on the signed command channel: a brute force
// on a camera is detected, the playbook isolates it, the agent verifies and
// acknowledges the command, and the incident is contained with a time to
// contain; on a safety-critical camera the isolation waits for approval
// (`vigil ctl actions approve`), on another it is denied; the audit trail
// verifies, and an edited row is caught by `vigil audit verify`.
func TestAutomaticContainment(t *testing.T) {
	a := startTestApp(t)
	conn := []string{"--server", a.URL(), "--token", a.AdminToken(), "--ca", filepath.Join(a.Config().DataDir, "pki", "ca.crt")}
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()

	if names := playbookNames(t, a); !slices.Equal(names, []string{"isolate-attacked-camera"}) {
		t.Fatalf("built-in playbooks without an MQTT broker: %v", names)
	}
	cam, err := localagent.Start(ctx, a, a.CAFile(), "camera", "lobby", t.TempDir(), []string{"isolate", "restore"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Stop()
	camClient, err := localagent.EnrolledClient(a, cam.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer camClient.Close()

	// 1. Automatic: alert → playbook → isolate sent → acknowledged → contained.
	bruteForceReport(t, camClient, cam.DeviceID, 1)
	var iso respond.ActionView
	waitFor(t, "isolation of "+cam.DeviceID+" succeeded", func() (bool, string) {
		acts := actionsOf(t, conn, cam.DeviceID)
		for _, x := range acts {
			if x.Type == "isolate" && x.State == vigil.ActionSucceeded {
				iso = x
				return true, ""
			}
		}
		return false, states(acts)
	})
	if got := cam.Exec.Actions(); len(got) == 0 || got[0] != "isolate" {
		t.Fatalf("the agent ran %v, want isolate", got)
	}
	if iso.Playbook != "isolate-attacked-camera" || iso.IncidentID == "" || !strings.Contains(iso.Result, "recorded isolate") {
		t.Fatalf("isolate action: %+v", iso)
	}
	var inc vigil.Incident
	waitFor(t, "incident contained", func() (bool, string) {
		in, err := c.GetIncident(ctx, iso.IncidentID)
		inc = in.Incident
		return err == nil && inc.Status == vigil.IncidentContained && !inc.Contained.IsZero(), fmt.Sprintf("%+v %v", in, err)
	})
	if ttc := inc.TimeToContain(); ttc <= 0 {
		t.Fatalf("time to contain %s, want > 0 (%+v)", ttc, inc)
	}
	out, code := run(t, append([]string{"ctl", "incidents", "-o", "json"}, conn...)...)
	if code != 0 || !strings.Contains(out, `"time_to_contain"`) {
		t.Fatalf("ctl incidents shows no time_to_contain: exit %d\n%s", code, out)
	}
	mf, err := a.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var observed uint64
	for _, f := range mf {
		if f.GetName() == "vigil_time_to_contain_seconds" {
			for _, m := range f.GetMetric() {
				observed += m.GetHistogram().GetSampleCount()
			}
		}
	}
	if observed == 0 {
		t.Error("vigil_time_to_contain_seconds observed nothing")
	}

	// 1b. Closing the incident as a false positive restores the camera.
	if _, err := c.ResolveIncident(ctx, iso.IncidentID, vigil.IncidentFalsePositive); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "isolation rolled back", func() (bool, string) {
		acts := actionsOf(t, conn, cam.DeviceID)
		restored, isolated := false, false
		for _, x := range acts {
			restored = restored || (x.Type == "restore" && x.State == vigil.ActionSucceeded)
			isolated = isolated || (x.Type == "isolate" && x.State != vigil.ActionRolledBack)
		}
		return restored && !isolated, states(acts)
	})
	if got := cam.Exec.Actions(); !slices.Contains(got, "restore") {
		t.Fatalf("the agent ran %v, want a restore", got)
	}

	// 2. Approval: a safety-critical camera is never isolated automatically.
	crit, err := localagent.Start(ctx, a, a.CAFile(), "camera", "boiler", t.TempDir(), []string{"isolate", "restore"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer crit.Stop()
	tagDevice(t, a, crit.DeviceID, playbook.SafetyCriticalTag)
	critClient, err := localagent.EnrolledClient(a, crit.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer critClient.Close()
	bruteForceReport(t, critClient, crit.DeviceID, 2)
	var held respond.ActionView
	waitFor(t, "isolation of the safety-critical camera held", func() (bool, string) {
		acts := actionsOf(t, conn, crit.DeviceID)
		for _, x := range acts {
			if x.Type == "isolate" && x.State == vigil.ActionPendingApproval {
				held = x
				return true, ""
			}
		}
		return false, states(acts)
	})
	if held.Engine.Held == "" {
		t.Errorf("held action says not why: %+v", held)
	}
	if got := crit.Exec.Actions(); len(got) != 0 {
		t.Fatalf("the safety-critical camera's agent ran %v before approval", got)
	}
	if out, code := run(t, append([]string{"ctl", "actions", "--state", "pending_approval"}, conn...)...); code != 0 || !strings.Contains(out, held.ID) {
		t.Fatalf("ctl actions --state pending_approval: exit %d\n%s", code, out)
	}
	if out, code := run(t, append([]string{"ctl", "actions", "approve", held.ID}, conn...)...); code != 0 {
		t.Fatalf("ctl actions approve: exit %d\n%s", code, out)
	}
	waitFor(t, "approved isolation acknowledged", func() (bool, string) {
		x, err := c.GetAction(ctx, held.ID)
		return err == nil && x.State == vigil.ActionSucceeded, fmt.Sprintf("%s %s %v", x.State, x.Result, err)
	})
	if got := crit.Exec.Actions(); !slices.Equal(got, []string{"isolate"}) {
		t.Fatalf("after approval the agent ran %v", got)
	}
	// Approving again conflicts.
	if out, code := run(t, append([]string{"ctl", "actions", "approve", held.ID}, conn...)...); code == 0 {
		t.Fatalf("a second approval of a finished action succeeded:\n%s", out)
	}

	// 3. Deny: a safety-critical camera without an agent; the held isolation is denied.
	if err := a.Store().PutDevice(ctx, vigil.Device{ID: "cam-denied", Class: "camera", State: vigil.StateActive,
		Tags: []string{playbook.SafetyCriticalTag}, FirstSeen: time.Now(), LastSeen: time.Now()}); err != nil {
		t.Fatal(err)
	}
	bruteForce(t, c, "cam-denied", 3)
	var toDeny respond.ActionView
	waitFor(t, "isolation of cam-denied held", func() (bool, string) {
		acts := actionsOf(t, conn, "cam-denied")
		for _, x := range acts {
			if x.State == vigil.ActionPendingApproval {
				toDeny = x
				return true, ""
			}
		}
		return false, states(acts)
	})
	if out, code := run(t, append([]string{"ctl", "actions", "deny", toDeny.ID, "--reason", "maintenance window", "-o", "json"}, conn...)...); code != 0 || !strings.Contains(out, `"denied"`) {
		t.Fatalf("ctl actions deny: exit %d\n%s", code, out)
	}

	// 4. Audit: the trail verifies, and names an edited row.
	// The approved actions have been executed (sent) before the trail is read.
	waitFor(t, "approved actions executed", func() (bool, string) {
		acts, _, err := c.ListActions(ctx, store.ActionFilter{State: vigil.ActionApproved})
		return err == nil && len(acts) == 0, fmt.Sprint(len(acts), err)
	})
	out, code = run(t, "audit", "verify", "--data-dir", a.Config().DataDir)
	if code != 0 || !strings.Contains(out, "audit trail ok") {
		t.Fatalf("audit verify: exit %d\n%s", code, out)
	}
	recs, err := a.Store().ListAudit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range recs {
		kinds = append(kinds, r.Action)
	}
	for _, want := range []string{audit.PlaybookLoad, audit.ActionCreate, audit.ActionApprove, audit.ActionDeny, audit.ActionTransition} {
		if !slices.Contains(kinds, want) {
			t.Errorf("no %s record in the audit trail: %v", want, kinds)
		}
	}
	bad := recs[len(recs)/2].Seq
	db, err := sql.Open("sqlite", filepath.Join(a.Config().DataDir, "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "UPDATE audit SET actor = 'mallory' WHERE seq = ?", bad); err != nil {
		t.Fatal(err)
	}
	out, code = run(t, "audit", "verify", "--data-dir", a.Config().DataDir)
	if code != 1 || !strings.Contains(out, fmt.Sprintf("BROKEN at seq %d", bad)) {
		t.Fatalf("audit verify after editing seq %d: exit %d\n%s", bad, code, out)
	}
}

func playbookNames(t *testing.T, a *node.Node) []string {
	t.Helper()
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	pbs, err := c.ListPlaybooks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range pbs {
		out = append(out, p.Name)
	}
	return out
}

// tagDevice adds a tag to a stored device.
func tagDevice(t *testing.T, a *node.Node, id, tag string) {
	t.Helper()
	d, err := a.Store().GetDevice(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	d.Tags = append(d.Tags, tag)
	if err := a.Store().PutDevice(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}

func TestPlaybooksCheckAndList(t *testing.T) {
	if out, code := run(t, "playbooks", "check"); code != 0 || !strings.Contains(out, "problems=0") {
		t.Fatalf("check of the built-in playbooks: exit %d\n%s", code, out)
	}
	dir := t.TempDir()
	good := "name: notify-all\ntrigger: {min_severity: high}\nsteps:\n  - action: notify\n    connector: webhook\n    params: {text: hi}\n"
	os.WriteFile(filepath.Join(dir, "good.yaml"), []byte(good), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("name: bad\ntrigger: {min_severity: high}\nsteps:\n  - action: isolat\n"), 0o644)
	out, code := run(t, "playbooks", "check", dir)
	if code != 1 || !strings.Contains(out, "bad.yaml:4:") || !strings.Contains(out, "valid=1 problems=1") {
		t.Fatalf("check of a dir with a bad playbook: exit %d\n%s", code, out)
	}
	out, code = run(t, "playbooks", "list", dir, "-o", "json")
	if code != 1 || !strings.Contains(out, `"notify-all"`) {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	os.Remove(filepath.Join(dir, "bad.yaml"))
	if out, code = run(t, "playbooks", "list", dir); code != 0 || !strings.Contains(out, "notify:notify@webhook") {
		t.Fatalf("list of a good dir: exit %d\n%s", code, out)
	}
}

// TestDemoContains runs a short demo: the attacked camera, a real enrolled
// agent, is isolated automatically and the summary line says so; when
// Mosquitto with its dynamic-security plugin is installed, the bot's MQTT
// account is also quarantined on the demo's own broker.
func TestDemoContains(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 12 s demo; skipped with -short")
	}
	var out strings.Builder
	ok, err := runDemo(t.Context(), demoOptions{devices: 5, duration: 12 * time.Second, interval: time.Second, attackAt: 2 * time.Second, seed: 1}, &out)
	if err != nil || !ok {
		t.Fatalf("demo: detected=%v err=%v\n%s", ok, err, out.String())
	}
	var line string
	for l := range strings.Lines(out.String()) {
		if strings.HasPrefix(l, "demo: ") {
			line = strings.TrimSpace(l)
		}
	}
	kv := map[string]string{}
	for _, f := range strings.Fields(strings.TrimPrefix(line, "demo: ")) {
		k, v, _ := strings.Cut(f, "=")
		kv[k] = v
	}
	ttd, err1 := time.ParseDuration(kv["time_to_detect"])
	ttc, err2 := time.ParseDuration(kv["time_to_contain"])
	if kv["detected"] != "yes" || kv["contained"] != "yes" || err1 != nil || err2 != nil || ttc <= 0 || ttd <= 0 {
		t.Fatalf("summary line %q: want detected=yes contained=yes and positive durations\n%s", line, out.String())
	}
	if !strings.Contains(out.String(), `verified the signed "isolate" command`) {
		t.Errorf("the agent did not report the isolate command:\n%s", out.String())
	}
	checkDemoOutput(t, out.String())
	if !strings.Contains(out.String(), "detected from its agent's kernel counters: high SYN flood against a device") {
		t.Errorf("the SYN flood on the fourth device was not detected from its agent's counters:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "CLOSED   CVE-2014-0160") || !strings.Contains(out.String(), "PLAN     completed") {
		t.Errorf("the update demo did not close its finding:\n%s", out.String())
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err == nil && slices.ContainsFunc(dynsecPlugins, func(p string) bool { _, err := os.Stat(p); return err == nil }) {
		if !strings.Contains(out.String(), "disconnected by the broker") || !strings.Contains(out.String(), "CONTAINED quarantine_client") {
			t.Errorf("mosquitto with dynamic security is installed but the bot's account was not quarantined:\n%s", out.String())
		}
	} else {
		t.Log("mosquitto or its dynamic-security plugin is not installed: broker quarantine not exercised")
	}
}

// TestConfiguredPlaybooksAndWebhook starts a server from a config file
// with playbooks_dir and a response.webhook: a brute force runs the
// directory's playbook, whose notify step reaches the webhook.
func TestConfiguredPlaybooksAndWebhook(t *testing.T) {
	got := make(chan string, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r.Header.Get("X-Vigil-Signature") + " " + string(b)
	}))
	defer hook.Close()
	pbDir := t.TempDir()
	os.WriteFile(filepath.Join(pbDir, "tell.yaml"), []byte("name: tell-soc\ntrigger: {rules: [vigil-auth-bruteforce]}\n"+
		"steps:\n  - action: notify\n    connector: webhook\n    params: {text: 'brute force on {{.Alert.DeviceID}}'}\n"), 0o644)
	os.WriteFile(filepath.Join(pbDir, "opened.yaml"), []byte("name: tell-opened\ntrigger: {incident: [opened]}\n"+
		"steps:\n  - action: notify\n    connector: webhook\n    params: {text: 'incident opened: {{.Incident.Title}}'}\n"), 0o644)
	file := filepath.Join(t.TempDir(), "vigil.yaml")
	os.WriteFile(file, []byte(fmt.Sprintf("playbooks_dir: %s\noutbound:\n  allow: [127.0.0.1]\nresponse:\n  max_actions: 5\n  window: 1m\n  webhook:\n    url: %s\n    secret: s3cret\n", pbDir, hook.URL)), 0o600)
	cfg := node.DefaultConfig()
	if err := node.LoadConfig(file, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	a := runTestApp(t, cfg)
	recs, err := a.Store().ListAudit(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var configs int
	for _, r := range recs {
		if strings.Contains(r.Detail, "s3cret") {
			t.Errorf("a secret reached the audit trail: %+v", r)
		}
		if r.Action == audit.ConfigChange && strings.Contains(r.Detail, `"response"`) {
			configs++
		}
	}
	if configs != 1 {
		t.Errorf("%d config.change records naming response, want 1: %+v", configs, recs)
	}
	if names := playbookNames(t, a); !slices.Equal(names, []string{"tell-opened", "tell-soc"}) {
		t.Fatalf("playbooks from playbooks_dir: %v", names)
	}
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bruteForce(t, c, "hook-dev", 4)
	var bodies []string
	for len(bodies) < 2 {
		select {
		case body := <-got:
			if !strings.HasPrefix(body, "sha256=") {
				t.Fatalf("unsigned webhook call %q", body)
			}
			bodies = append(bodies, body)
		case <-time.After(30 * time.Second):
			t.Fatalf("the webhook got %d calls, want 2: %q", len(bodies), bodies)
		}
	}
	all := strings.Join(bodies, "\n")
	if !strings.Contains(all, "brute force on hook-dev") || !strings.Contains(all, "incident opened: ") {
		t.Fatalf("webhook got %q", bodies)
	}
}
