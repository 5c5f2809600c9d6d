// Package testfiles reads the files tests seed fuzz targets with.
package testfiles

import (
	"os"
	"path/filepath"
	"testing"
)

// Read returns the contents of the files matching any of the glob
// patterns, in pattern then name order. It fails the test when a pattern
// is malformed, a file cannot be read, or nothing matched at all.
func Read(tb testing.TB, patterns ...string) [][]byte {
	tb.Helper()
	var files []string
	for _, g := range patterns {
		m, err := filepath.Glob(g)
		if err != nil {
			tb.Fatalf("cannot match %q: %v", g, err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		tb.Fatalf("no file matches %q", patterns)
	}
	out := make([][]byte, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}
