package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store/sqlite"
)

// TestFileModes: the database and its -wal and -shm files are readable by
// their owner only (SQLite made them 0644).
func TestFileModes(t *testing.T) {
	dir := t.TempDir()
	s, err := sqlite.Open(filepath.Join(dir, "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.PutEvents(context.Background(), []vigil.Event{{ID: "e1", DeviceID: "d1", Kind: "x", Time: time.Unix(1e9, 0).UTC()}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"vigil.db", "vigil.db-wal", "vigil.db-shm"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v, want 0600", name, fi.Mode().Perm())
		}
	}
}
