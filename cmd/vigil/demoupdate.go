package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	vagent "github.com/vigil-iot/vigil/agent"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/node"
	"github.com/vigil-iot/vigil/pki"
	"github.com/vigil-iot/vigil/remediate"
	"github.com/vigil-iot/vigil/vuln/scan"
)

// demoOSV and demoKEV are the advisory (Debian's Heartbleed fix) and the
// KEV entry the update demo imports.
const (
	demoOSV = `{"schema_version": "1.6.0", "id": "DSA-2896-1", "modified": "2024-01-01T00:00:00Z", "published": "2014-04-07T00:00:00Z",
  "summary": "openssl - security update (Heartbleed)", "aliases": ["CVE-2014-0160"],
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
  "affected": [{"package": {"ecosystem": "Debian:7", "name": "openssl", "purl": "pkg:deb/debian/openssl?arch=source"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0.1e-2+deb7u5"}]}]}]}`
	demoKEV = `{"catalogVersion": "demo", "vulnerabilities": [{"cveID": "CVE-2014-0160", "dateAdded": "2022-05-04", "dueDate": "2022-05-25"}]}`
	// demoUpdateScript installs an "artifact" (a version string) by
	// writing it into the device's dpkg status file, which the agent's
	// package collector reads.
	demoUpdateScript = `#!/bin/sh
set -e
status="$(dirname "$0")/root/var/lib/dpkg/status"
case "$1" in
install|rollback)
	[ -n "$2" ] || exit 3
	printf 'Package: openssl\nStatus: install ok installed\nVersion: %s\nArchitecture: armhf\n\n' "$(cat "$2")" > "$status"
	echo "openssl $(cat "$2") installed" ;;
*) exit 2 ;;
esac
`
)

// demoProc makes dir the demo camera's /proc: the machine's, but for a CPU
// and memory of the camera's own (an idle CPU, memory at 40 %), so that
// the machine's load is not taken for the camera misbehaving after its
// update.
func demoProc(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	es, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, e := range es {
		if n := e.Name(); n != "stat" && n != "meminfo" && (n[0] < '0' || n[0] > '9') {
			os.Symlink("/proc/"+n, filepath.Join(dir, n))
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte("cpu  100 0 100 100000 0 0 0 0 0 0\n"), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "meminfo"), []byte("MemTotal: 1000000 kB\nMemAvailable: 600000 kB\n"), 0o644)
}

