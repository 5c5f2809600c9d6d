package threshold_test

import (
	"context"
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/internal/testfiles"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect/threshold"
)

// fuzzRuleSeeds are hand-made edge cases of threshold rule files.
var fuzzRuleSeeds = []string{
	"id: a\ntype: threshold\nfield: host.cpu.pct\nop: '>'\nvalue: 90\nconsecutive: 3\n---\nid: b\ntype: count\ncount: 2\nwindow: 1ns\n",
	"id: a\ntype: threshold\nfield: f\nop: '=='\nvalue: [x]\n",
	"id: a\ntype: threshold\nfield: f\nop: ne\nvalue: NaN\nconsecutive: 99999999999999999999\n",
	"id: a\ntype: count\ncount: -1\nwindow: -5m\nwhere: {kind: [auth, 1, 1.0, 1e400, '0x10']}\nwhere_not: {'': x}\ngroup_by: [device.id, '', a, a]\nentities: {source.ip: 'ip:x', '': ''}\n",
	"id: a\ntype: count\ncount: 1\nwindow: 9999999999h\n",
	"id: &x a\ntype: count\ncount: 1\nwindow: 1s\ntags: [*x, '', ' ']\nlevel: bogus\n",
	"- id: a\n---\n42\n---\n\n---\n~\n---\nid: 'bad id'\n",
	"id: a\nid: b\n",
	"id: a\nunknown: 1\ntype: count\n",
	"id: a\ntype: count\ncount: 1\nwindow: 1s\nwhere: {kind: {nested: map}}\n",
	"id: a\ntype: count\n\tcount: 1\n",
	"id: \"\\x00\"\ntype: \xff\n",
	"%YAML 1.1\n---\nid: a\n...\n",
	"id: a\ntype: count\ncount: 1\nwindow: 1s\nwhere: !!binary aGVsbG8=\n",
	"a: &a [*a]\n",
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// fuzzEvents are the events the rules that load are evaluated on.
func fuzzEvents() []*vigil.Event {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	var out []*vigil.Event
	for i := range 12 {
		out = append(out, &vigil.Event{
			ID: "e" + string(rune('a'+i)), Time: t0.Add(time.Duration(i%5) * time.Second), DeviceID: []string{"cam-1", "cam-2", ""}[i%3],
			Kind: []string{vigil.KindAuth, vigil.KindHealth, vigil.KindNetwork}[i%3], Outcome: vigil.OutcomeFailure,
			Network: &vigil.Network{SrcIP: netip.MustParseAddr("10.0.0.7"), DstPort: 23},
			Fields: map[string]any{"host.cpu.pct": float64(80 + i*2), "user.name": "root", "f": "x", "a": []any{"x", 1.0},
				"source.ip": "10.0.0.7", "process.name": nil},
		})
	}
	return out
}

// FuzzParse parses arbitrary threshold rule files: Parse must not panic;
// each error must be a *LoadError (code EINVALID) naming the file, with a
// message; each rule returned must have a valid id, the file and a line,
// a known type and parameters in range; and a detector running the rules
// must take a few events without panicking.
func FuzzParse(f *testing.F) {
	for _, b := range testfiles.Read(f, "testdata/*/rules.yaml", "testdata/invalid/*.yaml", "testdata/default_rules/rules_dir/*.yaml", "../../rules/threshold/*.yaml") {
		f.Add(b)
	}
	for _, s := range fuzzRuleSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz/rules.yaml"
		start := time.Now()
		rules, errs := threshold.Parse(name, data)
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("parsing %d bytes took %v", len(data), d)
		}
		for _, err := range errs {
			var le *threshold.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %v (%T) is not a *LoadError", err, err)
			}
			if le.File != name || !strings.HasPrefix(err.Error(), name+":") {
				t.Errorf("error %q does not name the file", err)
			}
			if le.Line < 0 || strings.TrimSpace(le.Msg) == "" {
				t.Errorf("error %q: line %d, message %q", err, le.Line, le.Msg)
			}
			if vigil.ErrorCode(err) != vigil.EINVALID {
				t.Errorf("error %q has code %q", err, vigil.ErrorCode(err))
			}
		}
		for _, r := range rules {
			if !idRE.MatchString(r.ID) {
				t.Errorf("rule with id %q", r.ID)
			}
			if r.File != name || r.Line <= 0 || r.Title == "" {
				t.Errorf("rule %q: file %q, line %d, title %q", r.ID, r.File, r.Line, r.Title)
			}
			switch r.Type {
			case threshold.TypeThreshold:
				if r.Field == "" || r.Op == "" || r.Consecutive < 1 || r.Consecutive > threshold.MaxConsecutive {
					t.Errorf("threshold rule %q: field %q, op %q, consecutive %d", r.ID, r.Field, r.Op, r.Consecutive)
				}
			case threshold.TypeCount:
				if r.Count < 1 || r.Count > threshold.MaxCount || r.Window <= 0 {
					t.Errorf("count rule %q: count %d, window %v", r.ID, r.Count, r.Window)
				}
			default:
				t.Errorf("rule %q of type %q", r.ID, r.Type)
			}
		}
		if len(rules) == 0 {
			return
		}
		d := threshold.New(rules, threshold.Options{MaxGroups: 4, MaxEvidence: 4})
		for i, ev := range fuzzEvents() {
			d.Detect(context.Background(), i%2, ev, func(a vigil.Alert) {
				if a.RuleID == "" {
					t.Errorf("alert without a rule id: %+v", a)
				}
			})
		}
	})
}

// TestYAMLErrorLine checks that errors of YAML's reader, which name no
// line themselves, point at the offending line.
func TestYAMLErrorLine(t *testing.T) {
	for _, c := range []struct {
		data string
		line int
	}{
		{"id: a\ntitle: b\ntype: \x01count\n", 3},
		{"id: a\ntitle: \xff\n", 2},
		{"\x00", 1},
	} {
		_, errs := threshold.Parse("r.yaml", []byte(c.data))
		if len(errs) == 0 {
			t.Fatalf("%q: no error", c.data)
		}
		var le *threshold.LoadError
		if !errors.As(errs[0], &le) || le.File != "r.yaml" || le.Line != c.line {
			t.Errorf("%q: error %v, want line %d", c.data, errs[0], c.line)
		}
	}
}
