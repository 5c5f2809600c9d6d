package scan

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/ingest/agent"
	"github.com/vigil-iot/vigil/internal/egress"
	"github.com/vigil-iot/vigil/store/sqlite"
	"github.com/vigil-iot/vigil/vuln"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func corpus(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join("..", "..", "..", "shared", "corpus", "intel", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("corpus file %s absent: %v", p, err)
	}
	return p
}

const (
	csafDoc   = "../../feeds/csaf/testdata/acme-sa-2024-001.json"
	cdxSBOM   = "../../feeds/sbom/testdata/cam100-2.1.0.cdx.json"
	spdxSBOM  = "../../feeds/sbom/testdata/g2-4.2.0.spdx.json"
	openVEX   = "../../feeds/vex/testdata/openvex.json"
	heartbeat = "testdata/osv-dsa-2896-1.json"
)

func open(t *testing.T) (*DB, *[]vigil.Alert, *clock) {
	t.Helper()
	var alerts []vigil.Alert
	ck := &clock{time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)}
	db, err := Open(Config{Store: openSQLite(t, t.TempDir()), Clock: ck, HTTP: egress.Loopback().Client(0), Alert: func(a vigil.Alert) { alerts = append(alerts, a) }})
	if err != nil {
		t.Fatal(err)
	}
	return db, &alerts, ck
}

func mustImport(t *testing.T, db *DB, src string, o ImportOptions, wantImported int) {
	t.Helper()
	res, err := db.Import(context.Background(), src, o)
	if err != nil {
		t.Fatalf("import %s: %v", src, err)
	}
	if res.Imported != wantImported {
		t.Fatalf("import %s: %+v, want imported=%d", src, res, wantImported)
	}
}

func byVuln(fs []vuln.Finding) map[string]vuln.Finding {
	m := map[string]vuln.Finding{}
	for _, f := range fs {
		m[f.Vuln+" "+f.Component] = f
	}
	return m
}

func TestCorpusImports(t *testing.T) {
	db, _, _ := open(t)
	mustImport(t, db, corpus(t, "kev.json"), ImportOptions{}, 1404)
	mustImport(t, db, corpus(t, "nvd-cve-2.0-page.json"), ImportOptions{}, 38)
	mustImport(t, db, corpus(t, "osv-sample.json"), ImportOptions{}, 1)
	src := db.Sources()
	if len(src) != 3 || src[0].Name != "kev" || src[0].Format != FormatKEV || src[1].Format != FormatNVD || src[2].Format != FormatOSV {
		t.Fatalf("sources %+v", src)
	}
	if k, ok := db.KEV("CVE-2014-0160"); !ok || k.DueDate.Format(time.DateOnly) != "2022-05-25" {
		t.Errorf("KEV lookup: %+v %v", k, ok)
	}
	// Reopen: the sources are back.
	db2, err := Open(Config{Store: db.cfg.Store})
	if err != nil {
		t.Fatal(err)
	}
	if len(db2.Sources()) != 3 || len(db2.Advisories()) != 39 {
		t.Errorf("reopened: %d sources, %d advisories", len(db2.Sources()), len(db2.Advisories()))
	}
}