// updateDemo shows a vulnerable device fixed by an update plan: a real
// in-process agent (its package, system and health collectors reading a
// small root with a vulnerable openssl, the script installer) reports a
// KEV finding; an artifact with the fixed version makes a plan, which
// the demo approves as the admin; the agent downloads the artifact over
// mutual TLS, verifies it with the update key, installs it and reports
// the new version, and the finding closes. It prints what happens and
// reports whether the finding closed within max.
func (d *demoRun) updateDemo(ctx context.Context, a *node.Node, dir string, log *slog.Logger, max time.Duration) bool {
	d.mu.Lock()
	fmt.Fprintf(d.out, "\nRemediation: a camera with a vulnerable openssl, fixed by an update plan\n")
	d.mu.Unlock()
	fail := func(format string, args ...any) bool {
		d.printf("UPDATE   (not shown: "+format+")\n", args...)
		return false
	}
	for _, src := range []struct{ name, body string }{{"demo-osv", demoOSV}, {"demo-kev", demoKEV}} {
		if _, err := a.Vuln().ImportReader(strings.NewReader(src.body), src.name, scan.ImportOptions{Name: src.name}); err != nil {
			return fail("cannot import %s: %v", src.name, err)
		}
	}
	token, _, err := a.CreateEnrollToken("camera", 10*time.Minute)
	if err != nil {
		return fail("%v", err)
	}
	base := filepath.Join(dir, "update-demo")
	state := filepath.Join(base, "state")
	id, err := vagent.Enroll(ctx, vagent.EnrollOptions{Server: a.URL(), Token: token, StateDir: state,
		CAFile: filepath.Join(a.Config().DataDir, "pki", pki.CACertFile), Hostname: "nvr"})
	if err != nil {
		return fail("cannot enroll: %v", err)
	}
	root := filepath.Join(base, "root")
	for _, f := range []struct{ path, body string }{
		{"var/lib/dpkg/status", "Package: openssl\nStatus: install ok installed\nVersion: 1.0.1e-2+deb7u4\nArchitecture: armhf\n\n"},
		{"etc/os-release", "NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"7\"\nVERSION=\"7 (wheezy)\"\n"},
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(root, f.path)), 0o755)
		if err := os.WriteFile(filepath.Join(root, f.path), []byte(f.body), 0o644); err != nil {
			return fail("%v", err)
		}
	}
	if err := demoProc(filepath.Join(root, "proc")); err != nil {
		return fail("%v", err)
	}
	os.Symlink("/sys", filepath.Join(root, "sys"))
	script := filepath.Join(base, "update.sh")
	policy := filepath.Join(base, "policy.json")
	os.WriteFile(script, []byte(demoUpdateScript), 0o755)
	os.WriteFile(policy, []byte(`{"allow": ["update", "rollback"]}`), 0o600)
	ag, err := vagent.New(vagent.Config{StateDir: state, Format: "json", Class: "camera", Vendor: "Acme", Model: "NVR-7", Root: root,
		Interval: vagent.Duration(time.Second), Disable: []string{"processes", "authlog", "fim", "network"},
		Commands: true, PolicyFile: policy, PollWait: vagent.Duration(2 * time.Second),
		// No update_key: the update key came with the enrollment.
		Update: &command.InstallConfig{Installer: command.InstallerScript, Script: script}},
		vagent.Options{Logger: log})
	if err != nil {
		return fail("cannot start the agent: %v", err)
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); ag.Run(actx) }()
	defer func() { cancel(); <-done; ag.Close() }()

	deadline := time.Now().Add(max)
	wait := func(ok func() bool) bool {
		for !ok() {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return false
			}
			time.Sleep(200 * time.Millisecond)
		}
		return true
	}
	if !wait(func() bool { return len(a.Vuln().Findings(scan.Filter{DeviceID: id.DeviceID, KEVOnly: true})) > 0 }) {
		return fail("no finding on %s", id.DeviceID)
	}
	f := a.Vuln().Findings(scan.Filter{DeviceID: id.DeviceID, KEVOnly: true})[0]
	d.printf("VULN     %s: %s %s is %s (known exploited); fixed in %s\n", id.DeviceID, f.Component, f.ComponentVersion, f.Vuln, f.FixedVersion)
	art, err := d.admin.AddArtifact(ctx, client.ArtifactMeta{Product: "openssl", Version: "1.0.1e-2+deb7u5", Classes: []string{"camera"}, Name: "openssl.ver"},
		[]byte("1.0.1e-2+deb7u5"))
	if err != nil {
		return fail("cannot add the artifact: %v", err)
	}
	d.printf("ARTIFACT openssl 1.0.1e-2+deb7u5 added, signed with the update key (sha256 %s…)\n", art.SHA256[:12])
	var plan remediate.PlanView
	if !wait(func() bool {
		ps, err := d.admin.ListUpdatePlans(ctx, "")
		for _, p := range ps {
			if p.ArtifactID == art.ID {
				plan = p
			}
		}
		return err == nil && plan.ID != ""
	}) {
		return fail("no plan")
	}
	d.printf("PLAN     %s for cohort %s: %d device(s) in %d wave(s), %s\n", plan.ID[len(plan.ID)-8:], plan.Cohort, targets(plan), len(plan.Waves), plan.Reason)
	if plan.State == vigil.PlanProposed {
		if plan, err = d.admin.ApproveUpdatePlan(ctx, plan.ID); err != nil {
			return fail("cannot approve: %v", err)
		}
		d.printf("PLAN     approved by the admin\n")
	}
	if !wait(func() bool {
		plan, err = d.admin.GetUpdatePlan(ctx, plan.ID)
		return err == nil && (plan.State == vigil.PlanCompleted || plan.State == vigil.PlanHalted) && (plan.Closed > 0 || plan.State == vigil.PlanHalted)
	}) {
		return fail("the plan did not finish: %s", plan.State)
	}
	for _, w := range plan.Waves {
		for _, t := range w.Targets {
			d.printf("UPDATE   %s: %s (%s)\n", t.DeviceID, t.State, t.Detail)
		}
	}
	for _, pf := range plan.Findings {
		if !pf.Closed.IsZero() {
			d.printf("CLOSED   %s on %s: the device reports the fixed version; time to remediate %s\n", pf.Vuln, pf.DeviceID, pf.TimeToRemediate().Round(time.Millisecond))
		}
	}
	d.printf("PLAN     %s\n", plan.State)
	return plan.State == vigil.PlanCompleted && plan.Closed > 0
}
