package storetest

import (
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// testSavedQueries checks saved hunt queries: round trip with full time
// precision in UTC and the shared mark, order by name then author
// (bytes), two authors' queries of one name kept apart, replace by author
// and name, delete of one author's only, ENOTFOUND, EINVALID for one that
// fails CheckSavedQuery.
func testSavedQueries(t *testing.T, s store.Store) {
	if got, err := s.ListSavedQueries(ctx(t)); err != nil || len(got) != 0 {
		t.Fatalf("ListSavedQueries on an empty store: %v, %v", got, err)
	}
	if err := s.DeleteSavedQuery(ctx(t), "user:alice", "nope"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("DeleteSavedQuery of a missing one: %v, want ENOTFOUND", err)
	}
	b := store.SavedQuery{Name: "failed logins", Query: "kind=auth outcome=failure | top limit=5 user.name", Author: "user:alice", Shared: true, Created: base.In(elsewhere)}
	a := store.SavedQuery{Name: "Curl to shell", Query: `process.command_line="*curl*|*sh*"`, Author: "token:ci", Created: base.Add(time.Nanosecond)}
	c := store.SavedQuery{Name: "été", Query: "kind=net | stats count by destination.port", Author: "user:bob", Created: base}
	// Carol's query of the name of Alice's: another query, not a replacement.
	b2 := store.SavedQuery{Name: b.Name, Query: "kind=auth", Author: "user:carol", Created: base.Add(time.Hour).UTC()}
	for _, q := range []store.SavedQuery{b2, b, a, c} {
		must(t, s.PutSavedQuery(ctx(t), q), "PutSavedQuery "+q.Author+" "+q.Name)
	}
	list, err := s.ListSavedQueries(ctx(t))
	must(t, err, "ListSavedQueries")
	b.Created, a.Created, c.Created = b.Created.UTC(), a.Created.UTC(), c.Created.UTC()
	deepEqual(t, "saved queries", list, []store.SavedQuery{a, b, b2, c})

	// Alice replaces hers (no longer shared); Carol's stays.
	b3 := store.SavedQuery{Name: b.Name, Query: "kind=auth outcome=failure", Author: b.Author, Created: base.Add(2 * time.Hour).UTC()}
	must(t, s.PutSavedQuery(ctx(t), b3), "PutSavedQuery replace")
	if err := s.DeleteSavedQuery(ctx(t), "user:bob", a.Name); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("DeleteSavedQuery of another author's name: %v, want ENOTFOUND", err)
	}
	must(t, s.DeleteSavedQuery(ctx(t), a.Author, a.Name), "DeleteSavedQuery")
	list, err = s.ListSavedQueries(ctx(t))
	must(t, err, "ListSavedQueries")
	deepEqual(t, "saved queries after replace and delete", list, []store.SavedQuery{b3, b2, c})
	must(t, s.DeleteSavedQuery(ctx(t), b2.Author, b2.Name), "DeleteSavedQuery of Carol's")
	list, err = s.ListSavedQueries(ctx(t))
	must(t, err, "ListSavedQueries")
	deepEqual(t, "saved queries after deleting Carol's", list, []store.SavedQuery{b3, c})

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