// TestPrecision: look-alike products must not match.
func TestPrecision(t *testing.T) {
	db, _, _ := open(t)
	mustImport(t, db, corpus(t, "nvd-cve-2.0-page.json"), ImportOptions{}, 38)
	mustImport(t, db, corpus(t, "osv-sample.json"), ImportOptions{}, 1)
	mustImport(t, db, csafDoc, ImportOptions{}, 2)

	f := func(d vigil.Device, want ...string) {
		t.Helper()
		fs := db.UpdateDevice(d)
		var got []string
		for _, x := range fs {
			got = append(got, x.Vuln+"/"+x.Evidence[0].Rule)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: findings %q, want %q", d.ID, got, want)
		}
	}
	f(vigil.Device{ID: "cam-1", Vendor: "Acme", Model: "Cam100", Firmware: "2.1.0"}, "CVE-2024-99901/firmware")
	f(vigil.Device{ID: "cam-old", Vendor: "ACME", Model: "cam100", Firmware: "1.5.2"}, "CVE-2024-99901/firmware")
	f(vigil.Device{ID: "cam-fixed", Vendor: "Acme", Model: "Cam100", Firmware: "2.1.3"})
	f(vigil.Device{ID: "cam-not-affected", Vendor: "Acme", Model: "Cam100", Firmware: "2.0.5"})
	// Look-alikes: another model, a longer name, another vendor.
	f(vigil.Device{ID: "cam1000", Vendor: "Acme", Model: "Cam1000", Firmware: "2.1.0"})
	f(vigil.Device{ID: "cam100-pro", Vendor: "Acme", Model: "Cam100 Pro", Firmware: "2.1.0"})
	f(vigil.Device{ID: "acme-corp", Vendor: "Acme Corp", Model: "Cam100", Firmware: "2.1.0"})
	f(vigil.Device{ID: "acmee", Vendor: "Acmee", Model: "Cam100", Firmware: "2.1.0"})
	// A component named like the product but without purl or CPE.
	f(vigil.Device{ID: "name-only", Software: []vigil.Component{{Name: "Cam100", Version: "2.1.0"}, {Name: "clustered_data_ontap", Version: "9.7"}}})
	// NVD CPE: the product, and look-alike products of the same vendor.
	f(vigil.Device{ID: "ontap", Software: []vigil.Component{{Name: "ontap", Version: "9.7", CPE: "cpe:2.3:a:netapp:clustered_data_ontap:9.7:*:*:*:*:*:*:*"}}}, "CVE-2023-27314/cpe")
	f(vigil.Device{ID: "ontap-av", Software: []vigil.Component{
		{Name: "ontap av", Version: "9.7", CPE: "cpe:2.3:a:netapp:clustered_data_ontap_antivirus_connector:9.7:*:*:*:*:*:*:*"},
		{Name: "ontap other vendor", Version: "9.7", CPE: "cpe:2.3:a:netap:clustered_data_ontap:9.7:*:*:*:*:*:*:*"},
	}})
	f(vigil.Device{ID: "ontap-new", Software: []vigil.Component{{Name: "ontap", Version: "9.14.1", CPE: "cpe:2.3:a:netapp:clustered_data_ontap:9.14.1:*:*:*:*:*:*:*"}}})
	// OSV purl: the package, then look-alikes (another name, another namespace).
	f(vigil.Device{ID: "haproxy", Software: []vigil.Component{{Name: "haproxy-2.2", Version: "2.2.33-r0", PURL: "pkg:apk/chainguard/haproxy-2.2@2.2.33-r0?arch=x86_64"}}}, "CVE-2025-32464/purl")
	f(vigil.Device{ID: "haproxy-fixed", Software: []vigil.Component{{Name: "haproxy-2.2", Version: "2.2.34-r0", PURL: "pkg:apk/chainguard/haproxy-2.2@2.2.34-r0"}}})
	f(vigil.Device{ID: "haproxy-lookalike", Software: []vigil.Component{
		{Name: "haproxy-2.22", PURL: "pkg:apk/chainguard/haproxy-2.22@2.2.33-r0"},
		{Name: "haproxy-2.2", PURL: "pkg:apk/alpine/haproxy-2.2@2.2.33-r0"},
		{Name: "haproxy", PURL: "pkg:apk/chainguard/haproxy@2.2.33-r0"},
	}})
	fs := db.Findings(Filter{DeviceID: "cam-1"})
	if len(fs) != 1 || fs[0].FixedVersion != "2.1.3" || fs[0].CVSS != 9.8 || fs[0].Confidence != 0.85 ||
		fs[0].Evidence[0].Versions != "= 2.1.0" || fs[0].Evidence[0].Advisory != "ACME-SA-2024-001/CVE-2024-99901" {
		t.Errorf("cam-1 finding %+v", fs)
	}
}

