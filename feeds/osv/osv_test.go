package osv

import (
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/feeds/internal/corpus"
	"github.com/vigil-iot/vigil/vuln"
)

func TestParseSample(t *testing.T) {
	fh := corpus.Open(t, "osv-sample.json")
	ads, res, err := Parse(fh)
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 1 || len(ads) != 1 {
		t.Fatalf("result %+v", res)
	}
	a := ads[0]
	if a.ID != "CGA-224q-ccj5-2p53" || a.CVE != "CVE-2025-32464" || a.CVSS != 9.1 || len(a.Affected) != 4 {
		t.Fatalf("advisory %+v", a)
	}
	f := a.Affected[0]
	if f.PURL != "pkg:apk/chainguard/haproxy-2.2" || f.Ecosystem != vuln.APK || f.Fixed != "2.2.34-r0" ||
		!f.Ranges[0].Contains(f.Ecosystem, "2.2.33-r1") || f.Ranges[0].Contains(f.Ecosystem, "2.2.34-r0") {
		t.Errorf("affected %+v", f)
	}
}

func TestParseForms(t *testing.T) {
	ads, res, err := Parse(strings.NewReader(`{"vulns": [
		{"id": "DSA-1", "aliases": ["CVE-2024-1"], "affected": [{"package": {"ecosystem": "Debian:12", "name": "openssl"},
			"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.13-1~deb12u1"}]}]}]},
		{"id": "X-2", "affected": [{"package": {"ecosystem": "Nowhere", "name": "x"}, "versions": ["1"]}]},
		{"id": "X-3", "withdrawn": "2024-01-01T00:00:00Z"},
		{"id": "GHSA-x", "affected": [{"package": {"ecosystem": "Go", "name": "github.com/x/y"},
			"ranges": [{"type": "SEMVER", "events": [{"introduced": "1.2.0"}, {"last_affected": "1.4.1"}]}, {"type": "GIT", "events": [{"introduced": "abc"}]}]}]}
	]}`))
	if err != nil || len(ads) != 2 || res.Rejected != 1 || res.Skipped != 1 {
		t.Fatalf("%v %+v", err, res)
	}
	if ads[0].Affected[0].PURL != "pkg:deb/debian/openssl" || ads[0].CVE != "CVE-2024-1" || ads[0].Affected[0].Ecosystem != vuln.Deb {
		t.Errorf("debian: %+v", ads[0].Affected)
	}
	if p := ads[1].Affected[0].PURL; p != "pkg:golang/github.com/x/y" {
		t.Errorf("go purl %q", p)
	}
	r := ads[1].Affected[0].Ranges
	if len(r) != 1 || !r[0].EndIncl || !r[0].Contains(vuln.SemVer, "v1.4.1") || r[0].Contains(vuln.SemVer, "1.4.2") {
		t.Errorf("go: %+v", ads[1].Affected)
	}
}

func TestParsePackageNames(t *testing.T) {
	ads, res, err := Parse(strings.NewReader(`[{"id": "X-1", "affected": [
		{"package": {"ecosystem": "npm", "name": "@angular/core"}, "versions": ["16.0.0"]},
		{"package": {"ecosystem": "Maven", "name": "org.apache.logging.log4j:log4j-core"}, "versions": ["2.14.1"]},
		{"package": {"ecosystem": "PyPI", "name": "a?b#c"}, "versions": ["1"]}]}]`))
	if err != nil || len(ads) != 1 || res.Rejected != 0 {
		t.Fatalf("%v %+v", err, res)
	}
	want := []string{"npm/@angular/core", "maven/org.apache.logging.log4j/log4j-core", "pypi//a?b#c"}
	for i, af := range ads[0].Affected {
		p, err := vuln.ParsePURL(af.PURL)
		if err != nil || p.Key() != want[i] {
			t.Errorf("%s: key %q (%v), want %q", af.PURL, p.Key(), err, want[i])
		}
	}
}
