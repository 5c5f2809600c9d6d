package sigma

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// FuzzRestorePartition feeds RestorePartition arbitrary state: it either
// refuses it or leaves a partition the detector can snapshot.
func FuzzRestorePartition(f *testing.F) {
	f.Add([]byte(`{"windows":{"x":{"k":{"entries":[{"t":"2026-03-01T12:00:00Z","n":1}]}}}}`))
	f.Add([]byte(`{"windows":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := NewDetector(&RuleSet{}, DetectorOptions{})
		if err := d.RestorePartition(1, b); err != nil {
			return
		}
		if _, _, err := d.SnapshotPartition(1); err != nil {
			t.Fatal(err)
		}
		d.DropPartition(1)
	})
}

// TestPartitionMoves moves the windows of a value_count correlation (two
// distinct values seen) from one detector to another through
// SnapshotPartition and RestorePartition: the second fires on the third
// value. (Restoring a distinct-value window of two entries or more used
// to panic.)
func TestPartitionMoves(t *testing.T) {
	yml := baseRules + `---
title: Spraying
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
	ev := func(sec int, user string) *vigil.Event {
		return &vigil.Event{ID: fmt.Sprint(sec), Time: time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC), DeviceID: "gw", Outcome: vigil.OutcomeFailure,
			Fields: map[string]any{"logsource.product": "test", "src": "10.0.0.9", "user": user}}
	}
	var got []vigil.Alert
	emit := func(a vigil.Alert) { got = append(got, a) }
	a := NewDetector(mustLoad(t, yml), DetectorOptions{})
	a.Detect(context.Background(), 5, ev(0, "root"), emit)
	a.Detect(context.Background(), 5, ev(1, "admin"), emit)
	state, changed, err := a.SnapshotPartition(5)
	if err != nil || !changed {
		t.Fatalf("snapshot: changed %v, err %v", changed, err)
	}
	b := NewDetector(mustLoad(t, yml), DetectorOptions{})
	if err := b.RestorePartition(5, state); err != nil {
		t.Fatal(err)
	}
	b.Detect(context.Background(), 5, ev(2, "pi"), emit)
	if len(got) != 1 || got[0].Title != "Spraying" {
		t.Fatalf("alerts after the move = %+v", got)
	}
}
