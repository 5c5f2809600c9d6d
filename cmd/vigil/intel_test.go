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
)

// corpusDir is the shared corpus of real feed files, when present.
func corpusDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "corpus", "intel")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("the shared corpus (%s) is absent: %v", dir, err)
	}
	return dir
}

// TestIntelAndVulnThroughTheServer (reads ../shared/corpus) imports the
// real ThreatFox list and CISA KEV catalog through the CLI, sends an event
// to a listed address through the ingest API, and expects an intel alert
// naming the feed; the posture report renders in every format.
func TestIntelAndVulnThroughTheServer(t *testing.T) {
	dir := corpusDir(t)
	a := startTestApp(t)
	conn := []string{"--server", a.URL(), "--token", a.AdminToken(), "--ca", filepath.Join(a.Config().DataDir, "pki", "ca.crt")}

	out, code := run(t, append([]string{"intel", "import", "--name", "threatfox", "--confidence", "80", filepath.Join(dir, "threatfox-ips.txt")}, conn...)...)
	if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), "intel: imported=19863 rejected=0") {
		t.Fatalf("intel import: exit %d: %s", code, out)
	}
	if out, code = run(t, append([]string{"intel", "list", "-o", "json"}, conn...)...); code != 0 || !strings.Contains(out, `"threatfox"`) {
		t.Fatalf("intel list: exit %d: %s", code, out)
	}
	if out, code = run(t, append([]string{"vuln", "import", "--name", "kev", filepath.Join(dir, "kev.json")}, conn...)...); code != 0 || !strings.HasSuffix(strings.TrimSpace(out), "vuln: imported=1404 rejected=0") {
		t.Fatalf("vuln import: exit %d: %s", code, out)
	}

	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := json.Marshal(map[string]any{
		"time": time.Now().UTC().Format(time.RFC3339Nano), "device_id": "intel-cam-1", "kind": "network", "action": "connect",
		"network": map[string]any{"transport": "tcp", "src_ip": "10.0.0.9", "dst_ip": "1.12.42.37", "dst_port": 443},
	})
	if _, err := c.PostEvents(t.Context(), append(ev, '\n')); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		as, _, err := a.Store().ListAlerts(t.Context(), store.AlertFilter{DeviceID: "intel-cam-1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(as) > 0 {
			if !strings.Contains(as[0].RuleID, "threatfox") {
				t.Errorf("intel alert %q does not name the feed", as[0].RuleID)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no alert for a connection to a ThreatFox address")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, f := range []string{"html", "csv", "json"} {
		out, code := run(t, append([]string{"report", "posture", "--format", f}, conn...)...)
		if code != 0 || len(out) < 20 {
			t.Errorf("report posture --format %s: exit %d: %.200s", f, code, out)
		}
	}
	if out, code := run(t, append([]string{"ctl", "findings", "-o", "json"}, conn...)...); code != 0 || !json.Valid([]byte(out)) {
		t.Errorf("ctl findings -o json: exit %d: %.200s", code, out)
	}
	if out, code := run(t, append([]string{"intel", "remove", "threatfox"}, conn...)...); code != 0 {
		t.Errorf("intel remove: exit %d: %s", code, out)
	}
}

// TestIntelAndVulnImportOffline (reads ../shared/corpus) imports into a
// data dir with no server running; a server started on it has the feed.
func TestIntelAndVulnImportOffline(t *testing.T) {
	dir := corpusDir(t)
	data := t.TempDir()
	out, code := run(t, "intel", "import", "--data", data, "--name", "misp", filepath.Join(dir, "misp-event-sednit.json"))
	if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), "rejected=0") || !strings.Contains(out, "intel: imported=") {
		t.Fatalf("offline intel import: exit %d: %s", code, out)
	}
	out, code = run(t, "vuln", "import", "--data", data, "--name", "nvd", filepath.Join(dir, "nvd-cve-2.0-page.json"))
	if code != 0 || !strings.Contains(out, "vuln: imported=38 rejected=0") {
		t.Fatalf("offline vuln import: exit %d: %s", code, out)
	}
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.Listen = data, "127.0.0.1:0"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := runTestApp(t, cfg)
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	if fs, err := c.ListIntel(t.Context()); err != nil || len(fs) != 1 || fs[0].Feed.Name != "misp" {
		t.Fatalf("the server does not see the feed imported offline: %+v", fs)
	}
	if ss := a.Vuln().Sources(); len(ss) != 1 || ss[0].Count != 38 {
		t.Fatalf("the server does not see the advisories imported offline: %+v", ss)
	}
}

// TestVulnerableAgentPackageRaisesAlert (reads ../shared/corpus): a device
// whose agent reports a vulnerable openssl through the real report API gets
// a KEV finding and an alert that names the remediation, end to end
// (ingest → bus → inventory event → vulnerability DB → alert stage).
func TestVulnerableAgentPackageRaisesAlert(t *testing.T) {
	dir := corpusDir(t)
	a := startTestApp(t)
	conn := []string{"--server", a.URL(), "--token", a.AdminToken(), "--ca", filepath.Join(a.Config().DataDir, "pki", "ca.crt")}
	for _, src := range []string{filepath.Join(dir, "kev.json"), filepath.Join("..", "..", "vuln", "scan", "testdata", "osv-dsa-2896-1.json")} {
		if out, code := run(t, append([]string{"vuln", "import", "--name", strings.TrimSuffix(filepath.Base(src), ".json"), src}, conn...)...); code != 0 {
			t.Fatalf("vuln import %s: exit %d: %s", src, code, out)
		}
	}
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	report := `{"version":"1","device_id":"nvr-7","time":"` + time.Now().UTC().Format(time.RFC3339Nano) + `","agent":{"version":"1.0"},
		"health":{"cpu_pct":5,"memory_pct":30,"disk_pct":40},
		"inventory":{"os":{"name":"Debian GNU/Linux","version":"7 (wheezy)"},"firmware":{"vendor":"Acme","model":"NVR7","version":"2.1"},"class":"camera",
		  "software":[{"name":"openssl","version":"1.0.1e-2+deb7u4","type":"package","source":"dpkg","purl":"pkg:deb/openssl@1.0.1e-2+deb7u4"}]},
		"network":{"listening":[{"proto":"tcp","addr":"0.0.0.0","port":443,"process":"lighttpd"}]}}`
	if res, err := c.PostReport(t.Context(), "application/json", []byte(report)); err != nil || len(res.Rejected) > 0 {
		t.Fatalf("report: %+v %v", res, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		as, _, err := a.Store().ListAlerts(t.Context(), store.AlertFilter{DeviceID: "nvr-7"})
		if err != nil {
			t.Fatal(err)
		}
		for _, al := range as {
			if al.Fields["remediation.action"] == "update" && strings.Contains(al.Title+al.RuleID, "CVE-2014-0160") {
				out, code := run(t, append([]string{"ctl", "findings", "--device", "nvr-7", "-o", "json"}, conn...)...)
				if code != 0 || !strings.Contains(out, `"kev": true`) {
					t.Fatalf("ctl findings: exit %d: %s", code, out)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no vulnerability alert with a remediation for nvr-7; alerts: %+v", as)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
