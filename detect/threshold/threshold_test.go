package threshold_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
	"github.com/vigil-iot/vigil/detect"
	"github.com/vigil-iot/vigil/detect/threshold"
)

var update = flag.Bool("update", false, "rewrite testdata/<case>/expected.jsonl from the detector's output")

// partitions is the number of partitions the data-driven cases spread
// devices over, to exercise per-partition state.
const partitions = 4

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// expected is what a case checks of each alert.
type expected struct {
	RuleID         string    `json:"rule_id"`
	DeviceID       string    `json:"device_id"`
	Severity       string    `json:"severity"`
	Techniques     []string  `json:"techniques,omitempty"`
	Entities       []string  `json:"entities,omitempty"`
	Evidence       int       `json:"evidence"`
	FirstEventTime time.Time `json:"first_event_time"`
	LastEventTime  time.Time `json:"last_event_time"`
}

// TestCases runs every testdata/<case>/: the rules of rules.yaml (or of the
// directory named in rules_dir) over events.jsonl, in order, compared with
// expected.jsonl. Run with -update to rewrite expected.jsonl.
func TestCases(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/events.jsonl")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no test cases found: %v", err)
	}
	for _, p := range dirs {
		dir := filepath.Dir(p)
		t.Run(filepath.Base(dir), func(t *testing.T) { runCase(t, dir) })
	}
}

func runCase(t *testing.T, dir string) {
	var rules []*threshold.Rule
	var errs []error
	if b, err := os.ReadFile(filepath.Join(dir, "rules_dir")); err == nil {
		rules, errs = threshold.LoadDir(filepath.Join(dir, strings.TrimSpace(string(b))))
	} else {
		rules, errs = threshold.LoadFiles(filepath.Join(dir, "rules.yaml"))
	}
	if len(errs) > 0 {
		t.Fatalf("cannot load rules: %v", errors.Join(errs...))
	}
	events := readEvents(t, filepath.Join(dir, "events.jsonl"))
	st := detect.NewStage(nil, []detect.Detector{threshold.New(rules, threshold.Options{})},
		detect.StageOptions{Clock: fixedClock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}})
	var got bytes.Buffer
	for i := range events {
		p := bus.Partition(events[i].DeviceID, partitions)
		for _, a := range st.Evaluate(context.Background(), p, events[i:i+1]) {
			checkAlert(t, a, rules)
			line, err := json.Marshal(expected{
				RuleID: a.RuleID, DeviceID: a.DeviceID, Severity: a.Severity.String(),
				Techniques: a.Techniques, Entities: a.Entities, Evidence: len(a.EventIDs),
				FirstEventTime: a.FirstEventTime.UTC(), LastEventTime: a.LastEventTime.UTC(),
			})
			if err != nil {
				t.Fatal(err)
			}
			got.Write(line)
			got.WriteByte('\n')
		}
	}
	want := filepath.Join(dir, "expected.jsonl")
	if *update {
		if err := os.WriteFile(want, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	wb, err := os.ReadFile(want)
	if err != nil {
		t.Fatalf("cannot read expected alerts (run with -update to create them): %v", err)
	}
	if g, w := strings.TrimSpace(got.String()), strings.TrimSpace(string(wb)); g != w {
		t.Errorf("alerts differ from %s\n got:\n%s\nwant:\n%s", want, g, w)
	}
}

// checkAlert checks what every alert must hold, whatever the case.
func checkAlert(t *testing.T, a vigil.Alert, rules []*threshold.Rule) {
	t.Helper()
	i := slices.IndexFunc(rules, func(r *threshold.Rule) bool { return r.ID == a.RuleID })
	if i < 0 {
		t.Fatalf("alert of unknown rule %q", a.RuleID)
	}
	r := rules[i]
	if a.ID == "" || a.Detector != threshold.Name || a.Count != 1 || a.Created.IsZero() {
		t.Errorf("alert defaults not filled: %+v", a)
	}
	if a.Title != r.Title || a.Severity != r.Level || !slices.Equal(a.Tags, r.Tags) {
		t.Errorf("alert does not carry its rule's title, level and tags: %+v", a)
	}
	if !strings.HasPrefix(a.DedupKey, "threshold:"+r.ID+":"+a.DeviceID) {
		t.Errorf("dedup key %q", a.DedupKey)
	}
	if a.FirstEventTime.After(a.LastEventTime) {
		t.Errorf("first event time %v after last %v", a.FirstEventTime, a.LastEventTime)
	}
}

func readEvents(t *testing.T, path string) []vigil.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []vigil.Event
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		var ev vigil.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		out = append(out, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestInvalid loads every testdata/invalid/<case>.yaml, whose first line
// is "# error: <substring of the expected error>".
func TestInvalid(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(files) == 0 {
		t.Fatal("no invalid cases")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(b), "\n")
			want, ok := strings.CutPrefix(first, "# error: ")
			if !ok {
				t.Fatalf("first line must be '# error: <substring>', is %q", first)
			}
			want = strings.ReplaceAll(want, "FILE", f)
			_, errs := threshold.LoadFiles(f)
			if len(errs) == 0 {
				t.Fatalf("no error, want one containing %q", want)
			}
			var msgs []string
			for _, e := range errs {
				msgs = append(msgs, e.Error())
				if vigil.ErrorCode(e) != vigil.EINVALID {
					t.Errorf("error %q has code %q, want %q", e, vigil.ErrorCode(e), vigil.EINVALID)
				}
			}
			if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, want) }) {
				t.Errorf("errors %q do not contain %q", msgs, want)
			}
		})
	}
}

