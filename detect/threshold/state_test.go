package threshold_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect/threshold"
)

// TestStateMoves splits a brute force over two detectors, as over two
// cluster nodes: the second restores the first's snapshot and fires once,
// with the evidence of both.
func TestStateMoves(t *testing.T) {
	rules := mustRules(t, "id: bf\ntype: count\nwhere: {kind: auth, outcome: failure}\ngroup_by: [device.id]\ncount: 5\nwindow: 60s\n")
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var got []vigil.Alert
	emit := func(a vigil.Alert) { got = append(got, a) }
	ctx := context.Background()

	a := threshold.New(rules, threshold.Options{})
	if _, changed, _ := a.SnapshotPartition(3); changed {
		t.Fatal("empty partition reported changed")
	}
	for i := range 3 {
		ev := event("d1", t0.Add(time.Duration(i)*time.Second), "auth", "failure", nil)
		ev.ID = "e" + string(rune('0'+i))
		a.Detect(ctx, 3, &ev, emit)
	}
	state, changed, err := a.SnapshotPartition(3)
	if err != nil || !changed || len(state) == 0 {
		t.Fatalf("snapshot: %d bytes, changed %v, err %v", len(state), changed, err)
	}
	if _, changed, _ := a.SnapshotPartition(3); changed {
		t.Error("second snapshot without events reported changed")
	}

	b := threshold.New(rules, threshold.Options{})
	if err := b.RestorePartition(3, state); err != nil {
		t.Fatal(err)
	}
	for i := 3; i < 5; i++ {
		ev := event("d1", t0.Add(time.Duration(i)*time.Second), "auth", "failure", nil)
		ev.ID = "e" + string(rune('0'+i))
		b.Detect(ctx, 3, &ev, emit)
	}
	if len(got) != 1 {
		t.Fatalf("%d alerts, want 1", len(got))
	}
	if n := len(got[0].EventIDs); n != 5 {
		t.Errorf("alert cites %d events, want 5: %v", n, got[0].EventIDs)
	}
	// Without the snapshot, the second detector does not fire.
	c := threshold.New(rules, threshold.Options{})
	got = nil
	for i := 3; i < 5; i++ {
		ev := event("d1", t0.Add(time.Duration(i)*time.Second), "auth", "failure", nil)
		c.Detect(ctx, 3, &ev, emit)
	}
	if len(got) != 0 {
		t.Errorf("fresh detector fired on 2 events")
	}
	b.DropPartition(3)
	if _, changed, _ := b.SnapshotPartition(3); changed {
		t.Error("dropped partition reported changed")
	}
}

func FuzzRestore(f *testing.F) {
	f.Add([]byte(`{"v":1,"rules":{"bf":[{"k":"d1","d":"d1","e":[{"t":"2026-03-01T12:00:00Z","id":"e1"}]}]}}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"v":1,"rules":{"bf":[{"k":"x"},{"k":"x"}]}}`))
	rules, errs := threshold.Parse("fuzz", []byte("id: bf\ntype: count\nwhere: {kind: auth}\ngroup_by: [device.id]\ncount: 2\nwindow: 60s\n"))
	if len(errs) > 0 {
		f.Fatal(errs)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := threshold.New(rules, threshold.Options{})
		if err := d.RestorePartition(0, b); err != nil {
			return
		}
		ev := vigil.Event{ID: "x", DeviceID: "d1", Kind: "auth", Time: time.Date(2026, 3, 1, 12, 0, 1, 0, time.UTC)}
		d.Detect(context.Background(), 0, &ev, func(vigil.Alert) {})
		if _, _, err := d.SnapshotPartition(0); err != nil {
			t.Fatal(err)
		}
	})
}
