package nvd

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/feeds/internal/corpus"
	"github.com/vigil-iot/vigil/feeds/internal/feedtest"
	"github.com/vigil-iot/vigil/vuln"
)

const page = `{"resultsPerPage": 4, "startIndex": 0, "totalResults": 4, "format": "NVD_CVE", "version": "2.0", "timestamp": "2025-08-25T17:00:00.000",
	"vulnerabilities": [
		{"cve": {"id": "CVE-2023-27314", "published": "2023-05-03T16:15:09.207", "lastModified": "2023-05-12T04:15:09.207", "vulnStatus": "Analyzed",
			"descriptions": [{"lang": "es", "value": "x"}, {"lang": "en", "value": "ONTAP 9 versions prior to 9.8P19 ..."}],
			"metrics": {"cvssMetricV31": [{"source": "a", "type": "Secondary", "cvssData": {"version": "3.1", "baseScore": 5.0, "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"}},
				{"source": "nvd@nist.gov", "type": "Primary", "cvssData": {"version": "3.1", "baseScore": 7.5, "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"}}],
				"cvssMetricV2": [{"type": "Primary", "cvssData": {"baseScore": 5.0}}]},
			"configurations": [{"nodes": [{"operator": "OR", "negate": false, "cpeMatch": [
				{"vulnerable": true, "criteria": "cpe:2.3:o:netapp:clustered_data_ontap:*:*:*:*:*:*:*:*", "versionStartIncluding": "9.0", "versionEndExcluding": "9.8"},
				{"vulnerable": true, "criteria": "cpe:2.3:o:netapp:clustered_data_ontap:9.8:-:*:*:*:*:*:*"},
				{"vulnerable": false, "criteria": "cpe:2.3:h:netapp:fas:-:*:*:*:*:*:*:*"}]}]},
				{"negate": true, "nodes": [{"cpeMatch": [{"vulnerable": true, "criteria": "cpe:2.3:a:x:y:*:*:*:*:*:*:*:*", "versionStartExcluding": "1", "versionEndIncluding": "2"}]}]}],
			"references": [{"url": "https://security.netapp.com/advisory/ntap-20230512-0001/"}]}},
		{"cve": {"id": "CVE-2024-0001", "vulnStatus": "Analyzed", "configurations": [{"nodes": [{"operator": "OR", "cpeMatch": [{"vulnerable": true, "criteria": "cpe:2.3:a:x:y:1.0:*:*:*:*:*:*:*"}]}]}]}},
		{"cve": {"id": "CVE-2024-0002", "vulnStatus": "Rejected"}},
		{"cve": {"id": "CVE-2024-0003", "configurations": [{"nodes": [{"cpeMatch": [{"vulnerable": true, "criteria": "cpe:2.3:a:bad"}]}]}]}},
		{"cve": {"id": 5}}
	]}`

// FuzzParse checks that Parse never panics and that what it returns holds
// together: an error says what it cannot do, the result of a read without
// error counts what was returned and has one error per rejection, and
// every advisory is a CVE from source nvd whose products are CPEs the index
// can parse and whose score is in 0..10.
func FuzzParse(f *testing.F) {
	f.Add([]byte(page))
	for _, s := range feedtest.EdgeJSON {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"CVE_Items": []}`))
	f.Add([]byte(`{"vulnerabilities": null}`))
	f.Add([]byte(`{"vulnerabilities": [1, "x", null, [], {"cve": null}]}`))
	f.Add([]byte(`{"vulnerabilities": [{"cve": {"id": "CVE-1"}} {"cve": {"id": "CVE-2"}}]}`))
	f.Add([]byte(`{"vulnerabilities": [], "vulnerabilities": [{"cve": {"id": "CVE-1"}}], "CVE_Items": 1}`))
	f.Add([]byte(`{"a": [1, {"b": "c"}], "vulnerabilities": [{"cve": {"id": "CVE-1", "metrics": {"cvssMetricV31": [{"cvssData": {"baseScore": 1e300}}]}}}]}`))
	// A truncated file made Parse loop for ever: Decode failed with
	// io.ErrUnexpectedEOF again and again while More saw the buffered "{".
	f.Add([]byte(page[:len(page)/2]))
	f.Add([]byte(`{"vulnerabilities": [{"cve": {"id": "CVE-1"}}, {"cve": {"id": "CVE-2", "desc`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ads, res, err := Parse(bytes.NewReader(data))
		feedtest.Error(t, err)
		if err != nil {
			feedtest.Result(t, res, -1)
			return
		}
		feedtest.Result(t, res, len(ads))
		feedtest.Advisories(t, ads, vuln.SourceNVD, false)
		for _, a := range ads {
			if a.ID != a.CVE || !strings.HasPrefix(a.ID, "CVE-") {
				t.Fatalf("advisory id %q, CVE %q", a.ID, a.CVE)
			}
		}
	})
}

// TestCorpusProperties checks what the fuzz target checks on the shared
// corpus's nvd-cve-2.0-page.json (skipped when the corpus is absent).
func TestCorpusProperties(t *testing.T) {
	fh := corpus.Open(t, "nvd-cve-2.0-page.json")
	ads, res, err := Parse(fh)
	if err != nil {
		t.Fatal(err)
	}
	feedtest.Result(t, res, len(ads))
	feedtest.Advisories(t, ads, vuln.SourceNVD, false)
}
