package alert_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/alert"
	"github.com/vigil-iot/vigil/store/sqlite"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "vigil.db")
	}
	st, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// raised returns an alert as a detector raises it, at minute min after t0.
func raised(id string, min int, sev vigil.Severity, events ...string) vigil.Alert {
	at := t0.Add(time.Duration(min) * time.Minute)
	return vigil.Alert{
		ID: id, Detector: "threshold", RuleID: "ssh-bruteforce", Title: "SSH brute force",
		Severity: sev, DeviceID: "cam-1", Tags: []string{"attack.t1110"},
		EventIDs: events, FirstEventTime: at.Add(-30 * time.Second), LastEventTime: at, Created: at,
	}
}

func process(t *testing.T, d *alert.Deduper, a vigil.Alert) alert.Result {
	t.Helper()
	if err := alert.Normalize(&a, t0); err != nil {
		t.Fatal(err)
	}
	r, err := d.Process(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDeduperMergesWithinWindow(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	d := alert.NewDeduper(st, alert.DedupOptions{})

	r := process(t, d, raised("a1", 0, vigil.SeverityMedium, "e1", "e2"))
	if r.Outcome != alert.Created || r.Alert.ID != "a1" || r.Alert.Count != 1 {
		t.Fatalf("first alert: %s id %s count %d, want created a1 count 1", r.Outcome, r.Alert.ID, r.Alert.Count)
	}
	if r.Alert.DedupKey != "threshold|ssh-bruteforce|cam-1" || !slices.Equal(r.Alert.Techniques, []string{"T1110"}) {
		t.Errorf("normalized alert: dedup key %q techniques %v", r.Alert.DedupKey, r.Alert.Techniques)
	}

	// An earlier first event, a higher severity and new evidence 9 minutes later.
	a2 := raised("a2", 9, vigil.SeverityHigh, "e2", "e3")
	a2.FirstEventTime = t0.Add(-5 * time.Minute)
	a2.Entities = []string{"ip:203.0.113.9"}
	r = process(t, d, a2)
	if r.Outcome != alert.Merged || r.Alert.ID != "a1" {
		t.Fatalf("second alert: %s into %s, want merged into a1", r.Outcome, r.Alert.ID)
	}
	got, err := st.GetAlert(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Count != 2 || got.Severity != vigil.SeverityHigh ||
		!slices.Equal(got.EventIDs, []string{"e1", "e2", "e3"}) ||
		!got.FirstEventTime.Equal(t0.Add(-5*time.Minute)) || !got.LastEventTime.Equal(t0.Add(9*time.Minute)) ||
		!got.Created.Equal(t0) || !slices.Equal(got.Entities, []string{"ip:203.0.113.9"}) {
		t.Errorf("merged alert = count %d severity %s events %v first %v last %v created %v entities %v",
			got.Count, got.Severity, got.EventIDs, got.FirstEventTime, got.LastEventTime, got.Created, got.Entities)
	}
	if _, err := st.GetAlert(ctx, "a2"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("merged alert a2 was stored on its own (err %v)", err)
	}

	// The same alert delivered again changes nothing.
	r = process(t, d, a2)
	if r.Outcome != alert.Redelivered {
		t.Errorf("redelivered a2: %s, want redelivered", r.Outcome)
	}
	if got, _ := st.GetAlert(ctx, "a1"); got.Count != 2 {
		t.Errorf("count after redelivery = %d, want 2", got.Count)
	}

	// 11 minutes after the first alert's creation: a new alert.
	r = process(t, d, raised("a3", 11, vigil.SeverityLow, "e4"))
	if r.Outcome != alert.Created || r.Alert.ID != "a3" {
		t.Errorf("alert after the window: %s id %s, want created a3", r.Outcome, r.Alert.ID)
	}
	// Another device is another key.
	other := raised("a4", 11, vigil.SeverityLow)
	other.DeviceID = "cam-2"
	if r := process(t, d, other); r.Outcome != alert.Created {
		t.Errorf("alert on another device: %s, want created", r.Outcome)
	}
}

func TestDeduperAfterRestartUsesStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vigil.db")
	st := openStore(t, path)
	process(t, alert.NewDeduper(st, alert.DedupOptions{Window: time.Minute}), raised("a1", 0, vigil.SeverityLow))

	d := alert.NewDeduper(st, alert.DedupOptions{Window: time.Minute})
	if r := process(t, d, raised("a1", 0, vigil.SeverityLow)); r.Outcome != alert.Redelivered {
		t.Errorf("a1 again after restart: %s, want redelivered", r.Outcome)
	}
	a2 := raised("a2", 0, vigil.SeverityLow)
	a2.Created = a2.Created.Add(59 * time.Second)
	if r := process(t, d, a2); r.Outcome != alert.Merged {
		t.Errorf("a2 59s later after restart: %s, want merged", r.Outcome)
	}
	if r := process(t, d, raised("a3", 2, vigil.SeverityLow)); r.Outcome != alert.Created {
		t.Errorf("a3 2m later with a 1m window: %s, want created", r.Outcome)
	}
	if got, _ := st.GetAlert(ctx, "a1"); got.Count != 2 {
		t.Errorf("a1 count = %d, want 2", got.Count)
	}
}

func TestDeduperBoundsEventIDs(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	d := alert.NewDeduper(st, alert.DedupOptions{CacheSize: 1})
	for i := range 150 {
		a := raised(fmt.Sprintf("a%d", i), 0, vigil.SeverityLow, fmt.Sprintf("e%d", i))
		a.Created = a.Created.Add(time.Duration(i) * time.Second)
		process(t, d, a)
	}
	got, err := st.GetAlert(ctx, "a0")
	if err != nil {
		t.Fatal(err)
	}
	if got.Count != 150 || len(got.EventIDs) != alert.MaxEventIDs || got.EventIDs[0] != "e0" {
		t.Errorf("after 150 merges: count %d, %d event ids starting %v; want 150, %d from e0",
			got.Count, len(got.EventIDs), got.EventIDs[:1], alert.MaxEventIDs)
	}
}

func TestNormalizeRejects(t *testing.T) {
	f := func(a vigil.Alert) {
		t.Helper()
		if err := alert.Normalize(&a, t0); vigil.ErrorCode(err) != vigil.EINVALID {
			t.Errorf("Normalize(%+v) = %v, want EINVALID", a, err)
		}
	}
	f(vigil.Alert{ID: "x", Detector: "d"})
	f(vigil.Alert{ID: "x", RuleID: "r", Severity: 9})
}

func TestSuppressor(t *testing.T) {
	s, err := alert.NewSuppressor(
		alert.Suppression{RuleID: "ssh-bruteforce", DeviceID: "cam-1", Until: t0.Add(time.Hour)},
		alert.Suppression{DeviceID: "lab-9"},
	)
	if err != nil {
		t.Fatal(err)
	}
	f := func(a vigil.Alert, want bool) {
		t.Helper()
		if _, got := s.Suppressed(&a); got != want {
			t.Errorf("Suppressed(%s on %s at %v) = %v, want %v", a.RuleID, a.DeviceID, a.Created, got, want)
		}
	}
	f(raised("a", 0, 1), true)
	f(raised("a", 60, 1), false) // expired
	other := raised("a", 0, 1)
	other.RuleID = "telnet"
	f(other, false)
	other.DeviceID = "lab-9"
	f(other, true)
	if err := s.Add(alert.Suppression{Reason: "everything"}); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("a rule matching everything was accepted: %v", err)
	}
	if n := len(s.Rules(t0.Add(2 * time.Hour))); n != 1 {
		t.Errorf("%d rules left after expiry, want 1", n)
	}
	if !s.Remove("", "lab-9") {
		t.Error("Remove of an existing rule reported none")
	}
}

// TestDeduperMergesReceipt checks that a merged alert keeps the receipt of
// its earliest live evidence and stays replayed only while all of it is.
func TestDeduperMergesReceipt(t *testing.T) {
	d := alert.NewDeduper(openStore(t, ""), alert.DedupOptions{})
	a1 := raised("a1", 0, vigil.SeverityMedium, "e1")
	a1.Replayed = true
	if r := process(t, d, a1); !r.Alert.Replayed || !r.Alert.FirstReceived.IsZero() {
		t.Fatalf("replayed alert: replayed %v first_received %v", r.Alert.Replayed, r.Alert.FirstReceived)
	}
	a2 := raised("a2", 2, vigil.SeverityMedium, "e2")
	a2.FirstReceived = t0.Add(2 * time.Minute)
	r := process(t, d, a2)
	if r.Outcome != alert.Merged || r.Alert.Replayed || !r.Alert.FirstReceived.Equal(a2.FirstReceived) {
		t.Fatalf("live evidence merged into a replayed alert: %s replayed %v first_received %v", r.Outcome, r.Alert.Replayed, r.Alert.FirstReceived)
	}
	a3 := raised("a3", 3, vigil.SeverityMedium, "e3")
	a3.FirstReceived = t0.Add(time.Minute)
	if r := process(t, d, a3); !r.Alert.FirstReceived.Equal(a3.FirstReceived) {
		t.Errorf("earlier receipt not kept: %v", r.Alert.FirstReceived)
	}
	a4 := raised("a4", 4, vigil.SeverityMedium, "e4")
	a4.Replayed = true
	if r := process(t, d, a4); r.Alert.Replayed || !r.Alert.FirstReceived.Equal(a3.FirstReceived) {
		t.Errorf("replayed evidence changed a live alert: replayed %v first_received %v", r.Alert.Replayed, r.Alert.FirstReceived)
	}
}

// TestDeduperKeepsFirstExplanation: merged repeats keep the first alert's
// explanation and add their evidence excerpts up to the bound, and the
// explanation survives the store (and a cache miss) whole.
func TestDeduperKeepsFirstExplanation(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	d := alert.NewDeduper(st, alert.DedupOptions{CacheSize: 1})
	for i := range 30 {
		a := raised(fmt.Sprintf("a%d", i), 0, vigil.SeverityLow, fmt.Sprintf("e%d", i))
		a.Created = a.Created.Add(time.Duration(i) * time.Second)
		a.Explanation = &vigil.Explanation{
			Rule:     &vigil.ExplainedRule{Title: fmt.Sprintf("rule seen %d", i), Condition: "selection"},
			Matches:  []vigil.Match{{Selection: "selection", Field: "user.name", Value: fmt.Sprintf("user%d", i), Pattern: "root"}},
			Evidence: []vigil.EvidenceExcerpt{{EventID: fmt.Sprintf("e%d", i), Fields: map[string]string{"user.name": fmt.Sprintf("user%d", i)}}},
		}
		if i == 2 { // a repeat of an event already excerpted
			a.Explanation.Evidence[0].EventID = "e0"
		}
		process(t, d, a)
		// A different key in between evicts a0 from the one-entry cache:
		// the next merge reads it back from the store.
		other := raised(fmt.Sprintf("o%d", i), 0, vigil.SeverityLow)
		other.DedupKey = fmt.Sprintf("other-%d", i)
		other.Created = a.Created
		process(t, d, other)
	}
	got, err := st.GetAlert(ctx, "a0")
	if err != nil {
		t.Fatal(err)
	}
	x := got.Explanation
	if x == nil || x.Rule == nil || x.Rule.Title != "rule seen 0" || len(x.Matches) != 1 || x.Matches[0].Value != "user0" {
		t.Fatalf("explanation after merges = %+v, want the first alert's", x)
	}
	if len(x.Evidence) != vigil.MaxEvidenceExcerpts {
		t.Fatalf("%d evidence excerpts, want %d", len(x.Evidence), vigil.MaxEvidenceExcerpts)
	}
	var ids []string
	for _, e := range x.Evidence {
		ids = append(ids, e.EventID)
	}
	want := []string{"e0", "e1", "e3", "e4", "e5", "e6", "e7", "e8", "e9", "e10"}
	if !slices.Equal(ids, want) {
		t.Errorf("evidence excerpts %v, want %v", ids, want)
	}
}

// TestDeduperTakesLaterExplanation: an alert stored without an explanation
// (before explanations existed) gains the first one merged into it.
func TestDeduperTakesLaterExplanation(t *testing.T) {
	st := openStore(t, "")
	d := alert.NewDeduper(st, alert.DedupOptions{})
	process(t, d, raised("a1", 0, vigil.SeverityLow, "e1"))
	b := raised("a2", 1, vigil.SeverityLow, "e2")
	b.Explanation = &vigil.Explanation{Window: "5m0s", Evidence: []vigil.EvidenceExcerpt{{EventID: "e2"}}}
	r := process(t, d, b)
	if r.Outcome != alert.Merged || r.Alert.Explanation == nil || r.Alert.Explanation.Window != "5m0s" {
		t.Fatalf("merged %s with explanation %+v, want b's", r.Outcome, r.Alert.Explanation)
	}
}

// TestDeduperSameEvidenceIsRedelivered: an alert whose evidence events
// are all in the stored alert of its key (a detection made again over
// the same events, as after a failover, and merged before under another
// id) is not counted again; one with a new event is.
func TestDeduperSameEvidenceIsRedelivered(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	process(t, alert.NewDeduper(st, alert.DedupOptions{Window: time.Hour}), raised("a1", 0, vigil.SeverityLow, "e1", "e2", "e3"))
	d := alert.NewDeduper(st, alert.DedupOptions{Window: time.Hour}) // another node: nothing cached
	if r := process(t, d, raised("b1", 1, vigil.SeverityLow, "e2", "e3")); r.Outcome != alert.Redelivered {
		t.Errorf("same events under another id: %s, want redelivered", r.Outcome)
	}
	if r := process(t, d, raised("b2", 1, vigil.SeverityLow, "e3", "e4")); r.Outcome != alert.Merged {
		t.Errorf("a new event: %s, want merged", r.Outcome)
	}
	if r := process(t, d, raised("b3", 2, vigil.SeverityLow)); r.Outcome != alert.Merged {
		t.Errorf("no evidence ids: %s, want merged", r.Outcome)
	}
	if got, _ := st.GetAlert(ctx, "a1"); got.Count != 3 {
		t.Errorf("a1 count = %d, want 3", got.Count)
	}
}