func TestSBOMVEXExposureAlerts(t *testing.T) {
	db, alerts, _ := open(t)
	// Devices first, feeds after: a feed import rematches the devices it concerns.
	db.UpdateDevice(vigil.Device{ID: "cam-1", Name: "lobby camera", Vendor: "Acme", Model: "Cam100", Firmware: "2.1.0"})
	db.UpdateDevice(vigil.Device{ID: "gw-1", Vendor: "Acme", Model: "Gateway G2", Firmware: "4.2.0"})
	db.UpdateDevice(vigil.Device{ID: "gw-2", Vendor: "Acme", Model: "Gateway G2", Firmware: "4.1.0"})
	if n := len(db.Findings(Filter{})); n != 0 {
		t.Fatalf("%d findings before any feed", n)
	}
	mustImport(t, db, csafDoc, ImportOptions{}, 2)
	if n := len(db.Findings(Filter{})); n != 3 {
		t.Fatalf("%d findings after the CSAF import, want 3: %+v", n, db.Findings(Filter{}))
	}
	// The SBOM adds lighttpd 1.4.59 to Cam100 2.1.0, matched by its CPE.
	mustImport(t, db, cdxSBOM, ImportOptions{Name: "cam100-2.1.0"}, 4)
	m := byVuln(db.Findings(Filter{DeviceID: "cam-1"}))
	lf, ok := m["CVE-2024-99902 lighttpd"]
	if !ok || lf.Evidence[0].Rule != vuln.RuleCPE || !strings.Contains(lf.Evidence[0].Component, "from sbom") {
		t.Fatalf("lighttpd finding %+v (all %v)", lf, m)
	}
	// No exposure, no KEV: no alert yet.
	if len(*alerts) != 0 {
		t.Fatalf("alerts before exposure: %+v", *alerts)
	}
	// The agent reports lighttpd listening: the firmware finding (9.8) is
	// exposed and alerts; the lighttpd one ranks above an unexposed one.
	db.Observe(&vigil.Event{ID: "l1", DeviceID: "cam-1", Kind: vigil.KindNetwork, Action: "listen",
		Fields: map[string]any{"destination.port": float64(80), "network.transport": "tcp", "process.name": "lighttpd"}})
	m = byVuln(db.Findings(Filter{DeviceID: "cam-1"}))
	if lf := m["CVE-2024-99902 lighttpd"]; !lf.Exposed || lf.Exposure != "listening tcp/80 (lighttpd)" || lf.Rank != 7.5+5 {
		t.Errorf("lighttpd exposure %+v", lf)
	}
	if len(*alerts) != 1 {
		t.Fatalf("alerts after exposure: %+v", *alerts)
	}
	a := (*alerts)[0]
	if a.Detector != "vuln" || a.DeviceID != "cam-1" || a.Fields["remediation.action"] != "update" ||
		a.Fields["remediation.component"] != "Cam100" || a.Fields["remediation.version"] != "2.1.3" ||
		!strings.Contains(a.Title, "update Cam100 to ≥ 2.1.3") || a.Severity != vigil.SeverityCritical {
		t.Errorf("alert %+v", a)
	}
	// The same again raises nothing new.
	db.Observe(&vigil.Event{ID: "l2", DeviceID: "cam-1", Kind: vigil.KindNetwork, Action: "listen",
		Fields: map[string]any{"destination.port": float64(80), "network.transport": "tcp", "process.name": "lighttpd"}})
	db.Rescan()
	if len(*alerts) != 1 {
		t.Errorf("alert repeated: %d", len(*alerts))
	}
	if ls := db.Listeners("cam-1"); len(ls) != 1 || ls[0] != (Listener{Transport: "tcp", Port: 80, Process: "lighttpd"}) {
		t.Errorf("listeners of cam-1: %+v", ls)
	}
	if ls := db.Listeners("nope"); ls != nil {
		t.Errorf("listeners of an unknown device: %+v", ls)
	}
	// VEX: Gateway G2 4.2.0 is not affected by CVE-2024-99902; 4.1.0 still is.
	if len(db.Findings(Filter{DeviceID: "gw-1"})) != 1 {
		t.Fatalf("gw-1 before VEX: %+v", db.Findings(Filter{DeviceID: "gw-1"}))
	}
	mustImport(t, db, openVEX, ImportOptions{}, 2)
	if fs := db.Findings(Filter{DeviceID: "gw-1"}); len(fs) != 0 {
		t.Errorf("gw-1 after VEX: %+v", fs)
	}
	sup := db.Findings(Filter{DeviceID: "gw-1", Suppressed: true})
	if len(sup) != 1 || !strings.Contains(sup[0].Suppressed, "vulnerable_code_not_in_execute_path") {
		t.Errorf("suppressed %+v", sup)
	}
	if fs := db.Findings(Filter{DeviceID: "gw-2"}); len(fs) != 1 || fs[0].FixedVersion != "4.2.1" {
		t.Errorf("gw-2 %+v", fs)
	}
	// Inventory change: cam-1 updated to 2.1.3; the firmware finding goes,
	// the SBOM of 2.1.0 no longer applies.
	db.UpdateDevice(vigil.Device{ID: "cam-1", Vendor: "Acme", Model: "Cam100", Firmware: "2.1.3"})
	if fs := db.Findings(Filter{DeviceID: "cam-1"}); len(fs) != 0 {
		t.Errorf("cam-1 after update %+v", fs)
	}
	// Removing the CSAF source clears gw-2.
	if err := db.Remove("acme-sa-2024-001"); err != nil {
		t.Fatal(err)
	}
	if fs := db.Findings(Filter{}); len(fs) != 0 {
		t.Errorf("after remove %+v", fs)
	}
	if tr := db.Trend(); len(tr) != 1 || tr[0].Day != "2025-09-01" {
		t.Errorf("trend %+v", tr)
	}
}

