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
	"time"

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
				if n, ok := a.Fields["baseline.samples"].(float64); !ok || !strings.Contains(fmt.Sprint(a.Fields["explanation"]), fmt.Sprintf(" %d ", int(n))) {
					t.Errorf("alert %s: baseline.samples %v not the explanation's: %v", a.RuleID, a.Fields["baseline.samples"], a.Fields["explanation"])
				}
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

// TestSnapshotRestore learns on one detector, restores its snapshot on a
// fresh one, and checks both raise the same alerts on the same input.
func TestSnapshotRestore(t *testing.T) {
	for _, c := range []string{"new_modbus_writer", "mqtt_publish_flood", "new_external_peer"} {
		learn := readEvents(t, "testdata/plant-learn.jsonl")
		input := readEvents(t, "testdata/"+c+"/input.jsonl")
		a := New(Options{})
		for i := range learn {
			a.Learn(0, &learn[i])
		}
		a.FinishLearning()
		snap, err := a.Snapshot(0)
		if err != nil {
			t.Fatal(err)
		}
		b := New(Options{})
		if err := b.Restore(0, snap); err != nil {
			t.Fatal(err)
		}
		snap2, err := b.Snapshot(0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(snap, snap2) {
			t.Errorf("%s: a restored snapshot snapshots differently", c)
		}
		detectAll := func(d *Detector) []string {
			var out []string
			for i := range input {
				ev := input[i]
				d.Enrich(context.Background(), 0, &ev)
				d.Detect(context.Background(), 0, &ev, func(al vigil.Alert) { out = append(out, summary(al)+" "+fmt.Sprint(al.Fields["explanation"])) })
			}
			return out
		}
		got, want := detectAll(b), detectAll(a)
		if len(want) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: restored detector raised\n%s\nthe original\n%s", c, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// TestRestoreRejects checks that a bad snapshot is refused with a reason
// and leaves the partition's state as it was.
func TestRestoreRejects(t *testing.T) {
	d := New(Options{})
	ev := vigil.Event{ID: "x", DeviceID: "cam-1", Kind: "process", Fields: map[string]any{"process.name": "sh"}}
	d.Detect(context.Background(), 0, &ev, func(vigil.Alert) {})
	f := func(snap, want string) {
		t.Helper()
		err := d.Restore(0, []byte(snap))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Restore(%s) = %v, want an error with %q", snap, err, want)
		}
		if d.Stats().Devices != 1 {
			t.Errorf("Restore(%s) changed the partition", snap)
		}
	}
	f(`{`, "cannot restore partition 0")
	f(`{"version":9}`, "snapshot version 9")
	f(`{"version":1,"entities":[{"key":"a","cohort":"nope"}]}`, `unknown cohort "nope"`)
	f(`{"version":1,"cohorts":[{"key":"c"}],"entities":[{"key":"ip:x","cohort":"c"}]}`, "invalid address")
	f(`{"version":1,"cohorts":[{"key":"c"}],"entities":[{"key":"a","cohort":"c","hist":[[-1,0,0]]}]}`, "rate history out of range")
	f(`{"version":1,"cohorts":[{"key":"c"}],"entities":[{"key":"a","cohort":"c","soft":[1,2,3]}]}`, "software filter of 3 words")
	f(`{"version":1,"cohorts":[{"key":"c"}],"entities":[{"key":"a","cohort":"c","season":[{"metric":3}]}]}`, "profile of metric 3")
	f(`{"version":1,"cohorts":[{"key":"c"}],"entities":[{"key":"a","cohort":"c","season":[{"metric":0},{"metric":0}]}]}`, "profile of metric 0 unknown or repeated")
	f(`{"version":1,"cohorts":[{"key":"c"}],"entities":[{"key":"a","cohort":"c","mv":[2,0]}]}`, "multivariate gate out of range")
	f(`{"version":1,"cohorts":[{"key":"c"}],"entities":[{"key":"a","cohort":"c","tele":{"custom":[{},{},{},{},{},{},{},{},{}]}}]}`, "9 custom metrics")
	f(`{"version":1,"cohorts":[{"key":"c"}],"entities":[{"key":"a","cohort":"c","tele":{"host":[[0,-1,0]]}}]}`, "telemetry history out of range")
	f(`{"version":1,"cohorts":[{"key":"c","gauges":[[1e40,0,0]]}]}`, "telemetry history out of range")
}

// FuzzRestore checks that no snapshot makes Restore panic, and that a
// restored partition snapshots and judges events.
func FuzzRestore(f *testing.F) {
	d := New(Options{Learn: time.Minute})
	fl := &fleet{d: d}
	fl.send(health(0, "cam-1", map[string]any{"host.cpu.pct": 10.0, "metric.q": 3.0}))
	fl.send(inventoryEv(0, "cam-1", "camera", "1.0", "busybox 1.36"))
	for i := 0; i < 40; i++ {
		fl.send(sensorEv(time.Duration(i)*time.Second, "mqtt", "publish", "10.0.8.21", "10.0.8.10", 1883, map[string]any{"mqtt.topic": "t", "mqtt.qos": 1.0}))
	}
	b, err := d.Snapshot(0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"version":1,"cohorts":[{"key":"c"}],"entities":[{"key":"a","cohort":"c","season":[{"metric":1,"first":-9223372036854775808}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := New(Options{Learn: time.Minute})
		if err := d.Restore(0, b); err != nil {
			return
		}
		if _, err := d.Snapshot(0); err != nil {
			t.Fatalf("a restored partition does not snapshot: %v", err)
		}
		for _, ev := range []vigil.Event{
			health(time.Hour, "cam-1", map[string]any{"host.cpu.pct": 99.0, "metric.q": 1e9}),
			inventoryEv(time.Hour, "cam-1", "camera", "2.0", "busybox 1.37"),
			sensorEv(time.Hour, "mqtt", "publish", "10.0.8.21", "10.0.8.10", 1883, map[string]any{"mqtt.topic": "t", "mqtt.qos": 2.0}),
		} {
			d.Detect(context.Background(), 0, &ev, func(vigil.Alert) {})
		}
	})
}
