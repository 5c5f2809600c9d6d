package vex

import (
	"os"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/vuln"
)

// The test documents are written after the OpenVEX 0.2.0 and CycloneDX 1.6
// VEX specifications.
func TestParseOpenVEX(t *testing.T) {
	fh, err := os.Open("testdata/openvex.json")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sts, res, err := Parse(fh)
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 2 || res.Rejected != 2 {
		t.Fatalf("result %+v", res)
	}
	if sts[0].Vuln != "CVE-2024-99902" || sts[0].Status != vuln.VEXNotAffected || sts[0].Products[0] != "vigil:firmware/Acme/Gateway G2@4.2.0" {
		t.Errorf("first %+v", sts[0])
	}
	if sts[1].Products[0] != "pkg:opkg/openwrt/dnsmasq@2.89-1" {
		t.Errorf("subcomponents not used: %+v", sts[1])
	}
	if !strings.Contains(strings.Join(res.Errors, " "), "CVE-2023-0003") {
		t.Errorf("errors %q", res.Errors)
	}
}

func TestParseCycloneDXVEX(t *testing.T) {
	fh, err := os.Open("testdata/cdx-vex.json")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sts, res, err := Parse(fh)
	if err != nil || res.Imported != 2 {
		t.Fatalf("%v %+v", err, res)
	}
	if sts[0].Status != vuln.VEXNotAffected || !strings.HasPrefix(sts[0].Products[0], "cpe:2.3:a:lighttpd") {
		t.Errorf("first %+v", sts[0])
	}
	if sts[1].Status != vuln.VEXAffected || sts[1].Products[0] != "pkg:opkg/openwrt/dropbear@2022.82-2" {
		t.Errorf("second %+v", sts[1])
	}
}
