package vex

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/feeds/internal/feedtest"
	"github.com/vigil-iot/vigil/vuln"
)

// FuzzParse checks that Parse never panics and that what it returns holds
// together: an error (saying what it cannot do) comes with no statements,
// the result counts what was returned and has one error per rejection,
// and every statement names a vulnerability, has a known status and
// products that parse as purls, CPEs or vigil:firmware names.
func FuzzParse(f *testing.F) {
	f.Add(feedtest.File(f, "testdata/openvex.json"))
	f.Add(feedtest.File(f, "testdata/cdx-vex.json"))
	for _, s := range feedtest.EdgeJSON {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [1, null, {"vulnerability": {"@id": "CVE-1"}, "status": "fixed",
		"products": [{"identifiers": {"purl": "pkg:deb/debian/x", "cpe23": "cpe:2.3:a:x:y:*:*:*:*:*:*:*:*", "cpe22": "cpe:/a:x:y"}}]},
		{"vulnerability": {"name": 5}, "status": "fixed", "products": [{"@id": "pkg:deb/debian/x"}]},
		{"vulnerability": {"name": "CVE-2"}, "status": "under_investigation", "products": [{"@id": "vigil:firmware/a/b", "subcomponents": [{"@id": ""}]}]}]}`))
	f.Add([]byte(`{"@context": 5}`))
	f.Add([]byte(`{"bomFormat": "CycloneDX", "metadata": {"component": {"bom-ref": "fw", "cpe": "cpe:/o:acme:fw:1"}}, "vulnerabilities": [
		{"id": "CVE-1", "analysis": {"state": "resolved"}, "affects": [{"ref": "fw"}, {"ref": "nope"}]},
		{"id": "", "analysis": {"state": "in_triage"}, "affects": [{"ref": "fw"}]},
		{"id": "CVE-2", "analysis": {"state": "false_positive"}, "affects": []},
		{"id": "CVE-3", "analysis": {"state": 1}, "affects": [{"ref": "fw"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sts, res, err := Parse(bytes.NewReader(data))
		feedtest.Failed(t, err, len(sts), res)
		feedtest.Result(t, res, len(sts))
		for i, st := range sts {
			switch st.Status {
			case vuln.VEXNotAffected, vuln.VEXAffected, vuln.VEXFixed, vuln.VEXUnderInvestigation:
			default:
				t.Fatalf("statement %d has status %q", i, st.Status)
			}
			if st.Vuln == "" || len(st.Products) == 0 {
				t.Fatalf("statement %d: %+v", i, st)
			}
			for _, p := range st.Products {
				if _, err := vuln.ParseVEXProduct(p); err != nil {
					t.Fatalf("statement %d: %v", i, err)
				}
			}
		}
	})
}

// TestParseBadStatement checks that a statement or vulnerability of the
// wrong shape is rejected with its index and the rest go through.
func TestParseBadStatement(t *testing.T) {
	sts, res, err := Parse(strings.NewReader(`{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [
		{"vulnerability": {"name": "CVE-1"}, "status": "fixed", "products": [{"@id": "pkg:deb/debian/x"}]},
		{"vulnerability": {"name": 5}, "status": "fixed", "products": [{"@id": "pkg:deb/debian/x"}]},
		{"vulnerability": {"name": "CVE-3"}, "status": "fixed", "products": [{"@id": "pkg:deb/debian/x"}]}]}`))
	if err != nil || len(sts) != 2 || res.Rejected != 1 || !strings.HasPrefix(res.Errors[0], "statement 1: ") {
		t.Fatalf("openvex: %v %+v", err, res)
	}
	sts, res, err = Parse(strings.NewReader(`{"bomFormat": "CycloneDX", "vulnerabilities": [
		{"id": "CVE-1", "analysis": {"state": 1}, "affects": [{"ref": "pkg:deb/debian/x"}]},
		{"id": "CVE-2", "analysis": {"state": "resolved"}, "affects": [{"ref": "pkg:deb/debian/x"}]}]}`))
	if err != nil || len(sts) != 1 || res.Rejected != 1 || !strings.HasPrefix(res.Errors[0], "vulnerability 0: ") {
		t.Fatalf("cyclonedx: %v %+v", err, res)
	}
}
