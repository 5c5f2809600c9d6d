package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/postgres"
)

// TestSavedQueriesMigration opens a schema whose saved queries had no
// owner (the migration that made them, one name for everyone): the query
// saved then is kept, shared (everyone saw it), its author its owner; and
// another author may now save a query of the same name.
func TestSavedQueriesMigration(t *testing.T) {
	url := testURL(t)
	made := -1
	for i, m := range postgres.Migrations {
		if strings.Contains(m, "CREATE TABLE saved_queries (\n\tname    text PRIMARY KEY") {
			made = i
		}
	}
	if made < 0 {
		t.Fatal("no migration creates the saved_queries table keyed by name")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "vigil_test_" + hex.EncodeToString(b[:])
	c, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	t.Cleanup(func() {
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("cannot drop schema %s: %v", schema, err)
		}
	})
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := c.Exec(t.Context(), sql, args...); err != nil {
			t.Fatalf("%.80s: %v", sql, err)
		}
	}
	exec("CREATE SCHEMA " + pgx.Identifier{schema}.Sanitize())
	exec("SET search_path TO " + pgx.Identifier{schema}.Sanitize())
	for _, m := range postgres.Migrations[:made+1] {
		exec(m)
	}
	exec("CREATE TABLE vigil_schema_version (version integer NOT NULL)")
	exec("INSERT INTO vigil_schema_version VALUES ($1)", made+1)
	created := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	exec("INSERT INTO saved_queries(name, query, author, created) VALUES ('roots', 'user.name=root', 'user:alice', $1)", created.UnixNano())

	s, err := postgres.Open(t.Context(), url, postgres.Options{Schema: schema})
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
