package sigma

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil"
)

// TestConformance runs every testdata/<case>/: rule.yml is loaded (with
// config.yml's placeholders when present) and evaluated on each line of
// events.jsonl whatever its logsource; expected.jsonl says, per event
// line, whether the rule matches. A case with error.txt instead expects
// the rule to be rejected with an error containing that text. An
// expected line with "matches" also says what explains the match: the
// selections' fields, the event values and the rule values they matched.
func TestConformance(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/rule.yml")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no conformance cases: %v", err)
	}
	for _, rf := range dirs {
		dir := filepath.Dir(rf)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			cfg := DefaultConfig()
			if b, err := os.ReadFile(filepath.Join(dir, "config.yml")); err == nil {
				c, err := ParseConfig(b)
				if err != nil {
					t.Fatal(err)
				}
				cfg.Placeholders = c.Placeholders
			}
			rule, err := os.ReadFile(rf)
			if err != nil {
				t.Fatal(err)
			}
			rs, errs := LoadBytes(rf, rule, cfg)
			if want, err := os.ReadFile(filepath.Join(dir, "error.txt")); err == nil {
				w := strings.TrimSpace(string(want))
				if len(errs) != 1 || !strings.Contains(errs[0].Error(), w) {
					t.Fatalf("errors = %v, want one containing %q", errs, w)
				}
				return
			}
			if len(errs) > 0 {
				t.Fatalf("rule rejected: %v", errs)
			}
			f, err := os.Open(filepath.Join(dir, "events.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			res, _, err := rs.TestEvents(f)
			if err != nil {
				t.Fatal(err)
			}
			got := map[int]bool{}
			matches := map[int][]vigil.Match{}
			for _, r := range res {
				if r.Error != "" {
					t.Fatalf("event: %s", r.Error)
				}
				got[r.Line] = got[r.Line] || r.Matched
				if r.Matched {
					matches[r.Line] = append(matches[r.Line], r.Matches...)
				}
			}
			ef, err := os.Open(filepath.Join(dir, "expected.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			defer ef.Close()
			sc := bufio.NewScanner(ef)
			n := 0
			for sc.Scan() {
				var e struct {
					Line    int           `json:"line"`
					Match   bool          `json:"match"`
					Matches []vigil.Match `json:"matches"`
				}
				if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
					t.Fatal(err)
				}
				n++
				if got[e.Line] != e.Match {
					t.Errorf("event line %d: match = %v, want %v", e.Line, got[e.Line], e.Match)
				}
				if e.Matches != nil && !slices.Equal(matches[e.Line], e.Matches) {
					t.Errorf("event line %d: explained by %+v, want %+v", e.Line, matches[e.Line], e.Matches)
				}
			}
			if n == 0 {
				t.Fatal("expected.jsonl is empty")
			}
		})
	}
}
