package newplace_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
	"github.com/vigil-iot/vigil/detect"
	"github.com/vigil-iot/vigil/detect/newplace"
)

var update = flag.Bool("update", false, "rewrite testdata/<case>/expected.jsonl from the detector's output")

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

type expected struct {
	Event    string         `json:"event"`
	DeviceID string         `json:"device_id,omitempty"`
	Severity string         `json:"severity"`
	Title    string         `json:"title"`
	Entities []string       `json:"entities"`
	Fields   map[string]any `json:"fields"`
}

// TestCases runs every testdata/<case>/events.jsonl through the detection
// stage (the detector as enricher and detector, 7 days of learning) and
// compares the alerts with expected.jsonl; -update rewrites it.
func TestCases(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/*/events.jsonl")
	if len(dirs) == 0 {
		t.Fatal("no test cases")
	}
	for _, p := range dirs {
		dir := filepath.Dir(p)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			d := newplace.New(newplace.Options{})
			st := detect.NewStage(nil, []detect.Detector{d}, detect.StageOptions{Clock: fixedClock{time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)}})
			var got bytes.Buffer
			for _, ev := range readEvents(t, p) {
				evs := []vigil.Event{ev}
				for _, a := range st.Evaluate(context.Background(), bus.Partition(ev.DeviceID, 4), evs) {
					if a.Detector != newplace.Name || a.RuleID != newplace.RuleID || len(a.EventIDs) != 1 || a.EventIDs[0] != ev.ID || a.DedupKey == "" {
						t.Errorf("alert: %+v", a)
					}
					b, _ := json.Marshal(expected{Event: ev.ID, DeviceID: a.DeviceID, Severity: a.Severity.String(), Title: a.Title, Entities: a.Entities, Fields: a.Fields})
					got.Write(b)
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
				t.Fatalf("run with -update to create %s: %v", want, err)
			}
			if g, w := strings.TrimSpace(got.String()), strings.TrimSpace(string(wb)); g != w {
				t.Errorf("alerts differ from %s\n got:\n%s\nwant:\n%s", want, g, w)
			}
		})
	}
}

// TestEnrich: logins carry login.new_place for Sigma rules after
// learning; other events get nothing.
func TestEnrich(t *testing.T) {
	d := newplace.New(newplace.Options{Learn: time.Hour, MaxPlaces: 2})
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	login := func(at time.Duration, ip string) vigil.Event {
		ev := vigil.Event{Time: t0.Add(at), Kind: "auth", Outcome: "success", Network: &vigil.Network{SrcIP: mustAddr(ip)}, Fields: map[string]any{"user.name": "admin"}}
		d.Enrich(context.Background(), 0, &ev)
		return ev
	}
	if ev := login(0, "10.0.0.1"); ev.Fields[newplace.FieldNewPlace] != nil || ev.Fields[newplace.FieldNetwork] != "10.0.0.0/24" {
		t.Errorf("first login: %v", ev.Fields)
	}
	if ev := login(2*time.Hour, "10.0.0.2"); ev.Fields[newplace.FieldNewPlace] != false {
		t.Errorf("known network: %v", ev.Fields)
	}
	login(3*time.Hour, "10.1.0.1") // new: alerting, learned
	login(4*time.Hour, "10.2.0.1") // new: forgets 10.0.0.0/24 (MaxPlaces 2)
	if ev := login(5*time.Hour, "10.0.0.3"); ev.Fields[newplace.FieldNewNetwork] != true {
		t.Errorf("a forgotten network is new again: %v", ev.Fields)
	}
	other := vigil.Event{Time: t0, Kind: "flow", Network: &vigil.Network{SrcIP: mustAddr("10.0.0.1")}}
	d.Enrich(context.Background(), 0, &other)
	if other.Fields != nil {
		t.Errorf("flow enriched: %v", other.Fields)
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
	return out
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
