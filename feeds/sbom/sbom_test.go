package sbom

import (
	"os"
	"strings"
	"testing"
)

// The test documents are written after the CycloneDX 1.6 and SPDX 2.3
// specifications; Acme and its products are fictitious.
func TestParseCycloneDX(t *testing.T) {
	fh, err := os.Open("testdata/cam100-2.1.0.cdx.json")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	s, res, err := Parse(fh)
	if err != nil {
		t.Fatal(err)
	}
	if s.Format != "cyclonedx-1.6" || s.Vendor != "Acme" || s.Model != "Cam100" || s.Firmware != "2.1.0" {
		t.Errorf("subject %+v", s)
	}
	if res.Imported != 4 || res.Rejected != 1 || len(s.Components) != 4 {
		t.Fatalf("result %+v, components %+v", res, s.Components)
	}
	if c := s.Components[1]; c.Name != "lighttpd" || c.CPE == "" || c.Type != "application" || c.Source != "sbom" {
		t.Errorf("lighttpd %+v", c)
	}
	if s.Components[2].Name != "mod_auth" {
		t.Errorf("nested component not read: %+v", s.Components)
	}
}

func TestParseSPDX(t *testing.T) {
	fh, err := os.Open("testdata/g2-4.2.0.spdx.json")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	s, res, err := Parse(fh)
	if err != nil {
		t.Fatal(err)
	}
	if s.Format != "spdx-2.3" || s.Vendor != "Acme" || s.Model != "Gateway G2" || s.Firmware != "4.2.0" || res.Imported != 2 {
		t.Fatalf("%+v %+v", s, res)
	}
	if c := s.Components[1]; c.PURL != "pkg:opkg/openwrt/dropbear@2022.82-2" || !strings.HasPrefix(c.CPE, "cpe:2.3:a:dropbear_ssh_project") {
		t.Errorf("dropbear %+v", c)
	}
	if _, _, err := Parse(strings.NewReader(`{"bomFormat": "CycloneDX", "specVersion": "1.2"}`)); err == nil {
		t.Error("CycloneDX 1.2 accepted")
	}
}