// TestLoadDirKeepsGoodRules checks that bad files and bad rules do not
// stop the good ones.
func TestLoadDirKeepsGoodRules(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", "id: a\ntype: count\ncount: 1\nwindow: 1m\n---\nid: b\ntype: count\ncount: 0\nwindow: 1m\n---\nid: c\ntype: threshold\nfield: x\nop: '>'\nvalue: 1\n")
	write("b.yml", "id: d\ntype: [\n")
	write("c.yaml", "id: a\ntype: count\ncount: 2\nwindow: 1m\n")
	write("notes.txt", "not a rule")
	rules, errs := threshold.LoadDir(dir)
	var ids []string
	for _, r := range rules {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, []string{"a", "c"}) {
		t.Errorf("rules %v, want [a c]", ids)
	}
	want := []string{
		filepath.Join(dir, "a.yaml") + ":8: count must be between 1 and 10000, not 0",
		filepath.Join(dir, "b.yml") + ":2: ",
		filepath.Join(dir, "c.yaml") + `:1: duplicate rule id "a" (first defined at ` + filepath.Join(dir, "a.yaml") + ":1)",
	}
	if len(errs) != len(want) {
		t.Fatalf("errors %v, want %d", errs, len(want))
	}
	for i, e := range errs {
		if !strings.HasPrefix(e.Error(), want[i]) {
			t.Errorf("error %d is %q, want it to start with %q", i, e, want[i])
		}
	}
	if _, errs := threshold.LoadDir(filepath.Join(dir, "missing")); len(errs) != 1 {
		t.Errorf("missing directory: errors %v", errs)
	}
}

// TestDefaultRules loads the rules shipped in rules/threshold.
func TestDefaultRules(t *testing.T) {
	rules, errs := threshold.LoadDir("../../rules/threshold")
	if len(errs) > 0 {
		t.Fatalf("shipped rules do not load: %v", errors.Join(errs...))
	}
	if len(rules) < 5 {
		t.Fatalf("%d shipped rules, want at least 5", len(rules))
	}
	for _, r := range rules {
		if r.Title == r.ID || r.Description == "" {
			t.Errorf("%s: shipped rules need a title and a description", r.ID)
		}
		if !strings.HasPrefix(r.ID, "vigil-") {
			t.Errorf("%s: shipped rule ids start with vigil-", r.ID)
		}
	}
}

