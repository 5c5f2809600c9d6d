package vigil

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestComputePriority runs the priority formula over the cases of
// testdata/priority/cases.json: inputs and the score they must give. Each
// result lists the five factors, and their points add up to the score
// before confidence.
func TestComputePriority(t *testing.T) {
	b, err := os.ReadFile("testdata/priority/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name  string         `json:"name"`
		In    PriorityInputs `json:"in"`
		Score int            `json:"score"`
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 10 {
		t.Fatalf("%d cases", len(cases))
	}
	for _, c := range cases {
		p := ComputePriority(c.In)
		if p.Score != c.Score {
			t.Errorf("%s: score %d, want %d (factors %+v)", c.Name, p.Score, c.Score, p.Factors)
		}
		var names []string
		for _, f := range p.Factors {
			names = append(names, f.Name)
		}
		if got := strings.Join(names, ","); got != "severity,criticality,exposure,blast_radius,confidence" {
			t.Errorf("%s: factors %s", c.Name, got)
		}
		if p.Confidence < 0.5 || p.Confidence > 1 || p.Factors[4].Points != p.Confidence {
			t.Errorf("%s: confidence %v, factor %v", c.Name, p.Confidence, p.Factors[4].Points)
		}
	}
}

// TestPriorityExplains checks that the factors say what they saw.
func TestPriorityExplains(t *testing.T) {
	p := ComputePriority(PriorityInputs{Severity: SeverityHigh, Criticality: CriticalitySafety, CriticalityWhy: "class plc",
		KEV: []string{"CVE-1", "CVE-2", "CVE-3", "CVE-4"}, InternetFacing: true, ExposureWhy: "talked with 203.0.113.9",
		Confidence: 0.8, ConfidenceWhy: "evidence from an API token", Devices: 3, BlastWhy: "devices in the incident"})
	var got []string
	for _, f := range p.Factors {
		got = append(got, f.Name+"="+f.Value)
	}
	want := []string{
		"severity=high",
		"criticality=safety-critical: class plc",
		"exposure=CVE-1, CVE-2, CVE-3 and 1 more known exploited; internet-facing: talked with 203.0.113.9",
		"blast_radius=3 devices: devices in the incident",
		"confidence=0.80: evidence from an API token",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("factors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if p.Score != 76 { // (45+20+25+5) × 0.8
		t.Errorf("score %d, want 76", p.Score)
	}
}
