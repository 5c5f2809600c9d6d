package sensor

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	vigil "github.com/vigil-iot/vigil"
)

// collector is a Publisher that keeps every event.
type collector struct{ events []vigil.Event }

func (c *collector) PublishEvents(_ context.Context, evs []vigil.Event) error {
	c.events = append(c.events, evs...)
	return nil
}

// corpusDir returns ../shared/corpus/<sub> relative to the repository
// root, or skips the test when it is absent.
func corpusDir(t testing.TB, sub string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("repository root not found")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "corpus", sub)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("corpus %s absent (%v): skipping", p, err)
	}
	return p
}

// runPcap runs the sensor over files and returns the events.
func runPcap(t testing.TB, cfg Config, files ...string) ([]vigil.Event, Stats) {
	t.Helper()
	c := &collector{}
	cfg.Pcaps = files
	cfg.Publisher = c
	st, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run(%v): %v", files, err)
	}
	return c.events, st
}
