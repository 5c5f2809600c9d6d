package baseline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil"
)

var update = flag.Bool("update", false, "rewrite the expected files of testdata/<case>")

// readEvents reads NDJSON events.
func readEvents(t testing.TB, file string) []vigil.Event {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var evs []vigil.Event
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var ev vigil.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%s:%d: %v", file, n, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// summary is one line of an expected file: what an alert says, without
// what changes from run to run.
func summary(a vigil.Alert) string {
	return fmt.Sprintf("%s %s entity=%v peer=%v judged=%v", a.RuleID, a.Severity, a.Fields["baseline.entity"], a.Fields["baseline.peer"], a.Fields["baseline.judged_against"])
}

// runCase learns from learn, finishes learning, detects over input and
// returns the alerts.
func runCase(d *Detector, learn, input []vigil.Event) []vigil.Alert {
	for i := range learn {
		d.Learn(0, &learn[i])
	}
	d.FinishLearning()
	var out []vigil.Alert
	for i := range input {
		ev := input[i]
		d.Enrich(context.Background(), 0, &ev)
		d.Detect(context.Background(), 0, &ev, func(a vigil.Alert) { out = append(out, a) })
	}
	return out
}

// TestCases runs testdata/<case>/{learn.jsonl,input.jsonl} and compares
// the alerts with testdata/<case>/expected (-update rewrites it).
func TestCases(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/*/input.jsonl")
	if len(dirs) < 5 {
		t.Fatalf("want at least 5 cases, have %d", len(dirs))
	}
	for _, in := range dirs {
		dir := filepath.Dir(in)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			alerts := runCase(New(Options{}), readEvents(t, filepath.Join(dir, "learn.jsonl")), readEvents(t, in))
			var lines []string
			for _, a := range alerts {
				lines = append(lines, summary(a))
				for _, k := range []string{"baseline.feature", "baseline.observed", "baseline.expected", "baseline.judged_against", "baseline.learned_seconds", "baseline.samples", "explanation"} {
					if _, ok := a.Fields[k]; !ok {
						t.Errorf("alert %s has no %s: %v", a.RuleID, k, a.Fields)
					}
				}
			}
			sort.Strings(lines)
			got := strings.Join(lines, "\n")
			if got != "" {
				got += "\n"
			}
			file := filepath.Join(dir, "expected")
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("alerts differ from %s (-update rewrites it)\ngot:\n%swant:\n%s", file, got, want)
				for _, a := range alerts {
					t.Logf("%s: %s", a.RuleID, a.Fields["explanation"])
				}
			}
		})
	}
}
