package sigma

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

const baseRules = `title: Failed login
id: 22222222-0000-0000-0000-000000000001
name: failed_login
logsource:
    product: test
level: low
detection:
    selection:
        outcome: failure
    condition: selection
---
title: Successful login
id: 22222222-0000-0000-0000-000000000002
name: successful_login
logsource:
    product: test
detection:
    selection:
        outcome: success
    condition: selection
---
title: Transfer
name: transfer
logsource:
    product: test
detection:
    selection:
        action: transfer
    condition: selection
`

type tev struct {
	sec     int
	outcome string
	src     string
	user    string
	bytes   int
}

// runCorr runs base rules plus a correlation over events and returns the
// titles of the alerts in order.
func runCorr(t *testing.T, corr string, evs []tev) []string {
	t.Helper()
	rs := mustLoad(t, baseRules+"---\n"+corr)
	var in strings.Builder
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, e := range evs {
		m := map[string]any{"logsource.product": "test", "@timestamp": t0.Add(time.Duration(e.sec) * time.Second).Format(time.RFC3339),
			"src": e.src, "user": e.user}
		if e.outcome == "transfer" {
			m["action"] = "transfer"
			m["bytes"] = e.bytes
		} else {
			m["outcome"] = e.outcome
		}
		b, _ := json.Marshal(m)
		in.Write(b)
		in.WriteByte('\n')
	}
	var out bytes.Buffer
	if _, err := DetectStream(strings.NewReader(in.String()), &out, rs); err != nil {
		t.Fatal(err)
	}
	var titles []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if l == "" {
			continue
		}
		var a vigil.Alert
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatal(err)
		}
		titles = append(titles, a.Title)
	}
	return titles
}

func count(xs []string, s string) int {
	n := 0
	for _, x := range xs {
		if x == s {
			n++
		}
	}
	return n
}

func TestEventCountSlidingWindow(t *testing.T) {
	corr := `title: Brute force
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - src
    timespan: 60s
    condition:
        gte: 3
level: high
`
	// Three failures within 60 s that straddle a minute boundary: a
	// sliding window sees them, fixed one-minute buckets would not.
	got := runCorr(t, corr, []tev{{50, "failure", "a", "u", 0}, {70, "failure", "a", "u", 0}, {100, "failure", "a", "u", 0}})
	if count(got, "Brute force") != 1 {
		t.Errorf("alerts = %v, want one Brute force", got)
	}
	// The base rule is silenced by the correlation (generate: false).
	if count(got, "Failed login") != 0 {
		t.Errorf("base rule alerted: %v", got)
	}
	// Spread over more than the timespan, or over different groups: none.
	got = runCorr(t, corr, []tev{{0, "failure", "a", "u", 0}, {40, "failure", "a", "u", 0}, {61, "failure", "a", "u", 0}, {62, "failure", "b", "u", 0}, {63, "failure", "c", "u", 0}})
	if count(got, "Brute force") != 0 {
		t.Errorf("alerts = %v, want none", got)
	}
}

func TestGenerateKeepsBaseAlerts(t *testing.T) {
	corr := `title: Brute force
correlation:
    type: event_count
    generate: true
    rules:
        - failed_login
    group-by:
        - src
    timespan: 1m
    condition:
        gte: 2
`
	got := runCorr(t, corr, []tev{{0, "failure", "a", "u", 0}, {1, "failure", "a", "u", 0}})
	if count(got, "Failed login") != 2 || count(got, "Brute force") != 1 {
		t.Errorf("alerts = %v", got)
	}
}

func TestValueCount(t *testing.T) {
	corr := `title: Spray
correlation:
    type: value_count
    rules:
        - failed_login
    group-by:
        - src
    timespan: 10m
    condition:
        field: user
        gte: 3
`
	got := runCorr(t, corr, []tev{{0, "failure", "a", "u1", 0}, {1, "failure", "a", "u1", 0}, {2, "failure", "a", "u2", 0}, {3, "failure", "a", "u2", 0}})
	if count(got, "Spray") != 0 {
		t.Errorf("2 distinct users fired: %v", got)
	}
	got = runCorr(t, corr, []tev{{0, "failure", "a", "u1", 0}, {1, "failure", "a", "u2", 0}, {2, "failure", "a", "u3", 0}})
	if count(got, "Spray") != 1 {
		t.Errorf("3 distinct users: %v", got)
	}
}

