package wire

import (
	"bytes"
	"encoding/json"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// docExample returns the fenced block that follows the marker
// <!-- vigil:example name --> in docs/agent-protocol.md.
func docExample(t *testing.T, name string) []byte {
	t.Helper()
	doc, err := os.ReadFile("../docs/agent-protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	marker := "<!-- vigil:example " + name + " -->\n"
	_, rest, ok := strings.Cut(string(doc), marker)
	if !ok {
		t.Fatalf("docs/agent-protocol.md has no %q", marker)
	}
	nl := strings.IndexByte(rest, '\n')
	if !strings.HasPrefix(rest, "```") || nl < 0 {
		t.Fatalf("no fenced block after %q", marker)
	}
	body, _, ok := strings.Cut(rest[nl+1:], "\n```")
	if !ok {
		t.Fatalf("unterminated block after %q", marker)
	}
	return []byte(body + "\n")
}

func TestDocExamples(t *testing.T) {
	rj, err := DecodeReport("application/json", bytes.NewReader(docExample(t, "report-json")), 1<<20)
	if err != nil {
		t.Fatalf("JSON example: %v", err)
	}
	rx, err := DecodeReport("application/xml", bytes.NewReader(docExample(t, "report-xml")), 1<<20)
	if err != nil {
		t.Fatalf("XML example: %v", err)
	}
	for _, r := range []*Report{rj, rx} {
		if err := r.Validate(); err != nil {
			t.Fatalf("example does not validate: %v", err)
		}
	}
	if canonical(t, rj) != canonical(t, rx) {
		t.Fatal("the JSON and XML examples of the doc are not the same report")
	}
	td, err := DecodeReportBytes(FormatJSON, readFile(t, "testdata/report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if canonical(t, rj) != canonical(t, td) {
		t.Fatal("the doc's example differs from testdata/report.json")
	}
	var resp Response
	dec := json.NewDecoder(bytes.NewReader(docExample(t, "response")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&resp); err != nil {
		t.Fatalf("response example: %v", err)
	}
	if resp.Accepted != 5 || len(resp.Rejected) != 1 || *resp.Rejected[0].Index != 1 {
		t.Fatalf("response example: %+v", resp)
	}
}

// The agent binary imports this package: it must need nothing but the
// standard library.
func TestStandardLibraryOnly(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s: wire must use the standard library only", f, p)
			}
		}
	}
}
