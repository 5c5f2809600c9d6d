package sensor

import (
	"context"
	"os"
	"path/filepath"
	"sync"
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

// testOUI is the OUI registry, loaded once for all tests (an empty one
// when the ieee-data package is not installed).
var testOUI = sync.OnceValue(func() *OUI {
	o, err := LoadOUI(DefaultOUIFile)
	if err != nil {
		return &OUI{}
	}
	return o
})

// runPcap runs the sensor over files and returns the events.
func runPcap(t testing.TB, cfg Config, files ...string) ([]vigil.Event, Stats) {
	t.Helper()
	if cfg.OUI == nil {
		cfg.OUI = testOUI()
	}
	c := &collector{}
	cfg.Pcaps = files
	cfg.Publisher = c
	st, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run(%v): %v", files, err)
	}
	return c.events, st
}