func event(dev string, at time.Time, kind, outcome string, fields map[string]any) vigil.Event {
	return vigil.Event{ID: vigil.NewID(), DeviceID: dev, Time: at, Kind: kind, Outcome: outcome, Fields: fields}
}

func mustRules(t *testing.T, src string) []*threshold.Rule {
	t.Helper()
	rules, errs := threshold.Parse("test.yaml", []byte(src))
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	return rules
}

// TestEvidenceBounded checks MaxEvidence and the evidence kept.
func TestEvidenceBounded(t *testing.T) {
	rules := mustRules(t, "id: many\ntype: count\nwhere: {kind: auth}\ncount: 120\nwindow: 1h\n")
	d := threshold.New(rules, threshold.Options{MaxEvidence: 50})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var alerts []vigil.Alert
	var ids []string
	for i := range 120 {
		ev := event("d1", t0.Add(time.Duration(i)*time.Second), "auth", "failure", nil)
		ids = append(ids, ev.ID)
		d.Detect(context.Background(), 0, &ev, func(a vigil.Alert) { alerts = append(alerts, a) })
	}
	if len(alerts) != 1 {
		t.Fatalf("%d alerts, want 1", len(alerts))
	}
	a := alerts[0]
	if !slices.Equal(a.EventIDs, ids[70:]) {
		t.Errorf("evidence is not the 50 most recent events: %d ids", len(a.EventIDs))
	}
	if !a.FirstEventTime.Equal(t0) || !a.LastEventTime.Equal(t0.Add(119*time.Second)) {
		t.Errorf("first %v last %v", a.FirstEventTime, a.LastEventTime)
	}
	if a.Fields["count"] != 120 || a.Fields["evidence_truncated"] != 70 {
		t.Errorf("fields %v", a.Fields)
	}
}

// TestGroupsBounded checks that groups beyond MaxGroups are evicted and
// counted.
func TestGroupsBounded(t *testing.T) {
	rules := mustRules(t, "id: by-ip\ntype: count\nwhere: {kind: auth}\ngroup_by: [source.ip]\ncount: 2\nwindow: 1m\n")
	reg := prometheus.NewRegistry()
	d := threshold.New(rules, threshold.Options{MaxGroups: 3, Registerer: reg})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var alerts []vigil.Alert
	emit := func(a vigil.Alert) { alerts = append(alerts, a) }
	send := func(ip string, s int) {
		ev := event("d1", t0.Add(time.Duration(s)*time.Second), "auth", "failure", map[string]any{"source.ip": ip})
		d.Detect(context.Background(), 0, &ev, emit)
	}
	send("10.0.0.1", 0)
	send("10.0.0.2", 1)
	send("10.0.0.3", 2)
	send("10.0.0.4", 3) // evicts 10.0.0.1, the least recently updated
	send("10.0.0.1", 4) // a new group again (evicts 10.0.0.2): no alert
	if len(alerts) != 0 {
		t.Fatalf("alerts after eviction: %+v", alerts)
	}
	send("10.0.0.4", 5)
	if len(alerts) != 1 || alerts[0].Fields["source.ip"] != "10.0.0.4" {
		t.Fatalf("alerts %+v, want one for 10.0.0.4", alerts)
	}
	if n := counterValue(t, reg, "vigil_threshold_group_evictions_total", "rule", "by-ip"); n != 2 {
		t.Errorf("evictions %v, want 2", n)
	}
}

