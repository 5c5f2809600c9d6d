package csaf

import (
	"os"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/vuln"
)

// testdata/acme-sa-2024-001.json is a CSAF 2.0 document written for these
// tests after the CSAF 2.0 specification (OASIS, section 3 and the
// csaf_security_advisory profile); Acme and its products are fictitious.
func TestParse(t *testing.T) {
	fh, err := os.Open("testdata/acme-sa-2024-001.json")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	ads, res, err := Parse(fh)
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 2 || res.Rejected != 1 || res.Errors[0] != "vulnerability 2 (CVE-2024-99903): affected product 0 names an unknown product id" {
		t.Fatalf("result %+v", res)
	}
	a := ads[0]
	if a.ID != "ACME-SA-2024-001/CVE-2024-99901" || a.CVE != "CVE-2024-99901" || a.CVSS != 9.8 || len(a.Affected) != 1 {
		t.Fatalf("first advisory %+v", a)
	}
	af := a.Affected[0]
	c, _ := vuln.ParseCPE(af.CPE)
	if c.Key() != "acme:cam100" || af.Fixed != "2.1.3" || len(af.Versions) != 1 || af.Versions[0] != "2.1.0" ||
		len(af.Ranges) != 1 || af.Ranges[0].String() != ">= 1.0.0, < 2.0.0" || af.NotAffected[0] != "2.0.5" {
		t.Errorf("cam100 affected %+v", af)
	}
	b := ads[1]
	if len(b.Affected) != 2 {
		t.Fatalf("second advisory %+v", b)
	}
	keys := []string{}
	for _, af := range b.Affected {
		c, _ := vuln.ParseCPE(af.CPE)
		keys = append(keys, c.Key()+" "+af.Fixed)
	}
	if keys[0] != "acme:gateway_g2 4.2.1" || keys[1] != "lighttpd:lighttpd " {
		t.Errorf("second advisory products %q", keys)
	}
}

func TestParseVers(t *testing.T) {
	f := func(s, want string) {
		t.Helper()
		rs, _, err := ParseVers(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		var got []string
		for _, r := range rs {
			got = append(got, r.String())
		}
		if g := strings.Join(got, " | "); g != want {
			t.Errorf("%s: %s, want %s", s, g, want)
		}
	}
	f("vers:generic/>=1.0.0|<2.0.0", ">= 1.0.0, < 2.0.0")
	f("vers:deb/>=1.0|<1.1|>=2.0|<=2.1", ">= 1.0, < 1.1 | >= 2.0, <= 2.1")
	f("vers:semver/<4.2.1", "< 4.2.1")
	f("vers:generic/1.2.3", ">= 1.2.3, <= 1.2.3")
	f("vers:npm/*", "all versions")
	if _, _, err := ParseVers("vers:generic/!=1.0"); err == nil {
		t.Error("!= accepted")
	}
}
