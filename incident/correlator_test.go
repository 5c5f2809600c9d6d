package incident_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/incident"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/sqlite"
)

var update = flag.Bool("update", false, "rewrite testdata/*/expected.json from the results")

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// step is one line of alerts.jsonl: an alert to assign, or an operation
// ("restart": reopen the store and start a new correlator; "contain",
// "resolve": act on the incident of alert Of at At).
type step struct {
	Op     string               `json:"op"`
	Of     string               `json:"of"`
	At     time.Time            `json:"at"`
	Status vigil.IncidentStatus `json:"status"`
	vigil.Alert
}

// result is what expected.json holds: the incidents ordered by detection
// (ids left out, they are random) and, for each alert, the index of its
// incident in that list.
type result struct {
	Incidents []resultIncident `json:"incidents"`
	Alerts    map[string]int   `json:"alerts"`
}

type resultIncident struct {
	Title          string               `json:"title"`
	Status         vigil.IncidentStatus `json:"status"`
	Severity       vigil.Severity       `json:"severity"`
	DeviceIDs      []string             `json:"device_ids,omitempty"`
	Entities       []string             `json:"entities,omitempty"`
	AlertIDs       []string             `json:"alert_ids,omitempty"`
	Techniques     []string             `json:"techniques,omitempty"`
	FirstEventTime time.Time            `json:"first_event_time"`
	FirstReceived  time.Time            `json:"first_received,omitzero"`
	Replayed       bool                 `json:"replayed,omitempty"`
	Detected       time.Time            `json:"detected"`
	Contained      time.Time            `json:"contained,omitzero"`
	Resolved       time.Time            `json:"resolved,omitzero"`
	Updated        time.Time            `json:"updated"`
	TimeToDetect   string               `json:"time_to_detect"`
	TimeToContain  string               `json:"time_to_contain,omitempty"`
}

// ownAddrs are the server's own addresses in every case.
var ownAddrs = []netip.Prefix{netip.MustParsePrefix("198.18.0.10/32"), netip.MustParsePrefix("fd00:5::/64")}

func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestCorrelatorCases(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/alerts.jsonl")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no test cases in testdata: %v", err)
	}
	for _, in := range dirs {
		dir := filepath.Dir(in)
		t.Run(filepath.Base(dir), func(t *testing.T) { runCase(t, dir) })
	}
}

func runCase(t *testing.T, dir string) {
	ctx := context.Background()
	steps := readSteps(t, filepath.Join(dir, "alerts.jsonl"))
	dbPath := filepath.Join(t.TempDir(), "vigil.db")
	st := openStore(t, dbPath)
	defer func() { st.Close() }()
	clock := &fakeClock{}
	newCorrelator := func() *incident.Correlator {
		c, err := incident.NewCorrelator(ctx, st, incident.Options{Clock: clock, OwnAddrs: ownAddrs})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := newCorrelator()
	assigned := map[string]string{} // alert id → incident id
	var order []string              // alert ids in first-seen order
	for i, s := range steps {
		switch s.Op {
		case "":
			a := s.Alert
			a.IncidentID = assigned[a.ID] // a merged alert comes back with its incident
			if a.Created.After(clock.Now()) {
				clock.Set(a.Created)
			}
			if err := c.Assign(ctx, &a); err != nil {
				t.Fatalf("step %d: assign %s: %v", i+1, a.ID, err)
			}
			if a.IncidentID == "" {
				t.Fatalf("step %d: alert %s got no incident", i+1, a.ID)
			}
			if _, ok := assigned[a.ID]; !ok {
				order = append(order, a.ID)
			}
			assigned[a.ID] = a.IncidentID
		case "restart":
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st = openStore(t, dbPath)
			c = newCorrelator()
		case "contain":
			if err := c.Contain(ctx, assigned[s.Of], s.At); err != nil {
				t.Fatalf("step %d: contain: %v", i+1, err)
			}
		case "resolve":
			if err := c.Resolve(ctx, assigned[s.Of], s.Status, s.At); err != nil {
				t.Fatalf("step %d: resolve: %v", i+1, err)
			}
		default:
			t.Fatalf("step %d: unknown op %q", i+1, s.Op)
		}
	}

	var incs []vigil.Incident
	f := store.IncidentFilter{}
	for {
		page, next, err := st.ListIncidents(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		incs = append(incs, page...)
		if next == "" || len(page) == 0 {
			break
		}
		f.Cursor = next
	}
	sort.Slice(incs, func(i, j int) bool {
		if !incs[i].Detected.Equal(incs[j].Detected) {
			return incs[i].Detected.Before(incs[j].Detected)
		}
		return strings.Join(incs[i].AlertIDs, ",") < strings.Join(incs[j].AlertIDs, ",")
	})
	got := result{Alerts: map[string]int{}}
	pos := map[string]int{}
	for i, inc := range incs {
		pos[inc.ID] = i
		r := resultIncident{
			Title: inc.Title, Status: inc.Status, Severity: inc.Severity,
			DeviceIDs: inc.DeviceIDs, Entities: inc.Entities, AlertIDs: inc.AlertIDs, Techniques: inc.Techniques,
			FirstEventTime: inc.FirstEventTime.UTC(), Detected: inc.Detected.UTC(), Updated: inc.Updated.UTC(),
			FirstReceived: inc.FirstReceived.UTC(), Replayed: inc.Replayed,
			TimeToDetect: inc.TimeToDetect().String(),
		}
		if !inc.Contained.IsZero() {
			r.Contained = inc.Contained.UTC()
			r.TimeToContain = inc.TimeToContain().String()
		}
		if !inc.Resolved.IsZero() {
			r.Resolved = inc.Resolved.UTC()
		}
		got.Incidents = append(got.Incidents, r)
	}
	for _, id := range order {
		p, ok := pos[assigned[id]]
		if !ok {
			t.Fatalf("alert %s was assigned incident %s, which is not stored", id, assigned[id])
		}
		got.Alerts[id] = p
		if !slices.Contains(incs[p].AlertIDs, id) {
			t.Errorf("incident %d does not list alert %s that was assigned to it", p, id)
		}
	}

	gotJSON, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	wantPath := filepath.Join(dir, "expected.json")
	if *update {
		if err := os.WriteFile(wantPath, append(gotJSON, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	wantRaw, err := os.ReadFile(wantPath)
	if err != nil {
		t.Fatal(err)
	}
	var want result
	dec := json.NewDecoder(bytes.NewReader(wantRaw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&want); err != nil {
		t.Fatalf("cannot read %s: %v", wantPath, err)
	}
	wantJSON, _ := json.MarshalIndent(want, "", "  ")
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("incidents differ from %s\n--- got\n%s\n--- want\n%s", wantPath, gotJSON, wantJSON)
	}
}

func readSteps(t *testing.T, path string) []step {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []step
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var s step
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		steps = append(steps, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return steps
}
