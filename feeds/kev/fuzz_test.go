package kev

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/feeds/internal/corpus"
	"github.com/vigil-iot/vigil/feeds/internal/feedtest"
)

const sample = `{"title": "CISA Catalog of Known Exploited Vulnerabilities", "catalogVersion": "2025.08.25", "dateReleased": "2025-08-25T17:00:58.4587Z", "count": 3,
	"vulnerabilities": [
		{"cveID": "CVE-2025-48384", "vendorProject": "Git", "product": "Git", "vulnerabilityName": "Git Link Following Vulnerability",
		 "dateAdded": "2025-08-25", "dueDate": "2025-09-15", "requiredAction": "Apply mitigations.", "knownRansomwareCampaignUse": "Unknown"},
		{"cveID": "CVE-2024-0001", "vendorProject": "Acme", "product": "Cam100", "dateAdded": "2024-01-02", "dueDate": "2024-01-23", "knownRansomwareCampaignUse": "Known"},
		{"cveID": "X-1", "dateAdded": "2024-01-02", "dueDate": "2024-01-23"},
		{"cveID": "CVE-2024-0002", "dateAdded": "2024-13-02", "dueDate": "2024-01-23"}
	]}`

// FuzzParse checks that Parse never panics and that what it returns holds
// together: an error (saying what it cannot do) comes with no entries, the
// result counts what was returned and has one error per rejection, and
// every entry has a CVE id and both dates.
func FuzzParse(f *testing.F) {
	f.Add([]byte(sample))
	for _, s := range feedtest.EdgeJSON {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"vulnerabilities": null}`))
	f.Add([]byte(`{"vulnerabilities": {}}`))
	f.Add([]byte(`{"count": 1e999, "vulnerabilities": []}`))
	f.Add([]byte(`{"vulnerabilities": [1, "x", null, [], {"cveID": 5}, {"cveID": "CVE-1", "dateAdded": "2024-01-02", "dueDate": "2024-01-23"}]}`))
	f.Add([]byte(`{"vulnerabilities": [{"cveID": "CVE-\u0000", "dateAdded": "0000-01-01", "dueDate": "9999-12-31"}]}`))
	f.Add([]byte(strings.Replace(sample, `"2024-01-23"}`, `"2024-01-2`, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, res, err := Parse(bytes.NewReader(data))
		feedtest.Failed(t, err, len(ks), res)
		feedtest.Result(t, res, len(ks))
		for _, k := range ks {
			if !strings.HasPrefix(k.CVE, "CVE-") || k.DateAdded.IsZero() || k.DueDate.IsZero() {
				t.Fatalf("entry %+v", k)
			}
		}
	})
}

// TestParseBadEntry checks that an entry that does not decode is rejected
// with its index and the rest of the catalog goes through.
func TestParseBadEntry(t *testing.T) {
	ks, res, err := Parse(strings.NewReader(`{"vulnerabilities": [
		{"cveID": "CVE-2024-0001", "dateAdded": "2024-01-02", "dueDate": "2024-01-23"},
		{"cveID": 5, "dateAdded": "2024-01-02", "dueDate": "2024-01-23"},
		"x",
		{"cveID": "CVE-2024-0003", "dateAdded": "2024-01-02", "dueDate": "2024-01-23"}]}`))
	if err != nil || len(ks) != 2 || res.Rejected != 2 {
		t.Fatalf("%v %+v %+v", err, res, ks)
	}
	if !strings.HasPrefix(res.Errors[0], "entry 1: ") || !strings.HasPrefix(res.Errors[1], "entry 2: ") {
		t.Errorf("errors %q", res.Errors)
	}
}

// TestCorpusProperties checks what the fuzz target checks on the shared
// corpus's kev.json (skipped when the corpus is absent).
func TestCorpusProperties(t *testing.T) {
	fh := corpus.Open(t, "kev.json")
	ks, res, err := Parse(fh)
	if err != nil {
		t.Fatal(err)
	}
	feedtest.Result(t, res, len(ks))
}
