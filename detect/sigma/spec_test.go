package sigma

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSpecExamples compiles the examples of the specification's tests
// folder: rules and filters as they are; correlations together with stub
// rules named after the rules they reference (the examples do not ship
// them).
func TestSpecExamples(t *testing.T) {
	c := corpusDir(t)
	files, _ := filepath.Glob(filepath.Join(c, "sigma-spec", "tests", "schema", "*", "*.yml"))
	if len(files) == 0 {
		t.Skip("no spec examples found")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(filepath.Dir(f)) + "/" + filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			src := string(b)
			if strings.Contains(filepath.Dir(f), "correlation") {
				rs, _ := LoadBytes(f, b, nil)
				if len(rs.Correlations) != 0 {
					t.Fatalf("correlation linked without its rules")
				}
				var stubs strings.Builder
				for _, ref := range corrRefs(t, b) {
					fmt.Fprintf(&stubs, "title: stub %[1]s\nname: %[1]s\nlogsource:\n    product: test\ndetection:\n    selection:\n        rule: %[1]s\n    condition: selection\n---\n", ref)
				}
				src = stubs.String() + src
			}
			rs, errs := LoadBytes(f, []byte(src), nil)
			if len(errs) > 0 {
				t.Fatalf("errors: %v", errs)
			}
			if rs.Total == 0 || rs.Rejected != 0 {
				t.Fatalf("total=%d rejected=%d", rs.Total, rs.Rejected)
			}
		})
	}
}

// corrRefs returns the rule references of a correlation document.
func corrRefs(t *testing.T, b []byte) []string {
	rs := NewRuleSet(nil)
	rs.add("x.yml", b)
	var refs []string
	for _, c := range rs.Correlations {
		refs = append(refs, c.Correlation.RuleRefs...)
	}
	if len(refs) == 0 {
		t.Fatal("no correlation parsed")
	}
	return refs
}
