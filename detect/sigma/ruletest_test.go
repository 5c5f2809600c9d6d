package sigma

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const ruletestCorrelation = `title: Refused MQTT connection
id: 6e0ad3f4-51f0-4f38-9a65-3f0f0c2b7a01
name: refused
logsource: {product: vigil, service: mqtt}
detection:
    selection:
        mqtt.return_code: 5
    condition: selection
level: informational
---
title: MQTT brute force
id: 6e0ad3f4-51f0-4f38-9a65-3f0f0c2b7a02
correlation:
    type: event_count
    rules: [refused]
    group-by: [source.ip]
    timespan: 1m
    condition: {gte: 3}
level: high
---
title: Too few heartbeats
id: 6e0ad3f4-51f0-4f38-9a65-3f0f0c2b7a03
correlation:
    type: event_count
    rules: [refused]
    group-by: [mqtt.client_id]
    timespan: 1h
    condition: {lt: 2}
level: low
`

// TestRuleTestCorrelations: `vigil rules test` runs the correlations of
// the file on the matches, says at which line each fired and why, and
// counts only what alerts (the base rule here only feeds correlations).
func TestRuleTestCorrelations(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rule.yml")
	if err := os.WriteFile(file, []byte(ruletestCorrelation), 0o600); err != nil {
		t.Fatal(err)
	}
	ev := func(sec, ip, client string) string {
		return `{"@timestamp":"2026-11-20T10:00:0` + sec + `Z","source.ip":"` + ip + `","mqtt.return_code":5,"mqtt.client_id":"` + client + `"}` + "\n"
	}
	events := ev("0", "192.0.2.7", "a") + ev("1", "192.0.2.8", "b") + ev("2", "192.0.2.7", "a") + ev("3", "192.0.2.7", "a")
	res, matched, loadErrs, err := TestRuleFile(file, strings.NewReader(events), nil)
	if err != nil || len(loadErrs) > 0 {
		t.Fatal(err, loadErrs)
	}
	var got []string
	for _, r := range res {
		if r.Correlation != nil {
			got = append(got, FormatResult(r))
		} else if r.Matched && !r.FeedsOnly {
			t.Errorf("a rule that only feeds correlations counted as a match: %+v", r)
		}
	}
	want := []string{
		"line 4: CORRELATION: MQTT brute force (event_count group 192.0.2.7: value 3 over 3 events from 2026-11-20T10:00:00Z to 2026-11-20T10:00:03Z)",
		// Upper-bound windows are judged when the input ends.
		"line 4: CORRELATION: Too few heartbeats (event_count group b: value 1 over 1 events from 2026-11-20T10:00:01Z to 2026-11-20T10:00:01Z)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("correlations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if matched != 1 {
		t.Errorf("matched = %d, want 1 (the event that made the brute force fire)", matched)
	}

	// Two refusals from one address: nothing alerts, so nothing matched
	// and `vigil rules test` exits 1.
	res, matched, _, err = TestRuleFile(file, strings.NewReader(ev("0", "192.0.2.7", "a")+ev("1", "192.0.2.7", "a")), nil)
	if err != nil || matched != 0 {
		t.Fatalf("below the threshold: matched %d, err %v, results %+v", matched, err, res)
	}
}

// TestRuleFileBadLines checks that `vigil rules test` names the line and
// the byte of a fault in its events, and goes on with the next line.
func TestRuleFileBadLines(t *testing.T) {
	dir := t.TempDir()
	rule := filepath.Join(dir, "r.yml")
	if err := os.WriteFile(rule, []byte("title: T\nlogsource: {product: x}\ndetection:\n    sel:\n        a: x\n    condition: sel\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	results, matched, loadErrs, err := TestRuleFile(rule, strings.NewReader("{\"a\":1,}\n{\"a\":\"x\"}\n"), nil)
	if err != nil || len(loadErrs) > 0 {
		t.Fatal(err, loadErrs)
	}
	if matched != 1 || len(results) != 2 {
		t.Fatalf("matched %d, results %+v", matched, results)
	}
	if want := "line 1: invalid JSON at byte 8: "; !strings.HasPrefix(results[0].Error, want) {
		t.Errorf("error %q, want it to start with %q", results[0].Error, want)
	}
}
