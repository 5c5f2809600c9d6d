package web

import (
	"encoding/json"
	"fmt"
	"github.com/vigil-iot/vigil/store/sqlite"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/catalog"
	"github.com/vigil-iot/vigil/internal/egress"
	"github.com/vigil-iot/vigil/vuln/scan"
)

// intelEnv is a server with the intel and vulnerability routes, on a
// catalog and DB in a temporary data dir, which also holds a secret file
// (as pki/ca.key is in a real one).
func intelEnv(t *testing.T) (*env, *catalog.Catalog, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cat, err := catalog.Open(t.Context(), st, "", nil, fixedClock(now), nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := scan.Open(scan.Config{Store: st, Clock: fixedClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "pki", "ca.key")
	os.MkdirAll(filepath.Dir(secret), 0o700)
	os.WriteFile(secret, []byte("-----BEGIN EC PRIVATE KEY-----\nS3CRETMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oHuyq\nS3CRETAwEHoUQDQgAEnPmWn8wu8TQQxjy3UOmv0eFMz\n-----END EC PRIVATE KEY-----\n"), 0o600)
	e := newEnv(t, func(o *Options) {
		o.Intel = &Intel{Catalog: cat, Vuln: db, UploadDir: filepath.Join(dir, "intel", "uploads")}
	})
	return e, cat, secret
}

func body(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestIntelSourceNoServerFile: an analyst cannot make the server read one
// of its files, by path or file:// URL, as a feed or a vulnerability
// source; the answer says why and quotes nothing of the file. Before, the
// feed answer echoed every line of pki/ca.key.
func TestIntelSourceNoServerFile(t *testing.T) {
	e, cat, secret := intelEnv(t)
	rel, _ := filepath.Rel(mustGetwd(t), secret)
	for _, src := range []string{secret, rel, "file://" + secret, "ftp://127.0.0.1/x", "http:///x", "//" + secret} {
		code, b, _ := e.do("POST", "/api/v1/intel/feeds", "analyst", body(IntelImport{Feed: feedOf("x", src)}))
		if code != http.StatusBadRequest || !strings.Contains(string(b), "http(s) URL or uploaded content") || strings.Contains(string(b), "S3CRET") {
			t.Errorf("feed source %s: %d %s", src, code, b)
		}
		code, b, _ = e.do("POST", "/api/v1/vuln/sources", "analyst", body(VulnImport{Name: "x", Source: src}))
		if code != http.StatusBadRequest || !strings.Contains(string(b), "http(s) URL or uploaded content") || strings.Contains(string(b), "S3CRET") {
			t.Errorf("vuln source %s: %d %s", src, code, b)
		}
	}
	if n := len(cat.List()); n != 0 {
		t.Errorf("%d feeds imported from server files", n)
	}
}

func mustGetwd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// TestIntelRejectionsQuoteNoContent uploads content full of "S3CRET" to
// every feed and vulnerability parser: what is rejected is said by
// position and reason, and the answer quotes none of it.
func TestIntelRejectionsQuoteNoContent(t *testing.T) {
	e, _, secret := intelEnv(t)
	key, _ := os.ReadFile(secret)
	intel := []struct{ format, csv, content string }{
		{"list", "", string(key)},
		{"", "", string(key)},
		{"csv", `{"value": "0", "type": "1", "confidence": "2", "no_header": true}`, "S3CRET1,ip,5\n192.0.2.1,S3CRETTYPE,5\n192.0.2.1,ip,S3CRETCONF\n\"S3CRET\"x,ip,5\n"},
		{"stix", "", `{"type": "bundle", "objects": [{"type": "indicator", "id": "S3CRET", "pattern": "[ipv4-addr:value = 'S3CRET']"},
			{"type": "indicator", "id": "indicator--1", "pattern_type": "S3CRET", "pattern": "x"}, {"type": "indicator", "id": "i", "pattern": "[S3CRET:value = '1']"},
			{"type": "indicator", "id": "i", "pattern": "[ipv4-addr:value S3CRET '1']"}, {"type": "indicator", "id": "i", "pattern": "[ipv4-addr:value = '1'] S3CRET"},
			{"type": "indicator", "id": "i", "pattern": "[file:hashes.S3CRET = '1']"}]}`},
		{"stix", "", `{"type": "S3CRET", "spec_version": "2.1"}`},
		{"misp", "", `{"Event": {"uuid": "S3CRET", "Attribute": [{"uuid": "S3CRET", "type": "ip-dst", "value": "S3CRET", "to_ids": true},
			{"uuid": "S3CRET2", "type": "ip-dst|port", "value": "192.0.2.1|S3CRET", "to_ids": true}, {"uuid": "S3CRET3", "type": "domain", "value": "S3CRET", "to_ids": true},
			{"uuid": "S3CRET4", "type": "md5", "value": "S3CRET", "to_ids": true}, {"uuid": "S3CRET5", "type": "url", "value": "S3CRET", "to_ids": true}]}}`},
	}
	for i, c := range intel {
		in := IntelImport{Feed: feedOf(fmt.Sprintf("f%d", i), ""), Content: c.content}
		in.Feed.Format = c.format
		if c.csv != "" {
			json.Unmarshal([]byte(c.csv), &in.Feed.CSV)
		}
		code, b, _ := e.do("POST", "/api/v1/intel/feeds", "analyst", body(in))
		if strings.Contains(string(b), "S3CRET") || code == http.StatusOK && !strings.Contains(string(b), `"rejected":`) {
			t.Errorf("intel %s %d: %d %s", c.format, i, code, b)
		}
		if code == http.StatusOK && strings.Contains(string(b), `"rejected":0`) {
			t.Errorf("intel %s %d: nothing rejected: %s", c.format, i, b)
		}
	}
	vuln := []struct{ format, content string }{
		{"kev", `{"vulnerabilities": [{"cveID": "S3CRET"}, {"cveID": "CVE-2024-1111", "dateAdded": "S3CRET", "dueDate": "S3CRET"}]}`},
		{"nvd", `{"vulnerabilities": [{"cve": {"id": "S3CRET"}}, {"cve": {"id": "CVE-2024-1112", "configurations": [{"nodes": [{"cpeMatch": [{"vulnerable": true, "criteria": "S3CRET"}]}]}]}}]}`},
		{"osv", `[{"id": "S3CRET", "affected": [{"package": {"name": "S3CRET", "ecosystem": "S3CRET"}}]}, {"id": "S3CRET2", "affected": [{"package": {"purl": "S3CRET"}}]}]`},
		{"csaf", `{"document": {"csaf_version": "2.0", "tracking": {"id": "S3CRET"}}, "product_tree": {"full_product_names": [{"product_id": "S3CRET", "product_identification_helper": {"purl": "S3CRET"}},
			{"product_id": "S3CRETC", "product_identification_helper": {"cpe": "S3CRET"}}],
			"branches": [{"category": "vendor", "name": "acme", "branches": [{"category": "product_name", "name": "cam", "branches": [{"category": "product_version_range", "name": "S3CRET", "product": {"product_id": "S3CRETP"}}]}]}]},
			"vulnerabilities": [{"cve": "S3CRET"}, {"cve": "CVE-2024-1113", "product_status": {"known_affected": ["S3CRETID"]}}]}`},
		{"csaf", `{"document": {"csaf_version": "S3CRET"}}`},
		{"vex", `{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [{"vulnerability": {"name": "S3CRET"}, "status": "S3CRET", "products": [{"@id": "S3CRET"}]},
			{"vulnerability": {"name": "CVE-2024-1114"}, "status": "not_affected", "products": [{"@id": "S3CRET"}]}]}`},
		{"vex", `{"bomFormat": "CycloneDX", "specVersion": "1.5", "vulnerabilities": [{"id": "S3CRET", "analysis": {"state": "S3CRET"}, "affects": [{"ref": "S3CRET"}]}]}`},
		{"sbom", `{"bomFormat": "CycloneDX", "specVersion": "S3CRET"}`},
	}
	for i, c := range vuln {
		code, b, _ := e.do("POST", "/api/v1/vuln/sources", "analyst", body(VulnImport{Name: fmt.Sprintf("v%d", i), Format: c.format, Content: c.content}))
		if strings.Contains(string(b), "S3CRET") || code == http.StatusOK && strings.Contains(string(b), `"rejected":0`) {
			t.Errorf("vuln %s %d: %d %s", c.format, i, code, b)
		}
	}
}

// TestIntelFeedSecretsWriteOnly: a viewer listing the feeds sees that a
// token and a password are set, never their values nor URL userinfo.
// Before, GET /intel/feeds returned the token as given.
func TestIntelFeedSecretsWriteOnly(t *testing.T) {
	e, cat, _ := intelEnv(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "192.0.2.7") }))
	defer srv.Close()
	cat.HTTP = egress.Loopback().Client(0)
	f := feedOf("tok", srv.URL+"/ips.txt")
	f.Token = "feed-t0ken-value"
	if code, b, _ := e.do("POST", "/api/v1/intel/feeds", "analyst", body(IntelImport{Feed: f})); code != http.StatusOK {
		t.Fatalf("import: %d %s", code, b)
	}
	f = feedOf("basic", strings.Replace(srv.URL, "http://", "http://user:url-pa55word@", 1)+"/ips.txt")
	f.User, f.Password = "user", "feed-pa55word"
	if code, b, _ := e.do("POST", "/api/v1/intel/feeds", "analyst", body(IntelImport{Feed: f})); code != http.StatusOK {
		t.Fatalf("import: %d %s", code, b)
	}
	code, b, _ := e.do("GET", "/api/v1/intel/feeds", string(auth.RoleViewer), "")
	if code != http.StatusOK || strings.Contains(string(b), "t0ken") || strings.Contains(string(b), "pa55word") ||
		!strings.Contains(string(b), `"token":"set"`) || !strings.Contains(string(b), `"password":"set"`) {
		t.Fatalf("viewer's feed list: %d %s", code, b)
	}
	if fs := cat.List(); fs[1].Feed.Token != "feed-t0ken-value" {
		t.Errorf("hiding the token in the answer changed the catalog: %+v", fs[1].Feed)
	}
	// An uploaded feed is kept in a file of the data dir: the list names
	// no server path (before, it showed <data-dir>/intel/uploads/<name>).
	if code, b, _ := e.do("POST", "/api/v1/intel/feeds", "analyst", body(IntelImport{Feed: feeds.Feed{Name: "up", Format: "list"}, Content: "192.0.2.8\n"})); code != http.StatusOK {
		t.Fatalf("upload: %d %s", code, b)
	}
	code, b, _ = e.do("GET", "/api/v1/intel/feeds", string(auth.RoleViewer), "")
	if code != http.StatusOK || strings.Contains(string(b), "uploads") || !strings.Contains(string(b), LocalSource) {
		t.Fatalf("viewer's feed list shows a server path: %d %s", code, b)
	}
}