func TestTemporalAndOrdered(t *testing.T) {
	temporal := `title: Both
correlation:
    type: temporal
    rules:
        - failed_login
        - successful_login
    group-by:
        - user
    timespan: 5m
`
	ordered := strings.Replace(strings.Replace(temporal, "temporal", "temporal_ordered", 1), "Both", "Fail then success", 1)
	succFirst := []tev{{0, "success", "a", "bob", 0}, {10, "failure", "a", "bob", 0}}
	failFirst := []tev{{0, "failure", "a", "bob", 0}, {10, "success", "a", "bob", 0}}
	if got := runCorr(t, temporal, succFirst); count(got, "Both") != 1 {
		t.Errorf("temporal, any order: %v", got)
	}
	if got := runCorr(t, ordered, succFirst); count(got, "Fail then success") != 0 {
		t.Errorf("temporal_ordered, wrong order fired: %v", got)
	}
	if got := runCorr(t, ordered, failFirst); count(got, "Fail then success") != 1 {
		t.Errorf("temporal_ordered, right order: %v", got)
	}
	if got := runCorr(t, ordered, []tev{{0, "failure", "a", "bob", 0}, {10, "success", "a", "alice", 0}}); len(got) != 1 || got[0] != "Successful login" {
		// successful_login is silenced too; only... nothing fires.
		if count(got, "Fail then success") != 0 {
			t.Errorf("different users fired: %v", got)
		}
	}
}

func TestValueSumAvgPercentile(t *testing.T) {
	tmpl := `title: Exfil
correlation:
    type: %s
    rules:
        - transfer
    group-by:
        - src
    timespan: 1h
    condition:
        field: bytes
%s`
	evs := []tev{{0, "transfer", "a", "", 100}, {1, "transfer", "a", "", 200}, {2, "transfer", "a", "", 900}}
	if got := runCorr(t, fmt.Sprintf(tmpl, "value_sum", "        gte: 1200\n"), evs); count(got, "Exfil") != 1 {
		t.Errorf("value_sum: %v", got)
	}
	if got := runCorr(t, fmt.Sprintf(tmpl, "value_sum", "        gt: 1200\n"), evs); count(got, "Exfil") != 0 {
		t.Errorf("value_sum gt: %v", got)
	}
	// avg after 1 event is 100, after 2 is 150, after 3 is 400.
	if got := runCorr(t, fmt.Sprintf(tmpl, "value_avg", "        gte: 300\n"), evs); count(got, "Exfil") != 1 {
		t.Errorf("value_avg: %v", got)
	}
	// value_percentile: the share of the group's events with this value.
	rare := []tev{{0, "transfer", "a", "", 100}, {1, "transfer", "a", "", 100}, {2, "transfer", "a", "", 100}, {3, "transfer", "a", "", 100}, {4, "transfer", "a", "", 900}}
	if got := runCorr(t, fmt.Sprintf(tmpl, "value_percentile", "        lte: 20\n"), rare); count(got, "Exfil") != 1 {
		t.Errorf("value_percentile: %v", got)
	}
	if got := runCorr(t, fmt.Sprintf(tmpl, "value_percentile", "        lte: 19\n"), rare); count(got, "Exfil") != 0 {
		t.Errorf("value_percentile lte 19: %v", got)
	}
}

