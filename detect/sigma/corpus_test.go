package sigma

import (
	"os"
	"path/filepath"
	"testing"
)

// corpusDir returns ../shared/corpus relative to the repository root, or
// skips the test when it is absent.
func corpusDir(t testing.TB) string {
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
			t.Skip("repository root not found; skipping corpus test")
		}
		dir = parent
	}
	c := filepath.Join(dir, "..", "shared", "corpus")
	if _, err := os.Stat(filepath.Join(c, "sigma")); err != nil {
		t.Skipf("Sigma corpus not found at %s; skipping", c)
	}
	return c
}

// TestCorpusCompiles compiles every rule of the SigmaHQ corpus. Rules that
// violate the spec are listed in docs/sigma.md; their number is asserted.
func TestCorpusCompiles(t *testing.T) {
	c := corpusDir(t)
	dirs, _ := filepath.Glob(filepath.Join(c, "sigma", "rules*"))

	// With the default config the whole corpus compiles; the
	// rules-placeholder rules expand placeholders it declares without
	// values.
	rs, errs := LoadDirs(dirs, nil)
	if rs.Total != 3780 || rs.Rejected != wantCorpusRejected || rs.Unvalued != wantUnvalued {
		t.Errorf("default config: total=%d rejected=%d unvalued=%d, want 3780, %d and %d", rs.Total, rs.Rejected, rs.Unvalued, wantCorpusRejected, wantUnvalued)
	}
	for _, e := range errs {
		t.Errorf("unexpected rejection: %v", e)
	}

	// With placeholder values, the whole corpus compiles.
	b, err := os.ReadFile("testdata/corpus-placeholders.yml")
	if err != nil {
		t.Fatal(err)
	}
	ph, err := ParseConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	rs, errs = LoadDirs(dirs, ph)
	for _, e := range errs {
		t.Logf("rejected: %v", e)
	}
	t.Logf("files=%d total=%d compiled=%d rejected=%d", rs.Files, rs.Total, rs.Compiled(), rs.Rejected)
	if rs.Total != 3780 {
		t.Errorf("total = %d, want 3780", rs.Total)
	}
	if rs.Rejected != wantCorpusRejected || rs.Unvalued != 0 {
		t.Errorf("rejected = %d (want %d, see docs/sigma.md), unvalued = %d (want 0)", rs.Rejected, wantCorpusRejected, rs.Unvalued)
	}
	if rs.Compiled()+rs.Rejected != rs.Total {
		t.Errorf("compiled %d + rejected %d != total %d", rs.Compiled(), rs.Rejected, rs.Total)
	}
}

// wantCorpusRejected is the number of corpus rules that violate the spec.
const wantCorpusRejected = 0

// wantUnvalued is the number of rules-placeholder rules whose expand
// placeholders the default config declares without values.
const wantUnvalued = 25

func TestParseConfigKeepsDefaults(t *testing.T) {
	c, err := ParseConfig([]byte("placeholders:\n  Admins: [root]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Kinds["process"]) == 0 || len(c.FieldMaps) == 0 || c.Placeholders["Admins"][0] != "root" {
		t.Errorf("config = %+v", c)
	}
	// The embedded placeholders stay declared unless the file names them.
	if vals, ok := c.Placeholders["Workstations"]; !ok || len(vals) != 0 {
		t.Errorf("Workstations = %v, %v; want declared without values", vals, ok)
	}
	c, err = ParseConfig([]byte("placeholders:\n  Workstations: [ws*]\n"))
	if err != nil || len(c.Placeholders["Workstations"]) != 1 {
		t.Errorf("override: %v %v", c.Placeholders["Workstations"], err)
	}
	if _, err := ParseConfig([]byte("kinds: [")); err == nil {
		t.Error("bad YAML accepted")
	}
}
