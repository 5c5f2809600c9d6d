package storetest

import (
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// testSavedQueries checks saved hunt queries: round trip with full time
// precision in UTC, order by name (bytes), replace by name, delete,
// ENOTFOUND, EINVALID for one that fails CheckSavedQuery.
func testSavedQueries(t *testing.T, s store.Store) {
	if got, err := s.ListSavedQueries(ctx(t)); err != nil || len(got) != 0 {
		t.Fatalf("ListSavedQueries on an empty store: %v, %v", got, err)
	}
	if err := s.DeleteSavedQuery(ctx(t), "nope"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("DeleteSavedQuery of a missing one: %v, want ENOTFOUND", err)
	}
	b := store.SavedQuery{Name: "failed logins", Query: "kind=auth outcome=failure | top limit=5 user.name", Author: "user:alice", Created: base.In(elsewhere)}
	a := store.SavedQuery{Name: "Curl to shell", Query: `process.command_line="*curl*|*sh*"`, Author: "token:ci", Created: base.Add(time.Nanosecond)}
	c := store.SavedQuery{Name: "été", Query: "kind=net | stats count by destination.port", Author: "user:bob", Created: base}
	for _, q := range []store.SavedQuery{b, a, c} {
		must(t, s.PutSavedQuery(ctx(t), q), "PutSavedQuery "+q.Name)
	}
	list, err := s.ListSavedQueries(ctx(t))
	must(t, err, "ListSavedQueries")
	b.Created, a.Created, c.Created = b.Created.UTC(), a.Created.UTC(), c.Created.UTC()
	deepEqual(t, "saved queries", list, []store.SavedQuery{a, b, c})

	b2 := store.SavedQuery{Name: b.Name, Query: "kind=auth", Author: "user:carol", Created: base.Add(time.Hour).UTC()}
	must(t, s.PutSavedQuery(ctx(t), b2), "PutSavedQuery replace")
	must(t, s.DeleteSavedQuery(ctx(t), a.Name), "DeleteSavedQuery")
	list, err = s.ListSavedQueries(ctx(t))
	must(t, err, "ListSavedQueries")
	deepEqual(t, "saved queries after replace and delete", list, []store.SavedQuery{b2, c})

	for name, q := range map[string]store.SavedQuery{
		"no name":    {Query: "x", Author: "a", Created: base},
		"no query":   {Name: "x", Author: "a", Created: base},
		"no author":  {Name: "x", Query: "x", Created: base},
		"no time":    {Name: "x", Query: "x", Author: "a"},
		"control":    {Name: "a\nb", Query: "x", Author: "a", Created: base},
		"long query": {Name: "x", Query: string(make([]byte, store.MaxSavedQuery+1)), Author: "a", Created: base},
	} {
		if err := s.PutSavedQuery(ctx(t), q); vigil.ErrorCode(err) != vigil.EINVALID {
			t.Errorf("PutSavedQuery with %s: %v, want EINVALID", name, err)
		}
	}
}
