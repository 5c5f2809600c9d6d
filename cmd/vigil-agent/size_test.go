package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCrossCompileSize runs agent/crosscheck.sh: every target builds with
// CGO_ENABLED=0 and stays within 7 MB stripped. Slow (a cold cache
// compiles the standard library seven times): skipped with -short.
func TestCrossCompileSize(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiling seven targets is slow; run without -short")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go tool in PATH")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "agent/crosscheck.sh", t.TempDir())
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	out, err := cmd.CombinedOutput()
	t.Logf("sizes:\n%s", out)
	if err != nil {
		t.Fatalf("crosscheck failed: %v", err)
	}
	if n := strings.Count(string(out), " ok"); n != 7 {
		t.Fatalf("%d targets ok, want 7", n)
	}
}
