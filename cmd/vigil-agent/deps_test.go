package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies fails when the agent links a package outside the
// standard library other than this module's agent and wire packages: the
// agent must stay small and must never pull in server code.
func TestDependencies(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go tool in PATH")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/vigil-iot/vigil/"
	for _, p := range strings.Fields(string(out)) {
		rel, ok := strings.CutPrefix(p, mod)
		if ok && (rel == "wire" || rel == "agent" || strings.HasPrefix(rel, "agent/") || rel == "cmd/vigil-agent") {
			continue
		}
		t.Errorf("vigil-agent links %s: only the standard library, agent/... and wire are allowed", p)
	}
	// net/http alone adds ~0.9 MB on MIPS; the agent has its own client.
	out, err = exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "net/http" || p == "regexp" {
			t.Errorf("vigil-agent links %s, which the 7 MB size budget has no room for", p)
		}
	}
}

func TestCLI(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "vigil-agent ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	if code := run([]string{"enroll"}, &out, &errb); code != 2 {
		t.Fatalf("enroll without flags: exit %d", code)
	}
	if code := run([]string{"bogus"}, &out, &errb); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}
