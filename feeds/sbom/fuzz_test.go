package sbom

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/feeds/internal/feedtest"
)

// FuzzParse checks that Parse never panics and that what it returns holds
// together: an error (saying what it cannot do) comes with no components,
// the result counts the components returned and has one error per
// rejection, and every component has a name, a known type and source sbom.
func FuzzParse(f *testing.F) {
	f.Add(feedtest.File(f, "testdata/cam100-2.1.0.cdx.json"))
	f.Add(feedtest.File(f, "testdata/g2-4.2.0.spdx.json"))
	for _, s := range feedtest.EdgeJSON {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"bomFormat": "CycloneDX", "specVersion": "1.2"}`))
	f.Add([]byte(`{"bomFormat": "CycloneDX", "specVersion": 1.5}`))
	f.Add([]byte(`{"bomFormat": "CycloneDX", "specVersion": "1.5", "components": null}`))
	f.Add([]byte(`{"bomFormat": "CycloneDX", "specVersion": "1.4", "metadata": {"component": {"name": "x", "supplier": {"name": "s"}}},
		"components": [{"name": "a", "group": "g", "components": [{"components": [{"name": "b", "type": "device"}]}]}, 1]}`))
	f.Add([]byte(`{"spdxVersion": "SPDX-2.3", "documentDescribes": ["SPDXRef-a"], "packages": [{"SPDXID": "SPDXRef-a", "name": "fw", "primaryPackagePurpose": "FIRMWARE"},
		{"name": ""}, {"name": "p", "externalRefs": [{"referenceType": "cpe22Type", "referenceLocator": "cpe:/a:x:y"}, {"referenceType": "purl"}]}]}`))
	f.Add([]byte(`{"spdxVersion": "SPDX-2.", "packages": [null, {"name": "\u0000"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, res, err := Parse(bytes.NewReader(data))
		feedtest.Failed(t, err, len(s.Components), res)
		feedtest.Result(t, res, len(s.Components))
		for i, c := range s.Components {
			switch c.Type {
			case "library", "firmware", "operating-system", "application", "device":
			default:
				t.Fatalf("component %d has type %q", i, c.Type)
			}
			if c.Name == "" || c.Source != "sbom" {
				t.Fatalf("component %d: %+v", i, c)
			}
		}
	})
}

// TestParseDeepNesting checks that components nested deeper than maxDepth
// are rejected, once, with where they are, and that what is above them and
// beside them goes through; the path of a component in an error (and the
// memory to build it) stays bounded however deep the document nests.
func TestParseDeepNesting(t *testing.T) {
	n := 4000
	doc := `{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [` +
		strings.Repeat(`{"name": "c", "components": [`, n) + strings.Repeat(`]}`, n) + `, {"name": "beside"}]}`
	s, res, err := Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Components) != maxDepth+1 || res.Imported != maxDepth+1 || res.Rejected != 1 || !strings.Contains(res.Errors[0], "nested deeper than") {
		t.Fatalf("%d components, result %+v", len(s.Components), res)
	}
	if len(res.Errors[0]) > 100*maxDepth {
		t.Errorf("error of %d bytes", len(res.Errors[0]))
	}
}

// TestParseBadComponent checks that a component or package of the wrong
// shape (a version as a number) is rejected with where it is and the rest
// go through.
func TestParseBadComponent(t *testing.T) {
	s, res, err := Parse(strings.NewReader(`{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [
		{"name": "a", "version": "1", "components": [{"name": "b", "version": 2.1}, {"name": "c"}]}, {"name": "d"}]}`))
	if err != nil || len(s.Components) != 3 || res.Rejected != 1 || !strings.HasPrefix(res.Errors[0], "components[0].components[0]: cannot decode") {
		t.Fatalf("cyclonedx: %v %+v", err, res)
	}
	s, res, err = Parse(strings.NewReader(`{"spdxVersion": "SPDX-2.3", "packages": [{"name": "a", "versionInfo": 1}, {"name": "b"}]}`))
	if err != nil || len(s.Components) != 1 || res.Rejected != 1 || !strings.HasPrefix(res.Errors[0], "packages[0]: cannot decode") {
		t.Fatalf("spdx: %v %+v", err, res)
	}
}
