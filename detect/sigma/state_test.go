package sigma

import (
	"testing"
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
