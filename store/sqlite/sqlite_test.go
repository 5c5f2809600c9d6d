package sqlite_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"

	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/sqlite"
	"github.com/vigil-iot/vigil/store/storetest"
)

func open(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
	storetest.RunAuditKey(t, func(t *testing.T, key []byte) store.Store {
		s, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{AuditKey: key})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	s, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := vigil.Event{ID: "ev-1", Time: time.Now(), Kind: vigil.KindAuth}
	if err := s.PutEvents(t.Context(), []vigil.Event{e}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.PutEvents(t.Context(), []vigil.Event{e}); err == nil {
		t.Fatal("PutEvents after Close did not fail")
	}

	s, err = sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	v, err := s.SchemaVersion(t.Context())
	if err != nil || v < 1 {
		t.Fatalf("SchemaVersion = %d, %v", v, err)
	}
	if _, err := s.GetEvent(t.Context(), "ev-1"); err != nil {
		t.Fatalf("event lost across reopen: %v", err)
	}
	s.Close()

	// A database from a newer program is refused, not downgraded.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := sqlite.Open(path, sqlite.Options{}); err == nil {
		s.Close()
		t.Fatal("Open of a newer schema did not fail")
	}
}

func TestOpenNeedsAFile(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		if s, err := sqlite.Open(p, sqlite.Options{}); err == nil {
			s.Close()
			t.Errorf("Open(%q) did not fail", p)
		} else if vigil.ErrorCode(err) != vigil.EINVALID {
			t.Errorf("Open(%q): %v, want EINVALID", p, err)
		}
	}
}
