// Package corpus finds the shared test corpus (../shared/corpus/intel from
// the repository root) for tests, skipping them when it is absent.
package corpus

import (
	"os"
	"path/filepath"
	"testing"
)

// Path returns the path of a corpus file, or skips the test when the
// corpus is absent.
func Path(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("repository root not found; corpus unavailable")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "corpus", "intel", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("corpus file %s absent: %v", p, err)
	}
	return p
}

// Open opens a corpus file for the test, closing it when the test ends, or
// skips the test when the corpus is absent.
func Open(t testing.TB, name string) *os.File {
	t.Helper()
	fh, err := os.Open(Path(t, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fh.Close() })
	return fh
}