// TestAgentInventoryEndToEnd: an agent reports a vulnerable openssl; the
// inventory event becomes a device, the device a KEV finding and an alert.
func TestAgentInventoryEndToEnd(t *testing.T) {
	db, alerts, _ := open(t)
	mustImport(t, db, corpus(t, "kev.json"), ImportOptions{}, 1404)
	mustImport(t, db, heartbeat, ImportOptions{}, 1)
	ev := &vigil.Event{ID: "inv-1", Time: time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC), DeviceID: "nvr-7", Source: "agent", Kind: vigil.KindInventory,
		Fields: map[string]any{
			"os.name": "Debian GNU/Linux", "os.version": "7 (wheezy)", "device.vendor": "Acme", "device.model": "NVR7",
			"software": `[{"name":"openssl","version":"1.0.1e-2+deb7u4","type":"package","source":"dpkg","purl":"pkg:deb/openssl@1.0.1e-2+deb7u4?arch=armhf"},
				{"name":"libssl1.0.0","version":"1.0.1e-2+deb7u4","type":"package","source":"dpkg","purl":"pkg:deb/libssl1.0.0@1.0.1e-2+deb7u4"}]`,
		}}
	d, err := agent.DeviceFromInventory(ev)
	if err != nil {
		t.Fatal(err)
	}
	fs := db.UpdateDevice(d)
	if len(fs) != 1 {
		t.Fatalf("findings %+v", fs)
	}
	f := fs[0]
	if f.Vuln != "CVE-2014-0160" || !f.KEV || f.KEVDue.Format(time.DateOnly) != "2022-05-25" || f.FixedVersion != "1.0.1e-2+deb7u5" ||
		f.CVSS != 7.5 || f.Evidence[0].Rule != vuln.RulePURL || f.Evidence[0].Matched != "pkg:deb/debian/openssl" {
		t.Fatalf("finding %+v", f)
	}
	if len(*alerts) != 1 || (*alerts)[0].Fields["remediation.version"] != "1.0.1e-2+deb7u5" || (*alerts)[0].Fields["vuln.kev"] != true {
		t.Fatalf("alerts %+v", *alerts)
	}
	// The agent reports the fixed version: the finding goes.
	d.Software[0].Version, d.Software[0].PURL = "1.0.1e-2+deb7u5", "pkg:deb/openssl@1.0.1e-2+deb7u5"
	if fs := db.UpdateDevice(d); len(fs) != 0 {
		t.Errorf("after upgrade %+v", fs)
	}
}

func TestImportGzipAndErrors(t *testing.T) {
	raw, err := os.ReadFile(corpus(t, "nvd-cve-2.0-page.json"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "nvdcve-2.0-page.json.gz")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	db, _, _ := open(t)
	mustImport(t, db, p, ImportOptions{Name: "nvd-2023"}, 38)
	if _, err := db.Import(context.Background(), "testdata/nope.json", ImportOptions{}); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("missing file: %v", err)
	}
	if _, err := db.ImportReader(strings.NewReader(`{"hello": 1}`), "x", ImportOptions{Name: "x"}); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("unknown format: %v", err)
	}
	if _, err := db.ImportReader(strings.NewReader(`{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}`), "x", ImportOptions{Name: "sbom"}); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("SBOM without device: %v", err)
	}
	if _, err := db.ImportReader(strings.NewReader(`{}`), "x", ImportOptions{Name: "../x", Format: FormatKEV}); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("bad name: %v", err)
	}
}

func TestRefreshDue(t *testing.T) {
	body := `{"catalogVersion": "1", "vulnerabilities": [{"cveID": "CVE-2024-99901", "dateAdded": "2024-03-02", "dueDate": "2024-03-23"}]}`
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, body)
	}))
	defer hs.Close()
	db, alerts, ck := open(t)
	mustImport(t, db, csafDoc, ImportOptions{}, 2)
	db.UpdateDevice(vigil.Device{ID: "cam-1", Vendor: "Acme", Model: "Cam100", Firmware: "2.1.0"})
	mustImport(t, db, hs.URL+"/kev.json", ImportOptions{Name: "kev", Token: "k", Refresh: time.Hour}, 1)
	if len(*alerts) != 1 || (*alerts)[0].Fields["vuln.kev.due_date"] != "2024-03-23" {
		t.Fatalf("KEV alert %+v", *alerts)
	}
	body = `{"catalogVersion": "2", "vulnerabilities": []}`
	if n := db.RefreshDue(context.Background()); n != 0 {
		t.Errorf("refreshed %d early", n)
	}
	ck.t = ck.t.Add(time.Hour)
	if n := db.RefreshDue(context.Background()); n != 1 {
		t.Fatalf("refreshed %d", n)
	}
	if fs := db.Findings(Filter{DeviceID: "cam-1"}); len(fs) != 1 || fs[0].KEV {
		t.Errorf("after KEV refresh %+v", fs)
	}
}

