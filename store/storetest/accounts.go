package storetest

import (
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// testUsers checks console users: created, replaced, listed by name,
// deleted with their sessions; bad ones refused.
func testUsers(t *testing.T, s store.Store) {
	_, err := s.GetUser(ctx(t), "alice")
	wantCode(t, err, vigil.ENOTFOUND, "GetUser before any")
	alice := store.User{Name: "alice", Role: "analyst", PasswordHash: "$argon2id$x", Created: base, Updated: base}
	must(t, s.PutUser(ctx(t), alice), "PutUser alice")
	must(t, s.PutUser(ctx(t), store.User{Name: "bob", Role: "viewer", PasswordHash: "h", Created: base, Updated: base}), "PutUser bob")
	got, err := s.GetUser(ctx(t), "alice")
	must(t, err, "GetUser")
	deepEqual(t, "user", got, alice)
	alice.Role, alice.PasswordHash, alice.Updated = "admin", "h2", base.Add(time.Hour).In(elsewhere)
	must(t, s.PutUser(ctx(t), alice), "PutUser replace")
	got, _ = s.GetUser(ctx(t), "alice")
	alice.Updated = alice.Updated.UTC()
	deepEqual(t, "replaced user", got, alice)
	all, err := s.ListUsers(ctx(t))
	must(t, err, "ListUsers")
	if len(all) != 2 || all[0].Name != "alice" || all[1].Name != "bob" {
		t.Fatalf("ListUsers = %+v, want alice then bob", all)
	}
	for _, bad := range []store.User{{Name: "", Role: "admin", PasswordHash: "h"}, {Name: "a b", Role: "admin", PasswordHash: "h"},
		{Name: "x'; DROP TABLE users; --", Role: "admin", PasswordHash: "h"}, {Name: "carol", PasswordHash: "h"}, {Name: "carol", Role: "admin"}} {
		wantCode(t, s.PutUser(ctx(t), bad), vigil.EINVALID, "PutUser "+bad.Name)
	}
	must(t, s.PutSession(ctx(t), store.Session{ID: "s1", Subject: "user:bob", Name: "bob", Role: "viewer", Created: base, LastSeen: base}), "PutSession bob")
	must(t, s.PutSession(ctx(t), store.Session{ID: "s2", Subject: "user:alice", Name: "alice", Role: "admin", Created: base, LastSeen: base}), "PutSession alice")
	must(t, s.DeleteUser(ctx(t), "bob"), "DeleteUser")
	wantCode(t, s.DeleteUser(ctx(t), "bob"), vigil.ENOTFOUND, "DeleteUser again")
	_, err = s.GetSession(ctx(t), "s1")
	wantCode(t, err, vigil.ENOTFOUND, "session of a deleted user")
	if _, err := s.GetSession(ctx(t), "s2"); err != nil {
		t.Fatalf("session of another user: %v", err)
	}
}

// testSessions checks login sessions: round trip, touch, delete, expiry.
func testSessions(t *testing.T, s store.Store) {
	_, err := s.GetSession(ctx(t), "nope")
	wantCode(t, err, vigil.ENOTFOUND, "GetSession before any")
	a := store.Session{ID: "a", Subject: "token:t1", Name: "ops", Role: "analyst", CSRF: "c1", Created: base, LastSeen: base}
	must(t, s.PutSession(ctx(t), a), "PutSession")
	got, err := s.GetSession(ctx(t), "a")
	must(t, err, "GetSession")
	deepEqual(t, "session", got, a)
	seen := base.Add(10 * time.Minute)
	must(t, s.TouchSession(ctx(t), "a", seen.In(elsewhere)), "TouchSession")
	got, _ = s.GetSession(ctx(t), "a")
	if !got.LastSeen.Equal(seen) || got.LastSeen.Location() != time.UTC {
		t.Fatalf("LastSeen = %v, want %v in UTC", got.LastSeen, seen)
	}
	wantCode(t, s.TouchSession(ctx(t), "nope", seen), vigil.ENOTFOUND, "TouchSession unknown")
	wantCode(t, s.PutSession(ctx(t), store.Session{Subject: "user:x", Created: base}), vigil.EINVALID, "PutSession without id")
	wantCode(t, s.PutSession(ctx(t), store.Session{ID: "z", Created: base}), vigil.EINVALID, "PutSession without subject")
	// b is old by creation, c idle, d fresh.
	must(t, s.PutSession(ctx(t), store.Session{ID: "b", Subject: "user:b", Created: base.Add(-24 * time.Hour), LastSeen: seen}), "PutSession b")
	must(t, s.PutSession(ctx(t), store.Session{ID: "c", Subject: "user:c", Created: base, LastSeen: base.Add(-time.Hour)}), "PutSession c")
	n, err := s.DeleteSessionsBefore(ctx(t), base.Add(-time.Hour), base.Add(-time.Minute))
	must(t, err, "DeleteSessionsBefore")
	if n != 2 {
		t.Fatalf("DeleteSessionsBefore removed %d, want 2 (b and c)", n)
	}
	if _, err := s.GetSession(ctx(t), "a"); err != nil {
		t.Fatalf("fresh session removed: %v", err)
	}
	must(t, s.DeleteSession(ctx(t), "a"), "DeleteSession")
	must(t, s.DeleteSession(ctx(t), "a"), "DeleteSession again")
	_, err = s.GetSession(ctx(t), "a")
	wantCode(t, err, vigil.ENOTFOUND, "GetSession after delete")
}
