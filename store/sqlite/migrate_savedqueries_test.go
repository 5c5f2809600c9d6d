package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/store"
)

// TestSavedQueriesMigration opens a database whose saved queries had no
// owner (the schema that made them, one name for everyone): the query
// saved then is kept, shared (everyone saw it), its author its owner; and
// another author may now save a query of the same name.
func TestSavedQueriesMigration(t *testing.T) {
	made := -1
	for i, m := range migrations {
		if strings.Contains(m, "CREATE TABLE saved_queries (\n\tname    TEXT PRIMARY KEY") {
			made = i
		}
	}
	if made < 0 {
		t.Fatal("no migration creates the saved_queries table keyed by name")
	}
	path := filepath.Join(t.TempDir(), "vigil.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:made+1] {
		if _, err := db.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	if _, err := db.Exec("INSERT INTO saved_queries(name, query, author, created) VALUES ('roots', 'user.name=root', 'user:alice', ?)", created.UnixNano()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", made+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bob := store.SavedQuery{Name: "roots", Query: "user.name=root kind=auth", Author: "user:bob", Created: created.Add(time.Hour)}
	if err := s.PutSavedQuery(t.Context(), bob); err != nil {
		t.Fatal(err)
	}
	qs, err := s.ListSavedQueries(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	alice := store.SavedQuery{Name: "roots", Query: "user.name=root", Author: "user:alice", Shared: true, Created: created}
	if len(qs) != 2 || qs[0] != alice || qs[1] != bob {
		t.Fatalf("saved queries after the migration: %+v", qs)
	}
}
