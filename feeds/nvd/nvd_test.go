package nvd

import (
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/feeds/internal/corpus"
	"github.com/vigil-iot/vigil/vuln"
)

func TestParsePage(t *testing.T) {
	fh := corpus.Open(t, "nvd-cve-2.0-page.json")
	ads, res, err := Parse(fh)
	if err != nil {
		t.Fatal(err)
	}
	// The page says totalResults 38.
	if res.Imported+res.Skipped != 38 || res.Rejected != 0 || len(ads) != res.Imported {
		t.Fatalf("result %+v, %d advisories", res, len(ads))
	}
	var ontap *vuln.Advisory
	for i := range ads {
		if ads[i].ID == "CVE-2023-27314" {
			ontap = &ads[i]
		}
	}
	if ontap == nil || ontap.CVSS != 7.5 || !strings.HasPrefix(ontap.Summary, "ONTAP 9") || len(ontap.Affected) == 0 {
		t.Fatalf("CVE-2023-27314: %+v", ontap)
	}
	// The first criterion: clustered_data_ontap from 9.0 to before 9.8.
	a := ontap.Affected[0]
	if !strings.Contains(a.CPE, "netapp:clustered_data_ontap") || len(a.Ranges) != 1 || a.Ranges[0].Start != "9.0" || a.Ranges[0].End != "9.8" || a.Fixed != "9.8" {
		t.Errorf("first affected %+v", a)
	}
}

func TestParseErrors(t *testing.T) {
	if _, _, err := Parse(strings.NewReader(`{"CVE_Items": []}`)); err == nil || !strings.Contains(err.Error(), "1.1") {
		t.Errorf("1.1 feed: %v", err)
	}
	if _, _, err := Parse(strings.NewReader(`[]`)); err == nil {
		t.Error("array accepted")
	}
	ads, res, err := Parse(strings.NewReader(`{"vulnerabilities": [
		{"cve": {"id": "CVE-2024-0001", "vulnStatus": "Analyzed", "configurations": [{"nodes": [{"operator": "OR", "cpeMatch": [{"vulnerable": true, "criteria": "cpe:2.3:a:x:y:1.0:*:*:*:*:*:*:*"}]}]}]}},
		{"cve": {"id": "CVE-2024-0002", "vulnStatus": "Rejected"}},
		{"cve": {"id": "CVE-2024-0003", "configurations": [{"nodes": [{"cpeMatch": [{"vulnerable": true, "criteria": "cpe:2.3:a:bad"}]}]}]}},
		{"cve": {"id": 5}}
	]}`))
	if err != nil || len(ads) != 1 || res.Skipped != 1 || res.Rejected != 2 {
		t.Fatalf("%v %+v %+v", err, res, ads)
	}
	if len(ads[0].Affected) != 1 || len(ads[0].Affected[0].Ranges) != 0 {
		t.Errorf("exact-version criterion: %+v", ads[0].Affected)
	}
}
