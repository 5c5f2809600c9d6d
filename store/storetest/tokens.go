package storetest

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

func tokenHash(c byte) string { return strings.Repeat(string(c), 64) }

// testTokens checks API tokens: created with their hash only, found by
// hash and id, listed oldest first, used, deleted by id or name; taken ids,
// names and hashes refused, bad ones refused.
func testTokens(t *testing.T, s store.Store) {
	_, err := s.GetTokenByHash(ctx(t), tokenHash('a'))
	wantCode(t, err, vigil.ENOTFOUND, "GetTokenByHash before any")
	a := store.APIToken{ID: "t1", Name: "ops", Role: "admin", Hash: tokenHash('a'), Created: base.Add(time.Minute)}
	b := store.APIToken{ID: "t2", Name: "cam agent", Role: "agent", Hash: tokenHash('b'), Created: base,
		Expires: base.Add(24 * time.Hour), Devices: []string{"cam-1", "cam-2"}}
	must(t, s.CreateToken(ctx(t), a), "CreateToken a")
	must(t, s.CreateToken(ctx(t), b), "CreateToken b")

	got, err := s.GetTokenByHash(ctx(t), a.Hash)
	must(t, err, "GetTokenByHash")
	deepEqual(t, "token by hash", got, a)
	got, err = s.GetToken(ctx(t), "t2")
	must(t, err, "GetToken")
	deepEqual(t, "token by id", got, b)
	_, err = s.GetToken(ctx(t), "nope")
	wantCode(t, err, vigil.ENOTFOUND, "GetToken of none")

	all, err := s.ListTokens(ctx(t))
	must(t, err, "ListTokens")
	deepEqual(t, "tokens oldest first", all, []store.APIToken{b, a})

	for name, dup := range map[string]store.APIToken{
		"id":   {ID: "t1", Name: "other", Role: "viewer", Hash: tokenHash('c'), Created: base},
		"name": {ID: "t3", Name: "ops", Role: "viewer", Hash: tokenHash('c'), Created: base},
		"hash": {ID: "t3", Name: "other", Role: "viewer", Hash: tokenHash('a'), Created: base},
	} {
		wantCode(t, s.CreateToken(ctx(t), dup), vigil.ECONFLICT, "CreateToken with a taken "+name)
	}
	got, _ = s.GetToken(ctx(t), "t1")
	deepEqual(t, "token after refused duplicates", got, a)
	for _, bad := range []store.APIToken{
		{Name: "x", Role: "viewer", Hash: tokenHash('d'), Created: base},
		{ID: "t4", Role: "viewer", Hash: tokenHash('d'), Created: base},
		{ID: "t4", Name: "x", Hash: tokenHash('d'), Created: base},
		{ID: "t4", Name: "x", Role: "viewer", Hash: tokenHash('d')},
		{ID: "t4", Name: "x", Role: "viewer", Hash: "vgl_plaintext", Created: base},
		{ID: "t4", Name: "x", Role: "viewer", Hash: tokenHash('z'), Created: base},
	} {
		wantCode(t, s.CreateToken(ctx(t), bad), vigil.EINVALID, "CreateToken "+bad.ID+"/"+bad.Name)
	}

	// A use moves LastUsed forward only, and is stored in UTC.
	used := base.Add(time.Hour)
	must(t, s.TouchToken(ctx(t), "t1", used.In(elsewhere)), "TouchToken")
	must(t, s.TouchToken(ctx(t), "t1", used.Add(-time.Minute)), "TouchToken older")
	must(t, s.TouchToken(ctx(t), "gone", used), "TouchToken of none")
	got, _ = s.GetTokenByHash(ctx(t), a.Hash)
	if !got.LastUsed.Equal(used) || got.LastUsed.Location() != time.UTC {
		t.Fatalf("LastUsed = %v, want %v in UTC", got.LastUsed, used)
	}

	// Delete by name, by id; a name that is another token's id deletes
	// that token (ids first).
	id, err := s.DeleteToken(ctx(t), "cam agent")
	must(t, err, "DeleteToken by name")
	if id != "t2" {
		t.Fatalf("DeleteToken by name = %q, want t2", id)
	}
	_, err = s.GetTokenByHash(ctx(t), b.Hash)
	wantCode(t, err, vigil.ENOTFOUND, "GetTokenByHash of a deleted token")
	_, err = s.DeleteToken(ctx(t), "cam agent")
	wantCode(t, err, vigil.ENOTFOUND, "DeleteToken again")
	must(t, s.CreateToken(ctx(t), store.APIToken{ID: "t5", Name: "t1", Role: "viewer", Hash: tokenHash('e'), Created: base}), "CreateToken named like an id")
	if id, err = s.DeleteToken(ctx(t), "t1"); err != nil || id != "t1" {
		t.Fatalf("DeleteToken t1 = %q, %v; want the token whose id is t1", id, err)
	}
	if id, err = s.DeleteToken(ctx(t), "t1"); err != nil || id != "t5" {
		t.Fatalf("DeleteToken t1 again = %q, %v; want the token named t1", id, err)
	}
	all, _ = s.ListTokens(ctx(t))
	if len(all) != 0 {
		t.Fatalf("ListTokens after deleting all = %+v", all)
	}
}

// testTokensConcurrent checks that of nodes creating a token of one name
// at once, exactly one wins (the bootstrap admin of nodes starting
// together).
func testTokensConcurrent(t *testing.T, s store.Store) {
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.CreateToken(ctx(t), store.APIToken{ID: "c" + string(rune('0'+i)), Name: "bootstrap-admin", Role: "admin",
				Hash: tokenHash("0123456789abcdef"[i]), Created: base})
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		if err == nil {
			won++
		} else if vigil.ErrorCode(err) != vigil.ECONFLICT {
			t.Fatalf("CreateToken %d: %v, want nil or ECONFLICT", i, err)
		}
	}
	all, err := s.ListTokens(ctx(t))
	must(t, err, "ListTokens")
	if won != 1 || len(all) != 1 {
		t.Fatalf("%d creations won, %d tokens stored; want 1 and 1", won, len(all))
	}
}
