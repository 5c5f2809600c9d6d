package graph

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/extract")

// TestExtract runs the built-in rules over each testdata/extract/<case>/
// events.json and compares what they show with want.txt: one line per
// relation, then one per entity (-update rewrites want.txt).
func TestExtract(t *testing.T) {
	dirs, err := filepath.Glob("testdata/extract/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no test cases: %v", err)
	}
	x := DefaultExtractor()
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, "events.json"))
			if err != nil {
				t.Fatal(err)
			}
			var evs []vigil.Event
			if err := json.Unmarshal(b, &evs); err != nil {
				t.Fatalf("events.json: %v", err)
			}
			batch := NewBatch()
			for i := range evs {
				x.Add(batch, &evs[i])
			}
			got := render(batch.Flush())
			wantFile := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs (-update rewrites it)\n got:\n%s\nwant:\n%s", wantFile, got, want)
			}
		})
	}
}

func render(b store.GraphBatch) string {
	var s strings.Builder
	ts := func(t time.Time) string { return t.UTC().Format("15:04:05.000") }
	for _, r := range b.Relations {
		fmt.Fprintf(&s, "%s %s %s  n=%d %s..%s %s..%s\n", r.From, r.Rel, r.To, r.Count, ts(r.FirstSeen), ts(r.LastSeen), r.FirstEvent, r.LastEvent)
	}
	for _, e := range b.Entities {
		fmt.Fprintf(&s, "entity %s  n=%d %s..%s\n", e.Key, e.Count, ts(e.FirstSeen), ts(e.LastSeen))
	}
	return s.String()
}

// TestBatchAcrossFlushes checks that a batch starts empty after Flush.
func TestBatchAcrossFlushes(t *testing.T) {
	x := DefaultExtractor()
	b := NewBatch()
	ev := vigil.Event{ID: "a", Time: time.Unix(100, 0), DeviceID: "d", Kind: vigil.KindAuth, Outcome: "success", Fields: map[string]any{"user.name": "root"}}
	x.Add(b, &ev)
	if b.Events() != 1 || b.Len() != 1 {
		t.Fatalf("after one event: %d events, %d relations", b.Events(), b.Len())
	}
	if got := b.Flush(); len(got.Relations) != 1 || len(got.Entities) != 2 {
		t.Fatalf("flush: %+v", got)
	}
	if got := b.Flush(); len(got.Relations) != 0 || len(got.Entities) != 0 || b.Events() != 0 {
		t.Fatalf("second flush not empty: %+v", got)
	}
}

// TestParseRulesErrors checks that bad rules are refused with their place.
func TestParseRulesErrors(t *testing.T) {
	f := func(src, want string) {
		t.Helper()
		_, err := ParseRules("test.yaml", []byte(src))
		if err == nil || vigil.ErrorCode(err) != vigil.EINVALID || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRules(%q): %v, want EINVALID containing %q", src, err, want)
		}
	}
	f("a: b", "must be a list")
	f("- {from: {type: device, field: device.id}, rel: x, to: {type: nope, field: a}}", `test.yaml:1: rule 1: entity type "nope"`)
	f("- {from: {type: device, field: device.id}, rel: Bad, to: {type: ip, field: a}}", `rel "Bad"`)
	f("- {from: {type: device, field: device.id}, rel: x, to: {type: ip}}", "exactly one of field and value")
	f("- {from: {type: device, field: device.id}, rel: x, to: {type: ip, field: a, decode: zip}}", `decode "zip"`)
	f("- {from: {type: device, field: device.id}, rel: x, to: {type: ip, field: a, normalize: up}}", `normalize "up"`)
	f("- {from: {type: device, field: device.id}, rel: x, to: {type: ip, value: \"{a\"}}", "unmatched {")
	f("- {from: {type: device, field: device.id}, rel: x, to: {type: ip, value: \"a}\"}}", "unmatched }")
	f("- {from: {type: device, field: device.id}, rel: x, to: {type: ip, value: \"plain\"}}", "names no field")
	f("- {from: {type: device, field: device.id}, rel: x, to: {type: ip, field: a}, when: {event.kind: []}}", "at least one value")
	f("- {from: {type: device, field: device.id}, rel: x, to: {type: ip, field: a}, wen: {}}", "field wen not found")
	f("- [", "cannot parse")
}

// FuzzParseRules checks that no input makes ParseRules panic, and that
// rules it accepts run on an event without panicking.
func FuzzParseRules(f *testing.F) {
	f.Add(string(DefaultRules))
	f.Add("- {from: {type: device, field: device.id}, rel: x, to: {type: broker, value: \"{a}:{b}\"}}")
	f.Add("- {from: {type: host, field: m, decode: url_hosts}, rel: x, to: {type: software, field: s, decode: components}}")
	ev := vigil.Event{ID: "e", Time: time.Unix(1, 0), DeviceID: "d", Kind: "auth", Fields: map[string]any{
		"m": "http://[::1]/x ftp://u@h.example/", "s": `[{"name":"a","version":"1"}]`, "a": "1", "b": []any{"x", 2.0}}}
	f.Fuzz(func(t *testing.T, src string) {
		rules, err := ParseRules("fuzz", []byte(src))
		if err != nil {
			return
		}
		b := NewBatch()
		NewExtractor(rules).Add(b, &ev)
		if err := store.CheckGraphBatch(b.Flush()); err != nil {
			t.Fatalf("accepted rules made a bad batch: %v", err)
		}
	})
}
