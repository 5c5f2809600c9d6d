package threshold_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect/threshold"
)

// TestRefire checks the refire attribute: until_cleared makes the rule's
// alerts UntilCleared (the alert stage merges their repeats until the
// incident is closed); window and the default do not.
func TestRefire(t *testing.T) {
	for extra, want := range map[string]bool{"": false, "refire: window\n": false, "refire: until_cleared\n": true} {
		rules := mustRules(t, "id: r\ntype: count\nwhere: {kind: auth}\ncount: 2\nwindow: 1m\n"+extra)
		d := threshold.New(rules, threshold.Options{})
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		var got []vigil.Alert
		for i := range 2 {
			ev := event("d1", t0.Add(time.Duration(i)*time.Second), "auth", "failure", nil)
			d.Detect(context.Background(), 0, &ev, func(a vigil.Alert) { got = append(got, a) })
		}
		if len(got) != 1 || got[0].UntilCleared != want {
			t.Errorf("%q: %d alerts, until_cleared %v, want %v", extra, len(got), len(got) > 0 && got[0].UntilCleared, want)
		}
	}
}
