package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/node"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web"
)

// TestCtlExceptions: against a running server, an exception made with
// `vigil ctl exceptions add` keeps its rule from alerting on its device
// (and only there), `list` shows what it suppressed, resolving an
// incident as a false positive proposes exceptions with the command that
// accepts them, and `remove` deletes it; creation and removal are
// audited.
func TestCtlExceptions(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.SigmaDirs = []string{t.TempDir()}
	const ruleID = "66666666-6666-4666-8666-666666666666"
	rule := "title: TFTP fetch\nid: " + ruleID + "\n" +
		"logsource: {product: linux, category: process_creation}\n" +
		"detection:\n  sel: {CommandLine|contains: tftp}\n  condition: sel\nlevel: high\n"
	if err := os.WriteFile(filepath.Join(cfg.SigmaDirs[0], "tftp.yml"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	a := runTestApp(t, cfg)
	conn := []string{"--server", a.URL(), "--token", a.AdminToken(), "--ca", filepath.Join(a.Config().DataDir, "pki", "ca.crt")}
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	out, code := run(t, append([]string{"ctl", "exceptions", "add", "--rule", ruleID, "--device", "exc-cam-1",
		"--expires", "7d", "--reason", "firmware updater uses tftp"}, conn...)...)
	if code != 0 || !strings.Contains(out, "device exc-cam-1") {
		t.Fatalf("exceptions add: exit %d:\n%s", code, out)
	}
	out, code = run(t, append([]string{"ctl", "exceptions", "add", "--rule", ruleID, "--expires", "7d", "--reason", "x"}, conn...)...)
	if code == 0 || !strings.Contains(out, "needs a scope") {
		t.Fatalf("exceptions add without a scope: exit %d:\n%s", code, out)
	}
	for _, dev := range []string{"exc-cam-1", "exc-cam-2"} {
		ev, _ := json.Marshal(map[string]any{
			"time": time.Now().UTC().Format(time.RFC3339Nano), "device_id": dev, "kind": "process",
			"fields": map[string]any{"process.command_line": "tftp -g -r fw.bin 10.0.0.9"},
		})
		if res, err := c.PostEvents(t.Context(), append(ev, '\n')); err != nil || res.Accepted != 1 {
			t.Fatalf("post: %+v %v", res, err)
		}
	}
	// The alert stage takes alerts in order: once cam-2's is stored,
	// cam-1's was handled.
	var incidentID string
	for deadline := time.Now().Add(20 * time.Second); incidentID == ""; time.Sleep(100 * time.Millisecond) {
		as, _, err := c.ListAlerts(t.Context(), store.AlertFilter{RuleID: ruleID})
		if err != nil {
			t.Fatal(err)
		}
		for _, al := range as {
			if al.DeviceID == "exc-cam-1" {
				t.Fatalf("an alert on the excepted device: %+v", al)
			}
			incidentID = al.IncidentID
		}
		if time.Now().After(deadline) {
			t.Fatal("no alert on exc-cam-2")
		}
	}
	var list []web.ExceptionView
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, code = run(t, append([]string{"ctl", "exceptions", "-o", "json"}, conn...)...)
		if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 {
			t.Fatalf("exceptions -o json: exit %d:\n%s", code, out)
		}
		if list[0].Suppressed == 1 || time.Now().After(deadline) {
			break
		}
	}
	if list[0].Suppressed != 1 || !strings.Contains(list[0].LastAlert, "exc-cam-1") || !strings.HasPrefix(list[0].Author, "token:") {
		t.Fatalf("exception after one excepted alert: %+v", list[0])
	}
	out, _ = run(t, append([]string{"ctl", "exceptions"}, conn...)...)
	if !strings.Contains(out, "SUPPRESSED") || !strings.Contains(out, "firmware updater uses tftp") {
		t.Errorf("exceptions table:\n%s", out)
	}
	// The queues show the priority; an incident explains it.
	out, code = run(t, append([]string{"ctl", "incidents", "--status", "open"}, conn...)...)
	if code != 0 || !strings.Contains(out, "PRIORITY") || !strings.Contains(out, incidentID) {
		t.Fatalf("incidents --status open: exit %d:\n%s", code, out)
	}
	out, code = run(t, append([]string{"ctl", "alerts", "--sort", "priority"}, conn...)...)
	if code != 0 || !strings.Contains(out, "PRIORITY") {
		t.Fatalf("alerts --sort priority: exit %d:\n%s", code, out)
	}
	out, code = run(t, append([]string{"ctl", "incidents", incidentID}, conn...)...)
	for _, want := range []string{"priority.severity", "+45  high", "priority.confidence", "priority.blast_radius"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("incidents %s lacks %q: exit %d:\n%s", incidentID, want, code, out)
		}
	}
	t.Logf("incident:\n%s", out)
	out, code = run(t, append([]string{"ctl", "incidents", "resolve", incidentID, "--as", "false_positive"}, conn...)...)
	if code != 0 || !strings.Contains(out, "suggested exception") ||
		!strings.Contains(out, "vigil ctl exceptions add --rule "+ruleID+" --device exc-cam-2") {
		t.Fatalf("incidents resolve --as false_positive: exit %d:\n%s", code, out)
	}
	t.Logf("resolve as false positive:\n%s", out)
	// Accepting the first suggestion creates it.
	out, code = run(t, append([]string{"ctl", "exceptions", "suggest", incidentID, "--accept", "1"}, conn...)...)
	if code != 0 || !strings.Contains(out, "device exc-cam-2") || !strings.Contains(out, "false positive: incident "+incidentID) {
		t.Fatalf("exceptions suggest --accept 1: exit %d:\n%s", code, out)
	}
	if out, code = run(t, append([]string{"ctl", "exceptions", "suggest", incidentID, "--accept", "9"}, conn...)...); code == 0 {
		t.Fatalf("exceptions suggest --accept 9: exit 0:\n%s", out)
	}
	out, code = run(t, append([]string{"ctl", "exceptions", "remove", list[0].ID}, conn...)...)
	if code != 0 {
		t.Fatalf("exceptions remove: exit %d:\n%s", code, out)
	}
	recs, err := a.Store().ListAudit(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range recs {
		if strings.HasPrefix(r.Action, "exception.") {
			actions = append(actions, r.Action+" "+r.Outcome)
		}
	}
	if got := strings.Join(actions, ","); got != "exception.create ok,exception.create refused,exception.create ok,exception.delete ok" {
		t.Errorf("audited: %s", got)
	}
}