// TestIntelSourceSSRF: a feed or vulnerability source URL on loopback or
// the unspecified address is refused by the default outbound policy,
// and the server there gets no request (so no token).
func TestIntelSourceSSRF(t *testing.T) {
	e, _, _ := intelEnv(t)
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer srv.Close()
	// only local targets: were the check broken, nothing may leave the
	// machine (internal/egress tests the other classes without dialing)
	for _, src := range []string{srv.URL + "/ips.txt", "http://[::1]:1/", "http://localhost:1/", "http://0.0.0.0:1/"} {
		f := feedOf("ssrf", src)
		f.Token = "t0ken"
		code, b, _ := e.do("POST", "/api/v1/intel/feeds", "analyst", body(IntelImport{Feed: f}))
		if code != http.StatusBadRequest || !strings.Contains(string(b), "refused by the outbound policy") {
			t.Errorf("feed %s: %d %s", src, code, b)
		}
		code, b, _ = e.do("POST", "/api/v1/vuln/sources", "analyst", body(VulnImport{Name: "ssrf", Source: src, Token: "t0ken"}))
		if code != http.StatusBadRequest || !strings.Contains(string(b), "refused by the outbound policy") {
			t.Errorf("vuln source %s: %d %s", src, code, b)
		}
	}
	if hits != 0 {
		t.Errorf("the loopback server got %d requests", hits)
	}
}

func feedOf(name, src string) feeds.Feed { return feeds.Feed{Name: name, Source: src} }
