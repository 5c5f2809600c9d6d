package sigma

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// TestDetectorExplainsAlert: an online alert carries its rule, the values
// that matched each selection (under the rule's field names, read from
// the event's mapped fields) and a bounded excerpt of the event.
func TestDetectorExplainsAlert(t *testing.T) {
	d := NewDetector(mustLoad(t, procRule), DetectorOptions{})
	var got []vigil.Alert
	d.Detect(context.Background(), 0, procEvent("/usr/bin/wget", "wget http://x/m -O /tmp/m"), func(a vigil.Alert) { got = append(got, a) })
	if len(got) != 1 || got[0].Explanation == nil {
		t.Fatalf("alerts = %+v, want one with an explanation", got)
	}
	x := got[0].Explanation
	if x.Rule == nil || x.Rule.Title != "Wget download to tmp" || x.Rule.Level != "high" || x.Rule.Condition != "selection and not filter" {
		t.Errorf("rule = %+v", x.Rule)
	}
	want := []vigil.Match{
		{Selection: "selection", Field: "Image", Value: "/usr/bin/wget", Pattern: "endswith: /wget"},
		{Selection: "selection", Field: "CommandLine", Value: "wget http://x/m -O /tmp/m", Pattern: "contains: /tmp/"},
	}
	if len(x.Matches) != len(want) || x.Matches[0] != want[0] || x.Matches[1] != want[1] {
		t.Errorf("matches = %+v, want %+v", x.Matches, want)
	}
	if len(x.Evidence) != 1 || x.Evidence[0].EventID != "ev-1" || x.Evidence[0].Fields["process.command_line"] != "wget http://x/m -O /tmp/m" ||
		x.Evidence[0].Fields["process.executable"] != "/usr/bin/wget" {
		t.Errorf("evidence = %+v", x.Evidence)
	}
}

// TestExplainBoundsDeviceValues: a device's huge value is kept cut, and a
// rule with many matching values keeps at most MaxExplainMatches.
func TestExplainBoundsDeviceValues(t *testing.T) {
	var b strings.Builder
	b.WriteString("title: Many\nid: 33333333-0000-0000-0000-000000000001\nlogsource: {product: linux, category: process_creation}\ndetection:\n")
	for i := range 40 {
		b.WriteString("    sel" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ":\n        CommandLine|contains: x\n")
	}
	b.WriteString("    condition: all of sel*\nlevel: low\n")
	d := NewDetector(mustLoad(t, b.String()), DetectorOptions{})
	var got []vigil.Alert
	d.Detect(context.Background(), 0, procEvent("/bin/sh", strings.Repeat("x", 100000)), func(a vigil.Alert) { got = append(got, a) })
	if len(got) != 1 || got[0].Explanation == nil {
		t.Fatalf("alerts = %d, want 1 explained", len(got))
	}
	x := got[0].Explanation
	if len(x.Matches) != vigil.MaxExplainMatches {
		t.Errorf("%d matches, want %d", len(x.Matches), vigil.MaxExplainMatches)
	}
	for _, m := range x.Matches {
		if len(m.Value) > vigil.MaxExcerptValue {
			t.Fatalf("match value of %d bytes kept", len(m.Value))
		}
	}
	for _, v := range x.Evidence[0].Fields {
		if len(v) > vigil.MaxExcerptValue {
			t.Fatalf("excerpt value of %d bytes kept", len(v))
		}
	}
}

