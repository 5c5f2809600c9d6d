package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/node"
	"github.com/vigil-iot/vigil/remediate"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/vuln/report"
	"github.com/vigil-iot/vigil/vuln/scan"
)

// e2eUpdateScript is the device owner's installer script of the test
// devices: the artifact holds the openssl version; install keeps a copy
// of the dpkg status file, then writes the new version into it (which the
// agent's package collector reads), and fails when a file "fail" is next
// to it (after writing: the rollback must undo it); rollback brings the
// copy back.
const e2eUpdateScript = `#!/bin/sh
set -e
dir="$(dirname "$0")"
status="$dir/root/var/lib/dpkg/status"
case "$1" in
install)
	cp "$status" "$dir/status.before"
	printf 'Package: openssl\nStatus: install ok installed\nVersion: %s\nArchitecture: armhf\n\n' "$(cat "$2")" > "$status"
	if [ -e "$dir/fail" ]; then echo "post-install check failed" >&2; exit 1; fi
	echo "openssl $(cat "$2") installed" ;;
rollback)
	if [ -n "$2" ]; then
		printf 'Package: openssl\nStatus: install ok installed\nVersion: %s\nArchitecture: armhf\n\n' "$(cat "$2")" > "$status"
	else
		cp "$dir/status.before" "$status"
	fi
	echo "restored" ;;
*) exit 2 ;;
esac
`

// burn makes the CPU of a demoProc busy (only user time grows) from when
// ready reports true until ctx ends.
func burn(ctx context.Context, dir string, ready func() bool) {
	user := uint64(100)
	for ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		if !ready() {
			continue
		}
		user += 1000
		tmp := filepath.Join(dir, ".stat.tmp")
		os.WriteFile(tmp, fmt.Appendf(nil, "cpu  %d 0 100 100000 0 0 0 0 0 0\n", user), 0o644)
		os.Rename(tmp, filepath.Join(dir, "stat"))
	}
}

const vulnerableStatus = "Package: openssl\nStatus: install ok installed\nVersion: 1.0.1e-2+deb7u4\nArchitecture: armhf\n\n"