// counterValue returns the value of a counter with one label.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestPartitionsConcurrent runs partitions concurrently (run with -race):
// each partition owns its devices and raises its own alerts.
func TestPartitionsConcurrent(t *testing.T) {
	rules := mustRules(t, `
id: brute
type: count
where: {kind: auth, outcome: failure}
count: 5
window: 60s
---
id: cpu
type: threshold
where: {kind: health}
field: host.cpu.pct
op: ">"
value: 90
consecutive: 3
`)
	st := detect.NewStage(nil, []detect.Detector{threshold.New(rules, threshold.Options{})}, detect.StageOptions{})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const parts, devices, rounds = 4, 50, 20
	got := make([][]vigil.Alert, parts)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Go(func() {
			for r := range rounds {
				var batch []vigil.Event
				for dv := range devices {
					dev := fmt.Sprintf("p%d-dev%d", p, dv)
					at := t0.Add(time.Duration(r) * 10 * time.Second)
					batch = append(batch, event(dev, at, "auth", "failure", nil),
						event(dev, at, "health", "", map[string]any{"host.cpu.pct": 95.0}))
				}
				got[p] = append(got[p], st.Evaluate(context.Background(), p, batch)...)
			}
		})
	}
	wg.Wait()
	for p := range parts {
		// Per device: brute force at rounds 4, 10 and 16 (t=40s, then once
		// 60 s have passed since the last alert); cpu once, at round 2.
		count := map[string]int{}
		for _, a := range got[p] {
			count[a.RuleID]++
			if !strings.HasPrefix(a.DeviceID, fmt.Sprintf("p%d-", p)) {
				t.Errorf("partition %d raised an alert for %s", p, a.DeviceID)
			}
		}
		if count["cpu"] != devices || count["brute"] != devices*3 {
			t.Errorf("partition %d: alerts %v, want cpu=%d brute=%d", p, count, devices, devices*3)
		}
	}
}

// TestPanicNamesRule checks that a panic inside a rule is reported with
// the rule's id (the stage recovers it).
func TestPanicNamesRule(t *testing.T) {
	rules := mustRules(t, "id: boom\ntype: count\ncount: 1\nwindow: 1m\n")
	d := threshold.New(rules, threshold.Options{})
	ev := event("d1", time.Now(), "auth", "failure", nil)
	defer func() {
		r := recover()
		if s, _ := r.(string); !strings.Contains(s, "threshold rule boom: emit failed") {
			t.Errorf("panic %v does not name the rule", r)
		}
	}()
	d.Detect(context.Background(), 0, &ev, func(vigil.Alert) { panic("emit failed") })
}

func BenchmarkDetect(b *testing.B) {
	rules, errs := threshold.LoadDir("../../rules/threshold")
	if len(errs) > 0 {
		b.Fatal(errors.Join(errs...))
	}
	d := threshold.New(rules, threshold.Options{})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	evs := make([]vigil.Event, 1000)
	for i := range evs {
		dev := fmt.Sprintf("dev%d", i%100)
		if i%2 == 0 {
			evs[i] = event(dev, t0.Add(time.Duration(i)*time.Second), "health", "", map[string]any{"host.cpu.pct": 50.0, "host.temperature": 40.0, "host.disk.pct": 30.0})
		} else {
			evs[i] = event(dev, t0.Add(time.Duration(i)*time.Second), "auth", "success", map[string]any{"user.name": "op"})
		}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d.Detect(context.Background(), 0, &evs[i%len(evs)], func(vigil.Alert) {})
	}
}

// BenchmarkStageEvaluate measures the stage with the shipped rules, in
// batches of 100 events (one op is one event).
func BenchmarkStageEvaluate(b *testing.B) {
	rules, errs := threshold.LoadDir("../../rules/threshold")
	if len(errs) > 0 {
		b.Fatal(errors.Join(errs...))
	}
	st := detect.NewStage(nil, []detect.Detector{threshold.New(rules, threshold.Options{})}, detect.StageOptions{})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	batch := make([]vigil.Event, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n += len(batch) {
		b.StopTimer()
		for i := range batch {
			at := t0.Add(time.Duration(n+i) * time.Second)
			batch[i] = vigil.Event{ID: strconv.Itoa(n + i), DeviceID: "dev" + strconv.Itoa(i%20), Time: at, Kind: "health",
				Fields: map[string]any{"host.cpu.pct": 50.0, "host.temperature": 40.0, "host.disk.pct": 30.0}}
			if i%2 == 1 {
				batch[i].Kind, batch[i].Outcome, batch[i].Fields = "auth", "success", map[string]any{"user.name": "op"}
			}
		}
		b.StartTimer()
		st.Evaluate(context.Background(), 0, batch)
	}
}