// TestCorrelationExplained: a correlation alert says its group (group-by
// values), its window, what it measured against which threshold, and
// keeps the event that made it fire.
func TestCorrelationExplained(t *testing.T) {
	rs := mustLoad(t, baseRules+"---\n"+`title: Brute force
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
`)
	d := NewDetector(rs, DetectorOptions{})
	var got []vigil.Alert
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 3 {
		ev := &vigil.Event{ID: "ev-" + string(rune('1'+i)), Time: t0.Add(time.Duration(i) * 10 * time.Second), DeviceID: "gw-1", Kind: vigil.KindAuth, Outcome: "failure",
			Fields: map[string]any{"logsource.product": "test", "outcome": "failure", "src": "192.0.2.7", "user.name": "admin"}}
		d.Detect(context.Background(), 0, ev, func(a vigil.Alert) { got = append(got, a) })
	}
	if len(got) != 1 || got[0].Title != "Brute force" || got[0].Explanation == nil {
		t.Fatalf("alerts = %+v, want one explained Brute force", got)
	}
	x := got[0].Explanation
	if x.Group["src"] != "192.0.2.7" || x.Window != "1m0s" {
		t.Errorf("group %v window %q, want src=192.0.2.7 over 1m0s", x.Group, x.Window)
	}
	if th := x.Threshold; th == nil || th.Series != "event_count" || th.Op != "gte" || th.Threshold != "3" || th.Observed != "3" || th.Count != 3 {
		t.Errorf("threshold = %+v", x.Threshold)
	}
	if x.Rule == nil || x.Rule.Condition != "event_count gte 3 within 1m0s" {
		t.Errorf("rule = %+v", x.Rule)
	}
	// The alert references the events counted; the one that made it fire
	// is excerpted.
	if ids := got[0].EventIDs; len(ids) != 3 || ids[0] != "ev-1" || ids[2] != "ev-3" {
		t.Errorf("event ids = %v, want ev-1 ev-2 ev-3", ids)
	}
	if len(x.Evidence) != 1 || x.Evidence[0].EventID != "ev-3" || x.Evidence[0].Fields["user.name"] != "admin" {
		t.Errorf("evidence = %+v", x.Evidence)
	}
}

// TestRuleTestShowsValues: `vigil rules test` prints the matched values
// next to the selection names.
func TestRuleTestShowsValues(t *testing.T) {
	rs := mustLoad(t, procRule)
	res, _, err := rs.TestEvents(strings.NewReader(`{"Image":"/usr/bin/wget","CommandLine":"wget /tmp/x\u001b[2J"}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	line := FormatResult(res[0])
	want := `line 1: MATCH: Wget download to tmp (matched: selection [Image="/usr/bin/wget" (endswith: /wget); CommandLine="wget /tmp/x\x1b[2J" (contains: /tmp/)])`
	if line != want {
		t.Errorf("got  %s\nwant %s", line, want)
	}
}

// TestCorrelationEventIDsBounded: a window keeps the ids of its latest
// maxWindowIDs events only, and only those still in the window.
func TestCorrelationEventIDsBounded(t *testing.T) {
	for _, tc := range []struct {
		gte         int
		first, last int
	}{{40, 50 - maxWindowIDs, 49}, {5, 10, 14}} {
		ids := windowIDs(t, tc.gte)
		if len(ids) != tc.last-tc.first+1 || ids[0] != fmt.Sprintf("ev-%02d", tc.first) || ids[len(ids)-1] != fmt.Sprintf("ev-%02d", tc.last) {
			t.Errorf("gte %d: event ids = %v, want ev-%02d to ev-%02d", tc.gte, ids, tc.first, tc.last)
		}
	}
}

// windowIDs returns the event ids of the alert of an event_count
// correlation (gte n) over ten sparse events that leave the window, then
// forty dense ones.
func windowIDs(t *testing.T, n int) []string {
	rs := mustLoad(t, baseRules+"---\n"+`title: Brute force
correlation:
    type: event_count
    rules:
        - failed_login
    group-by:
        - src
    timespan: 60s
    condition:
        gte: `+fmt.Sprint(n)+`
level: high
`)
	d := NewDetector(rs, DetectorOptions{})
	var got []vigil.Alert
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 50 {
		// Ten events 30 s apart (too sparse to fire), which then leave
		// the window, and forty a second apart.
		at := t0.Add(time.Duration(i) * 30 * time.Second)
		if i >= 10 {
			at = t0.Add(400*time.Second + time.Duration(i)*time.Second)
		}
		ev := &vigil.Event{ID: fmt.Sprintf("ev-%02d", i), Time: at, DeviceID: "gw-1", Kind: vigil.KindAuth, Outcome: "failure",
			Fields: map[string]any{"logsource.product": "test", "src": "192.0.2.7"}}
		d.Detect(context.Background(), 0, ev, func(a vigil.Alert) { got = append(got, a) })
	}
	if len(got) == 0 {
		t.Fatalf("gte %d: no alert", n)
	}
	return got[0].EventIDs
}