func TestAliasesAndChaining(t *testing.T) {
	corr := `title: Many failures
name: many_failures
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - user
    timespan: 1h
    condition:
        gte: 2
---
title: Takeover
correlation:
    type: temporal_ordered
    rules:
        - many_failures
        - successful_login
    aliases:
        account:
            many_failures: user
            successful_login: login_user
    group-by:
        - account
    timespan: 1h
level: critical
`
	rs := mustLoad(t, baseRules+"---\n"+corr)
	in := `{"logsource.product":"test","@timestamp":"2026-01-01T00:00:00Z","outcome":"failure","user":"bob"}
{"logsource.product":"test","@timestamp":"2026-01-01T00:00:01Z","outcome":"failure","user":"bob"}
{"logsource.product":"test","@timestamp":"2026-01-01T00:00:02Z","outcome":"success","login_user":"bob"}
`
	var out bytes.Buffer
	if _, err := DetectStream(strings.NewReader(in), &out, rs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"title":"Takeover"`) || !strings.Contains(out.String(), `"severity":"critical"`) {
		t.Errorf("no Takeover alert:\n%s", out.String())
	}
}

func TestCorrelationRejects(t *testing.T) {
	for name, c := range map[string]string{
		"unknown rule": "title: X\ncorrelation:\n    type: event_count\n    rules: [nope]\n    group-by: [a]\n    timespan: 1m\n    condition: {gte: 1}\n",
		"bad timespan": "title: X\ncorrelation:\n    type: event_count\n    rules: [failed_login]\n    timespan: 1x\n    condition: {gte: 1}\n",
		"no field":     "title: X\ncorrelation:\n    type: value_count\n    rules: [failed_login]\n    timespan: 1m\n    condition: {gte: 1}\n",
		"bad type":     "title: X\ncorrelation:\n    type: near\n    rules: [failed_login]\n    timespan: 1m\n",
	} {
		_, errs := LoadBytes("c.yml", []byte(baseRules+"---\n"+c), nil)
		if len(errs) != 1 {
			t.Errorf("%s: errors = %v, want 1", name, errs)
		}
	}
}

func TestCheckpointKeepsOpenWindows(t *testing.T) {
	yml := baseRules + `---
title: Brute force
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - src
    timespan: 10m
    condition:
        gte: 3
`
	rs := mustLoad(t, yml)
	ev := func(sec int) *vigil.Event {
		return &vigil.Event{ID: fmt.Sprint(sec), Time: time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC), DeviceID: "gw", Outcome: vigil.OutcomeFailure,
			Fields: map[string]any{"logsource.product": "test", "src": "10.0.0.9"}}
	}
	var got []vigil.Alert
	emit := func(a vigil.Alert) { got = append(got, a) }
	d := NewDetector(rs, DetectorOptions{})
	d.Detect(context.Background(), 3, ev(0), emit)
	d.Detect(context.Background(), 3, ev(1), emit)
	if st := d.CorrelationStats(); st.OpenWindows != 1 {
		t.Fatalf("open windows = %d", st.OpenWindows)
	}
	var cp bytes.Buffer
	if err := d.Checkpoint(&cp); err != nil {
		t.Fatal(err)
	}
	// A restarted detector with reloaded rules continues the window.
	d2 := NewDetector(mustLoad(t, yml), DetectorOptions{})
	if err := d2.Restore(&cp); err != nil {
		t.Fatal(err)
	}
	d2.Detect(context.Background(), 3, ev(2), emit)
	if len(got) != 1 || got[0].Title != "Brute force" || got[0].Fields["sigma.group"] != "10.0.0.9" {
		t.Fatalf("alerts after restore = %+v", got)
	}
}

func TestCorrelationMemoryCap(t *testing.T) {
	yml := baseRules + `---
title: Brute force
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - src
    timespan: 10m
    condition:
        gte: 100
`
	d := NewDetector(mustLoad(t, yml), DetectorOptions{MaxGroups: 10})
	for i := 0; i < 25; i++ {
		d.Detect(context.Background(), 0, &vigil.Event{Time: time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC), Outcome: vigil.OutcomeFailure,
			Fields: map[string]any{"logsource.product": "test", "src": fmt.Sprint(i)}}, func(vigil.Alert) {})
	}
	st := d.CorrelationStats()
	if st.OpenWindows != 10 || st.DroppedGroups != 15 {
		t.Errorf("stats = %+v, want 10 open and 15 dropped", st)
	}
}

func TestUpperBoundJudgedWhenWindowCloses(t *testing.T) {
	corr := `title: Too few
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - src
    timespan: 60s
    condition:
        lt: 3
`
	// Group a: 2 events in its window (fires when the window closes);
	// group b: 3 events (does not).
	got := runCorr(t, corr, []tev{{0, "failure", "a", "u", 0}, {10, "failure", "a", "u", 0},
		{0, "failure", "b", "u", 0}, {1, "failure", "b", "u", 0}, {2, "failure", "b", "u", 0}})
	if count(got, "Too few") != 1 {
		t.Errorf("alerts = %v, want one Too few", got)
	}
	// Online: the window is judged by Tick once closed, not before.
	d := NewDetector(mustLoad(t, baseRules+"---\n"+corr), DetectorOptions{})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d.Detect(context.Background(), 0, &vigil.Event{Time: t0, Outcome: vigil.OutcomeFailure, DeviceID: "dev-1",
		Fields: map[string]any{"logsource.product": "test", "src": "a"}}, func(vigil.Alert) {})
	var alerts []vigil.Alert
	d.Tick(context.Background(), t0.Add(30*time.Second), func(a vigil.Alert) { alerts = append(alerts, a) })
	if len(alerts) != 0 {
		t.Fatalf("open window judged: %+v", alerts)
	}
	d.Tick(context.Background(), t0.Add(61*time.Second), func(a vigil.Alert) { alerts = append(alerts, a) })
	if len(alerts) != 1 || alerts[0].Title != "Too few" || alerts[0].Fields["sigma.group"] != "a" {
		t.Fatalf("closed window: %+v", alerts)
	}
	// The alert of a window judged without a triggering event carries the
	// device of the window's last event.
	if alerts[0].DeviceID != "dev-1" {
		t.Errorf("device of the Tick alert = %q, want dev-1", alerts[0].DeviceID)
	}
	// Offline, windows still open when the input ends likewise.
	rs := mustLoad(t, baseRules+"---\n"+corr)
	var out bytes.Buffer
	in := `{"logsource.product":"test","@timestamp":"2026-01-01T00:00:00Z","outcome":"failure","src":"a","device_id":"dev-2"}` + "\n"
	if _, err := DetectStream(strings.NewReader(in), &out, rs); err != nil {
		t.Fatal(err)
	}
	var a vigil.Alert
	if err := json.Unmarshal(out.Bytes(), &a); err != nil || a.Title != "Too few" || a.DeviceID != "dev-2" {
		t.Errorf("alert at the end of the input = %s (%v), want Too few on dev-2", out.String(), err)
	}
}

// TestWindowMemory measures the heap held per open window (group map entry
// and key, group, window, its first event; for value_count the value too),
// documented in docs/sigma.md.
func TestWindowMemory(t *testing.T) {
	for _, tc := range []struct{ typ, field string }{{"event_count", ""}, {"value_count", "        field: user\n"}} {
		corr := "title: Many\ncorrelation:\n    type: " + tc.typ + "\n    rules: [failed_login]\n    group-by: [src]\n    timespan: 5m\n    condition:\n        gte: 1000000\n" + tc.field
		d := NewDetector(mustLoad(t, baseRules+"---\n"+corr), DetectorOptions{})
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		const n = 20000
		evs := make([]*vigil.Event, n)
		for i := range evs {
			evs[i] = &vigil.Event{Time: t0, Outcome: vigil.OutcomeFailure, DeviceID: "dev-1",
				Fields: map[string]any{"logsource.product": "test", "src": fmt.Sprintf("10.0.%d.%d", i>>8, i&255), "user": fmt.Sprintf("user%d", i)}}
		}
		// One event first, so that the matcher and partition exist.
		d.Detect(context.Background(), 0, evs[0], func(vigil.Alert) {})
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		for _, ev := range evs[1:] {
			d.Detect(context.Background(), 0, ev, func(vigil.Alert) {})
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		if st := d.CorrelationStats(); st.OpenWindows != n {
			t.Fatalf("%s: open windows = %d, want %d", tc.typ, st.OpenWindows, n)
		}
		per := float64(m1.HeapAlloc-m0.HeapAlloc) / (n - 1)
		t.Logf("%s: %.0f bytes per open window with one event (10-byte group key)", tc.typ, per)
		if per > 1000 {
			t.Errorf("%s: %.0f bytes per open window, documented as about 300", tc.typ, per)
		}
		runtime.KeepAlive(evs)
	}
}

// Groups whose keys share a hash sit in successive slots: forced
// collisions find, keep and remove the right group.
func TestGroupTableCollisions(t *testing.T) {
	tab := groupTable{}
	keys := []string{"a", "b", "a-key-longer-than-twenty-four-bytes", ""}
	for _, k := range keys {
		if tab.get(7, []byte(k)) != nil {
			t.Fatalf("%q found before it was added", k)
		}
		tab.add(7, []byte(k), 1)
	}
	for _, k := range keys {
		if g := tab.get(7, []byte(k)); g == nil || g.key != k {
			t.Fatalf("%q: got %v", k, g)
		}
	}
	// Remove from the middle, the head and the tail of the chain.
	for _, k := range []string{"b", ""} {
		tab.remove(tab.get(7, []byte(k)))
	}
	n := 0
	tab.each(func(g *corrGroup) { n++ })
	if n != 2 || tab.get(7, []byte("b")) != nil || tab.get(7, []byte("a")) == nil || tab.get(7, []byte(keys[2])) == nil {
		t.Fatalf("after removals: %d groups", n)
	}
	tab.each(func(g *corrGroup) { tab.remove(g) })
	if tab.n != 0 {
		t.Fatalf("table not empty: %d groups", tab.n)
	}
}

// The group table agrees with a map under random adds and removals with
// few distinct hashes (long runs of slots, runs that wrap around), and
// each visits every group once even when fn removes it.
func TestGroupTableAgreesWithMap(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var tab groupTable
	want := map[string]uint64{}
	for step := 0; step < 20000; step++ {
		k := strconv.Itoa(rnd.IntN(300))
		h := uint64(rnd.IntN(40)) * 0x9e3779b97f4a7c15 // few homes, spread over the table
		if _, ok := want[k]; ok {
			h = want[k]
		}
		switch g := tab.get(h, []byte(k)); {
		case (g != nil) != hasKey(want, k):
			t.Fatalf("step %d: %q found=%v, want %v", step, k, g != nil, hasKey(want, k))
		case g == nil:
			tab.add(h, []byte(k), 1+step%2)
			want[k] = h
		case rnd.IntN(2) == 0:
			tab.remove(g)
			delete(want, k)
		}
		if step%1000 == 999 {
			seen := map[string]int{}
			drop := rnd.IntN(3) == 0
			tab.each(func(g *corrGroup) {
				seen[g.key]++
				if drop && rnd.IntN(2) == 0 {
					tab.remove(g)
					delete(want, g.key)
				}
			})
			for k, n := range seen {
				if n != 1 {
					t.Fatalf("step %d: %q visited %d times", step, k, n)
				}
			}
			if tab.n != len(want) {
				t.Fatalf("step %d: %d groups, want %d", step, tab.n, len(want))
			}
			for k, h := range want {
				if g := tab.get(h, []byte(k)); g == nil || g.key != k {
					t.Fatalf("step %d: %q lost", step, k)
				}
			}
		}
	}
}

func hasKey(m map[string]uint64, k string) bool { _, ok := m[k]; return ok }

// A window counts distinct values and the entries of a value the same by
// scanning its entries (up to maxScanDistinct) and with a distinct set
// (beyond), through growth and eviction.
func TestWindowDistinctValues(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	var w corrWindow
	for now := int64(0); now < 5000; now++ {
		// Windows that grow past the scan limit and shrink back.
		span := int64(2 + (now/500)%4*5)
		w.evict(now - span)
		v := []byte("v" + strconv.Itoa(rnd.IntN(6)))
		if rnd.IntN(8) == 0 {
			v = nil
		}
		e := corrEntry{T: now, V: w.value(string(v))}
		if len(v) > 0 {
			v[0] = 'x' // the window keeps its own copy
		}
		w.Entries = append(w.Entries, e)
		w.countValues()
		counts := map[string]int{}
		for _, e := range w.live() {
			counts[e.V]++
		}
		if got := w.distinctValues(); got != len(counts) {
			t.Fatalf("at %d: %d distinct values, want %d", now, got, len(counts))
		}
		for _, e := range w.live() {
			if got := w.valueCount(e.V); got != counts[e.V] {
				t.Fatalf("at %d: %q counted %d times, want %d", now, e.V, got, counts[e.V])
			}
		}
	}
	if w.distinct == nil {
		t.Fatal("the window never kept a distinct set")
	}
}