// openSQLite opens a SQLite store in dir, closed with the test.
func openSQLite(t testing.TB, dir string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(dir, "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestTwoNodes: two DBs on one store, as two nodes: a source imported on
// one reaches the other at its next Sync, and a finding both see qualify
// alerts once.
func TestTwoNodes(t *testing.T) {
	st := openSQLite(t, t.TempDir())
	ck := &clock{time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)}
	var alerts []vigil.Alert
	node := func() *DB {
		db, err := Open(Config{Store: st, Clock: ck, Alert: func(a vigil.Alert) { alerts = append(alerts, a) }})
		if err != nil {
			t.Fatal(err)
		}
		db.UpdateDevice(vigil.Device{ID: "cam-1", Vendor: "Acme", Model: "Cam100", Firmware: "2.1.0"})
		return db
	}
	a, b := node(), node()
	mustImport(t, a, csafDoc, ImportOptions{}, 2)
	mustImport(t, a, cdxSBOM, ImportOptions{Name: "cam100-2.1.0"}, 4)
	if changed, err := b.Sync(context.Background()); err != nil || !changed {
		t.Fatalf("Sync of the second node = %v, %v", changed, err)
	}
	if len(b.Sources()) != 2 || len(b.Findings(Filter{})) != len(a.Findings(Filter{})) {
		t.Fatalf("second node: %d sources, %d findings; first: %d findings", len(b.Sources()), len(b.Findings(Filter{})), len(a.Findings(Filter{})))
	}
	listen := vigil.Event{ID: "l1", DeviceID: "cam-1", Kind: vigil.KindNetwork, Action: "listen",
		Fields: map[string]any{"destination.port": float64(80), "network.transport": "tcp", "process.name": "lighttpd"}}
	b.Observe(&listen)
	a.Observe(&listen)
	if len(alerts) != 1 {
		t.Fatalf("%d alerts from two nodes, want 1: %+v", len(alerts), alerts)
	}
	// A node opened later does not alert it again.
	c := node()
	c.Observe(&listen)
	if len(alerts) != 1 {
		t.Fatalf("%d alerts after a third node, want 1", len(alerts))
	}
	if err := b.Remove("cam100-2.1.0"); err != nil {
		t.Fatal(err)
	}
	if changed, err := a.Sync(context.Background()); err != nil || !changed || len(a.Sources()) != 1 {
		t.Fatalf("Sync after a removal on another node = %v, %v; %d sources", changed, err, len(a.Sources()))
	}
}

// TestImportFiles: the sources and alerted findings an older version kept
// in the data dir are imported into the store once.
func TestImportFiles(t *testing.T) {
	dir := t.TempDir()
	old, err := Open(Config{Store: openSQLite(t, t.TempDir())})
	if err != nil {
		t.Fatal(err)
	}
	mustImport(t, old, csafDoc, ImportOptions{Name: "acme"}, 2)
	raw := old.sources["acme"]
	os.MkdirAll(filepath.Join(dir, "vuln", "sources"), 0o750)
	doc, _ := json.Marshal(raw)
	os.WriteFile(filepath.Join(dir, "vuln", "sources", "acme.json"), doc, 0o600)
	at := time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)
	state, _ := json.Marshal(map[string]any{"alerted": map[string]time.Time{"cam-1|CVE-2024-99901|Cam100": at},
		"trend": []TrendPoint{{Day: "2025-08-01", Findings: 3}}})
	os.WriteFile(filepath.Join(dir, "vuln", "state.json"), state, 0o600)
	st := openSQLite(t, dir)
	db, err := Open(Config{Store: st, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(db.Sources()) != 1 || len(db.Trend()) == 0 || db.Trend()[0] != (TrendPoint{Day: "2025-08-01", Findings: 3}) {
		t.Fatalf("after import: sources %+v, trend %+v", db.Sources(), db.Trend())
	}
	if mine, err := st.Claim(context.Background(), AlertedClaims, "cam-1|CVE-2024-99901|Cam100", at); err != nil || mine {
		t.Fatalf("the alerted finding of state.json is not claimed: %v, %v", mine, err)
	}
	for _, p := range []string{"vuln/sources/acme.json.imported", "vuln/state.json.imported"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}