// TestUpdatePlanEndToEnd: four real agents (vigil-agent processes) of one
// cohort run a vulnerable openssl; Heartbleed is a KEV finding on each; an
// artifact with the fixed version makes the server propose a plan of two
// waves, which the policy (KEV) runs at once. The canary updates; in the
// second wave one device's install fails: the agent rolls it back; another
// installs but then runs its CPU at 100 %: the sustained-CPU rule alerts,
// the server rolls it back as misbehaving; the plan halts with an alert;
// the other devices report the fixed version and their findings close
// with a time to remediate.
func TestUpdatePlanEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent binary; skipped with -short")
	}
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.SigmaDirs = []string{t.TempDir()}
	// Each device is watched 30 s after its install (a quarter of the
	// wave timeout) before it passes. The devices read a /proc/stat of
	// their own (not the busy machine's), so their CPU is the test's.
	cfg.Update = node.UpdateConfig{Auto: &[]node.AutoCondition{{KEV: true}}, Tick: node.Duration(300 * time.Millisecond), WaveTimeout: node.Duration(2 * time.Minute)}
	a := runTestApp(t, cfg)
	ctx := t.Context()

	osv, err := os.ReadFile("../../vuln/scan/testdata/osv-dsa-2896-1.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Vuln().ImportReader(bytes.NewReader(osv), "osv", scan.ImportOptions{Name: "dsa"}); err != nil {
		t.Fatal(err)
	}
	kev := `{"catalogVersion": "1", "vulnerabilities": [{"cveID": "CVE-2014-0160", "dateAdded": "2022-05-04", "dueDate": "2022-05-25"}]}`
	if _, err := a.Vuln().ImportReader(strings.NewReader(kev), "kev", scan.ImportOptions{Name: "kev"}); err != nil {
		t.Fatal(err)
	}

	bin := filepath.Join(t.TempDir(), "vigil-agent")
	if out, err := exec.Command("go", "build", "-o", bin, "../vigil-agent").CombinedOutput(); err != nil {
		t.Fatalf("cannot build vigil-agent: %v\n%s", err, out)
	}
	ca := filepath.Join(a.Config().DataDir, "pki", "ca.crt")
	updKey := base64.StdEncoding.EncodeToString(a.UpdatePublicKey())
	type dev struct{ id, dir string }
	var devs []dev
	for range 4 {
		out, code := run(t, "ctl", "enroll-token", "create", "--class", "camera", "--ttl", "10m", "--data-dir", a.Config().DataDir)
		if code != 0 {
			t.Fatalf("enroll-token create: %d %s", code, out)
		}
		dir := t.TempDir()
		state := filepath.Join(dir, "state")
		if out, err := exec.Command(bin, "enroll", "--server", a.URL(), "--token", strings.TrimSpace(out), "--state", state, "--ca", ca).CombinedOutput(); err != nil {
			t.Fatalf("enroll: %v\n%s", err, out)
		}
		id, err := agent.LoadIdentity(state)
		if err != nil {
			t.Fatal(err)
		}
		// The update key comes with the enrollment, not the command key.
		if !id.UpdateKey().Equal(a.UpdatePublicKey()) || id.UpdateKey().Equal(id.CommandKey) {
			t.Fatalf("update key from enrollment %x", id.UpdateKey())
		}
		devs = append(devs, dev{id.DeviceID, dir})
	}
	slices.SortFunc(devs, func(x, y dev) int { return strings.Compare(x.id, y.id) })
	// The plan's waves take devices in id order: the canary is devs[0];
	// devs[2]'s install fails; devs[3] misbehaves after its update.
	failing, misbehaving := devs[2].id, devs[3].id
	os.WriteFile(filepath.Join(devs[2].dir, "fail"), nil, 0o600)
	for i, d := range devs {
		root := filepath.Join(d.dir, "root")
		os.MkdirAll(filepath.Join(root, "var/lib/dpkg"), 0o755)
		os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), []byte(vulnerableStatus), 0o644)
		os.MkdirAll(filepath.Join(root, "etc"), 0o755)
		os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"7\"\nVERSION=\"7 (wheezy)\"\n"), 0o644)
		// A /proc of the device's own for its CPU and memory (demoupdate.go).
		if err := demoProc(filepath.Join(root, "proc")); err != nil {
			t.Fatal(err)
		}
		os.Symlink("/sys", filepath.Join(root, "sys"))
		script := filepath.Join(d.dir, "update.sh")
		os.WriteFile(script, []byte(e2eUpdateScript), 0o755)
		policy := filepath.Join(d.dir, "policy.json")
		os.WriteFile(policy, []byte(`{"allow": ["update", "rollback"]}`), 0o600)
		acfg := map[string]any{"server": a.URL(), "state_dir": filepath.Join(d.dir, "state"), "interval": "1s", "poll_wait": "2s",
			"commands": true, "policy_file": policy, "update": map[string]any{"installer": "script", "script": script},
			"class": "camera", "vendor": "Acme", "model": "IPC-2000", "root": root, "disable": []string{"processes", "authlog", "fim"}}
		if i == 0 {
			// The canary also pins the key (`vigil update key`): equal to
			// the one from enrollment, its updates run.
			acfg["update_key"] = updKey
		}
		b, _ := json.Marshal(acfg)
		cfgFile := filepath.Join(d.dir, "agent.json")
		os.WriteFile(cfgFile, b, 0o600)
		cmd := exec.CommandContext(ctx, bin, "run", "--config", cfgFile)
		logf, _ := os.Create(filepath.Join(d.dir, "agent.log"))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	}
	// devs[3] runs its CPU at 100 % once it runs the fixed version.
	go burn(ctx, filepath.Join(devs[3].dir, "root", "proc"), func() bool {
		st, _ := os.ReadFile(filepath.Join(devs[3].dir, "root/var/lib/dpkg/status"))
		return strings.Contains(string(st), "1.0.1e-2+deb7u5")
	})
	logs := func() string {
		var b strings.Builder
		for _, d := range devs {
			l, _ := os.ReadFile(filepath.Join(d.dir, "agent.log"))
			b.WriteString("--- " + d.id + "\n" + string(l))
		}
		return b.String()
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for !ok() {
			if time.Now().After(deadline) {
				for _, d := range a.Vuln().Devices() {
					t.Logf("vuln device %s %s %s %+v", d.ID, d.OS, d.Class, d.Software)
				}
				t.Fatalf("timed out waiting for %s\nagent logs:\n%s", what, logs())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitFor("four KEV findings", func() bool {
		n := 0
		for _, f := range a.Vuln().Findings(scan.Filter{KEVOnly: true}) {
			if f.Vuln == "CVE-2014-0160" && f.FixedVersion == "1.0.1e-2+deb7u5" {
				n++
			}
		}
		return n == 4
	})

	waitFor("four devices with their software in the store", func() bool {
		for _, d := range devs {
			sd, err := a.Store().GetDevice(ctx, d.id)
			if err != nil || len(sd.Software) == 0 {
				return false
			}
		}
		return true
	})
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	art, err := c.AddArtifact(ctx, client.ArtifactMeta{Product: "openssl", Version: "1.0.1e-2+deb7u5", Classes: []string{"camera"}, Name: "openssl.ver"},
		[]byte("1.0.1e-2+deb7u5"))
	if err != nil {
		t.Fatal(err)
	}

	// Delivery: a device fetches the artifact over mutual TLS with its own
	// certificate; an artifact for another class is refused to it, and a
	// request without a certificate does not reach the device route.
	gw, err := c.AddArtifact(ctx, client.ArtifactMeta{Product: "gwfw", Version: "9.9", Classes: []string{"gateway"}, Name: "gw.bin"}, []byte("gateway firmware"))
	if err != nil {
		t.Fatal(err)
	}
	id0, err := agent.LoadIdentity(filepath.Join(devs[0].dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	devClient := &http.Client{Transport: &http.Transport{TLSClientConfig: id0.TLSConfig()}, Timeout: time.Minute}
	get := func(hc *http.Client, id string) (int, string) {
		resp, err := hc.Get(a.URL() + remediate.PathAgentArtifact + id)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(devClient, art.ID); code != 200 || body != "1.0.1e-2+deb7u5" {
		t.Errorf("device download of its artifact: %d %q", code, body)
	}
	if code, _ := get(devClient, gw.ID); code != http.StatusForbidden {
		t.Errorf("device download of a gateway artifact: %d, want 403", code)
	}
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.CAPool()}}, Timeout: time.Minute}
	if code, body := get(noCert, art.ID); code == 200 {
		t.Errorf("download without a client certificate: %d %q", code, body)
	}

	var plan remediate.PlanView
	waitFor("the plan to halt", func() bool {
		ps, err := c.ListUpdatePlans(ctx, "")
		if err != nil || len(ps) == 0 {
			return false
		}
		plan = ps[0]
		return plan.State == vigil.PlanHalted || plan.State == vigil.PlanCompleted
	})
	if plan.ArtifactID != art.ID || plan.Cohort != "camera/IPC-2000" || !plan.Auto || len(plan.Waves) != 2 ||
		len(plan.Waves[0].Targets) != 1 || len(plan.Waves[1].Targets) != 3 || plan.Waves[0].Targets[0].DeviceID != devs[0].id {
		t.Fatalf("plan %+v", plan)
	}
	if plan.State != vigil.PlanHalted || !plan.Waves[1].Failed || plan.Waves[0].Failed {
		t.Fatalf("plan state %s, waves %+v\n%s", plan.State, plan.Waves, logs())
	}
	for _, w := range plan.Waves {
		for _, tg := range w.Targets {
			want := vigil.TargetUpdated
			if tg.DeviceID == failing || tg.DeviceID == misbehaving {
				want = vigil.TargetRolledBack
			}
			if tg.State != want || tg.Previous != "1.0.1e-2+deb7u4" {
				t.Errorf("device %s: %+v, want %s from 1.0.1e-2+deb7u4", tg.DeviceID, tg, want)
			}
			// Rolled back for what it did after its update, not for a
			// failed install nor a timeout.
			if tg.DeviceID == misbehaving && (!strings.Contains(tg.Detail, "misbehaves after the update") ||
				!strings.Contains(tg.Detail, "vigil-health-cpu-sustained")) {
				t.Errorf("misbehaving device %s: %+v", tg.DeviceID, tg)
			}
		}
	}
	// The failed devices run the version before again (the agent's
	// rollback), the others the fixed one, as their collectors report it.
	for _, d := range devs {
		st, _ := os.ReadFile(filepath.Join(d.dir, "root/var/lib/dpkg/status"))
		want := "Version: 1.0.1e-2+deb7u5"
		if d.id == failing || d.id == misbehaving {
			want = "Version: 1.0.1e-2+deb7u4"
		}
		if !strings.Contains(string(st), want) {
			t.Errorf("device %s status file:\n%s", d.id, st)
		}
	}
	// Findings close when the devices report the fixed version (the
	// misbehaving device's opens again when it reports the version
	// before).
	waitFor("two findings closed", func() bool {
		p, err := c.GetUpdatePlan(ctx, plan.ID)
		plan = p
		return err == nil && p.Closed == 2 && p.Open == 2
	})
	for _, f := range plan.Findings {
		if closed := !f.Closed.IsZero(); closed == (f.DeviceID == failing || f.DeviceID == misbehaving) {
			t.Errorf("finding %+v: closed %v", f, closed)
		}
		if !f.Closed.IsZero() && f.TimeToRemediate() <= 0 {
			t.Errorf("finding %s: time to remediate %s", f.FindingID, f.TimeToRemediate())
		}
	}
	waitFor("the scanner to drop the fixed findings", func() bool {
		fs := a.Vuln().Findings(scan.Filter{KEVOnly: true})
		return len(fs) == 2 && (fs[0].DeviceID == failing || fs[0].DeviceID == misbehaving) && (fs[1].DeviceID == failing || fs[1].DeviceID == misbehaving)
	})
	// The halt raised an alert naming the failed device.
	waitFor("the halt alert", func() bool {
		as, _, err := a.Store().ListAlerts(ctx, store.AlertFilter{DeviceID: failing})
		if err != nil {
			return false
		}
		for _, al := range as {
			if al.RuleID == "update-plan-halted" {
				return true
			}
		}
		return false
	})
	// The posture report shows the time to remediate of the cohort.
	rep, err := report.Posture(ctx, a.Store(), a.Vuln(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rm := rep.Remediation; rm.Halted != 1 || rm.Closed != 2 || rm.Open != 2 || len(rm.ByCohort) != 1 || rm.ByCohort[0].Cohort != "camera/IPC-2000" ||
		rm.ByCohort[0].MeanTTR.Seconds <= 0 || len(rm.Fixed) != 2 {
		t.Errorf("posture remediation %+v", rm)
	}
	// The CLI shows the plan with its findings and times to remediate.
	out, code := run(t, "update", "plan", "show", plan.ID, "--server", a.URL(), "--token", a.AdminToken(), "--ca", ca)
	if code != 0 || !strings.Contains(out, "halted") || !strings.Contains(out, "rolled_back") || !strings.Contains(out, "CVE-2014-0160") {
		t.Fatalf("vigil update plan show: %d\n%s", code, out)
	}
	if _, code := run(t, "update", "plan", "approve", plan.ID, "--server", a.URL(), "--token", a.AdminToken(), "--ca", ca); code == 0 {
		t.Error("a halted plan was approved")
	}
}
