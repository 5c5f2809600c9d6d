package csaf

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/feeds/internal/feedtest"
	"github.com/vigil-iot/vigil/vuln"
)

// FuzzParse checks that Parse never panics and that what it returns holds
// together: an error (saying what it cannot do) comes with no advisories,
// the result counts what was returned and has one error per rejection, and
// every advisory is "<tracking id>/<cve>" from source csaf and names
// affected products by a purl or CPE the index can parse.
func FuzzParse(f *testing.F) {
	f.Add(feedtest.File(f, "testdata/acme-sa-2024-001.json"))
	for _, s := range feedtest.EdgeJSON {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"document": {"csaf_version": "2.0"}}`))
	f.Add([]byte(`{"document": {"csaf_version": 2.0}}`))
	f.Add([]byte(`{"document": {"csaf_version": "2.0", "tracking": {"id": "T"}}, "product_tree": {"full_product_names": [
		{"product_id": "P1", "product_identification_helper": {"purl": "pkg:deb/debian/openssl@3.0.11"}},
		{"product_id": "P2", "product_identification_helper": {"cpe": "cpe:2.3:a:x:y:1.0:*:*:*:*:*:*:*"}},
		{"product_id": "P3", "product_identification_helper": {"cpe": "cpe:/a:x:y"}},
		{"product_id": "P4", "name": "no helper"}]},
		"vulnerabilities": [{"cve": "CVE-2024-1", "product_status": {"known_affected": ["P1", "P2", "P3"], "fixed": ["P1"]},
			"scores": [{"cvss_v3": {"baseScore": 99, "vectorString": "x"}}]},
			{"ids": [{"system_name": "x", "text": "X-1"}], "product_status": {"known_affected": ["P4"]}},
			{"product_status": {"known_affected": ["P1"]}}]}`))
	f.Add([]byte(`{"document": {"csaf_version": "2.0", "tracking": {"id": "T", "initial_release_date": "not a date"}}}`))
	f.Add([]byte(`{"document": {"csaf_version": "2.0"}, "product_tree": {"branches": [{"category": "vendor", "name": "A:B", "branches": [
		{"category": "product_name", "name": " ", "branches": [{"category": "product_version_range", "name": "vers:deb/>=1|<2|>=3", "product": {"product_id": "P"}}]}]}]},
		"vulnerabilities": [{"cve": "CVE-1", "product_status": {"known_affected": ["P", "P", "P"]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ads, res, err := Parse(bytes.NewReader(data))
		feedtest.Failed(t, err, len(ads), res)
		feedtest.Result(t, res, len(ads))
		feedtest.Advisories(t, ads, vuln.SourceCSAF, true)
		for _, a := range ads {
			if _, name, ok := strings.Cut(a.ID, "/"); !ok || name == "" {
				t.Fatalf("advisory id %q is not <tracking id>/<name>", a.ID)
			}
		}
	})
}

// FuzzParseVers checks that ParseVers never panics, that an error says it
// is a bad range without quoting it (what it cannot parse may be a secret),
// and that a range other than "*" gives at least
// one interval, each with a bound.
func FuzzParseVers(f *testing.F) {
	for _, s := range []string{
		"vers:generic/>=1.0.0|<2.0.0", "vers:deb/>=1.0|<1.1|>=2.0|<=2.1", "vers:semver/<4.2.1", "vers:generic/1.2.3",
		"vers:npm/*", "vers:generic/!=1.0", "vers:generic/>=1.0.0|<1.2.5",
		"", "vers:", "vers:/", "vers:generic/", "vers:generic/|", "vers:generic/>=", "vers:generic/ * ", "vers:generic/<1|<2|>3|=4",
		"vers:generic/>=\xff", "vers:\x00/1", "VERS:generic/1", "vers:generic/" + strings.Repeat(">=1|", 100) + "<2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rs, eco, err := ParseVers(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "bad range: ") || len(rs) != 0 || len(s) >= 8 && strings.Contains(err.Error(), s) {
				t.Fatalf("error %q with %d ranges", err, len(rs))
			}
			return
		}
		if len(rs) == 0 || eco == "" {
			t.Fatalf("%q: %d ranges, ecosystem %q", s, len(rs), eco)
		}
		_, cons, _ := strings.Cut(s, "/")
		if strings.TrimSpace(cons) == "*" {
			return
		}
		for _, r := range rs {
			if r.Start == "" && r.End == "" {
				t.Fatalf("%q gives an unbounded range among %+v", s, rs)
			}
		}
	})
}

// TestParseBounded checks that a document cannot make Parse return more
// ranges than it holds: a product listed many times in one vulnerability
// counts once, and a vers range has at most maxConstraints constraints.
func TestParseBounded(t *testing.T) {
	ids := strings.Repeat(`"P",`, 1000) + `"P"`
	doc := `{"document": {"csaf_version": "2.0", "tracking": {"id": "T"}}, "product_tree": {"full_product_names": [
		{"product_id": "P", "product_identification_helper": {"purl": "pkg:deb/debian/openssl@3.0.11"}}]},
		"vulnerabilities": [{"cve": "CVE-2024-1", "product_status": {"known_affected": [` + ids + `], "first_affected": ["P"]}}]}`
	ads, _, err := Parse(strings.NewReader(doc))
	if err != nil || len(ads) != 1 || len(ads[0].Affected) != 1 || len(ads[0].Affected[0].Versions) != 1 {
		t.Fatalf("%v %+v", err, ads)
	}
	if _, _, err := ParseVers("vers:generic/" + strings.Repeat(">=1|", maxConstraints) + "<2"); err == nil || !strings.Contains(err.Error(), "constraints") {
		t.Errorf("%d constraints: %v", maxConstraints+1, err)
	}
	if rs, _, err := ParseVers("vers:generic/" + strings.Repeat(">=1|", maxConstraints-1) + "<2"); err != nil || len(rs) != maxConstraints-1 {
		t.Errorf("%d constraints: %d ranges, %v", maxConstraints, len(rs), err)
	}
}

// TestParseBadVulnerability checks that a vulnerability of the wrong shape
// is rejected with its index and the others go through.
func TestParseBadVulnerability(t *testing.T) {
	ads, res, err := Parse(strings.NewReader(`{"document": {"csaf_version": "2.0", "tracking": {"id": "T"}}, "product_tree": {"full_product_names": [
		{"product_id": "P", "product_identification_helper": {"purl": "pkg:deb/debian/openssl@3.0.11"}}]},
		"vulnerabilities": [{"cve": "CVE-2024-1", "scores": [{"cvss_v3": {"baseScore": "9.8"}}], "product_status": {"known_affected": ["P"]}},
			{"cve": "CVE-2024-2", "product_status": {"known_affected": ["P"]}}]}`))
	if err != nil || len(ads) != 1 || res.Rejected != 1 || !strings.HasPrefix(res.Errors[0], "vulnerability 0: cannot decode") {
		t.Fatalf("%v %+v", err, res)
	}
}
