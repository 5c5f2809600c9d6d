package sqlite_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/internal/testfs"
	"github.com/vigil-iot/vigil/store/sqlite"
)

// TestWriteErrOnFullDisk: with the disk full, PutEvents fails and
// WriteErr says so; once space is back, the next PutEvents succeeds on the
// same Store (no restart) and WriteErr clears.
func TestWriteErrOnFullDisk(t *testing.T) {
	dir := testfs.Tmpfs(t, "8m")
	s, err := sqlite.Open(filepath.Join(dir, "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	seq := 0
	batch := func(n int) []vigil.Event {
		evs := make([]vigil.Event, n)
		for i := range evs {
			seq++
			evs[i] = vigil.Event{ID: fmt.Sprintf("e%06d", seq), DeviceID: "d1", Kind: "net", Time: t0.Add(time.Duration(seq) * time.Second),
				Fields: map[string]any{"pad": strings.Repeat("x", 1000)}}
		}
		return evs
	}
	if err := s.PutEvents(ctx, batch(10)); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteErr(); err != nil {
		t.Fatalf("WriteErr after a good write: %v", err)
	}
	filler := testfs.Fill(t, dir)
	var failed error
	for range 20 { // the WAL may have room left for a batch or two
		if failed = s.PutEvents(ctx, batch(500)); failed != nil {
			break
		}
	}
	if failed == nil {
		t.Fatal("PutEvents on a full disk never failed")
	}
	if err := s.WriteErr(); err == nil {
		t.Fatalf("PutEvents failed (%v) but WriteErr is nil", failed)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := s.PutEvents(ctx, batch(10)); err != nil {
		t.Fatalf("PutEvents once the disk has room again: %v", err)
	}
	if err := s.WriteErr(); err != nil {
		t.Fatalf("WriteErr after the fault cleared and a write succeeded: %v", err)
	}
	if n, err := s.CountEvents(ctx); err != nil || n < 20 {
		t.Fatalf("CountEvents = %d, %v", n, err)
	}
}
