package auth

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store/sqlite"
)

// openDB opens a real SQLite store: two StoreTokens on one are two nodes
// on one database.
func openDB(t *testing.T) *sqlite.Store {
	t.Helper()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func wantCode(t *testing.T, err error, code, what string) {
	t.Helper()
	if vigil.ErrorCode(err) != code {
		t.Fatalf("%s: %v, want %s", what, err, code)
	}
}

// TestStoreTokensShared checks that tokens in the store behave as the
// file's do (validation, roles, expiry, device binding, last used) and
// are shared: created on one node, used on another, revoked on that one
// and refused at once by the first.
func TestStoreTokensShared(t *testing.T) {
	db := openDB(t)
	c := newClock()
	a, b := NewStoreTokens(db, WithClock(c)), NewStoreTokens(db, WithClock(c))

	_, _, err := a.CreateWith("cam", RoleViewer, CreateOptions{Devices: []string{"cam-1"}})
	wantCode(t, err, vigil.EINVALID, "a viewer bound to a device")
	_, _, err = a.CreateWith("", RoleViewer, CreateOptions{})
	wantCode(t, err, vigil.EINVALID, "no name")
	_, _, err = a.CreateWith("x", Role("root"), CreateOptions{})
	wantCode(t, err, vigil.EINVALID, "unknown role")

	plain, tok, err := a.CreateWith(" cam ", RoleAgent, CreateOptions{TTL: time.Hour, Devices: []string{"cam-1", "cam-1", "cam-2"}})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Name != "cam" || len(tok.Devices) != 2 || !tok.Expires.Equal(c.Now().Add(time.Hour)) {
		t.Fatalf("created %+v", tok)
	}
	_, _, err = b.Create("cam", RoleViewer)
	wantCode(t, err, vigil.ECONFLICT, "a taken name on the other node")

	got, err := b.Verify(plain)
	if err != nil || got.ID != tok.ID || got.Role != RoleAgent || !got.MayPostFor("cam-2") || got.MayPostFor("cam-3") {
		t.Fatalf("Verify on the other node = %+v, %v", got, err)
	}
	if l, _ := a.List(); len(l) != 1 || !l[0].LastUsed.Equal(c.Now()) {
		t.Fatalf("last used not shared: %+v", l)
	}
	for _, bad := range []string{"", "vgl_short", plain + "x", TokenPrefix + plain[len(TokenPrefix)+1:] + "A"} {
		_, err := a.Verify(bad)
		wantCode(t, err, vigil.EUNAUTHORIZED, "Verify "+bad)
	}

	c.Add(time.Hour)
	_, err = a.Verify(plain)
	wantCode(t, err, vigil.EUNAUTHORIZED, "Verify an expired token")

	plain, tok, err = a.Create("ops", RoleAnalyst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(plain); err != nil {
		t.Fatal(err)
	}
	if err := b.Revoke("ops"); err != nil {
		t.Fatal(err)
	}
	_, err = a.Verify(plain)
	wantCode(t, err, vigil.EUNAUTHORIZED, "Verify on one node a token revoked on the other")
	wantCode(t, a.Revoke(tok.ID), vigil.ENOTFOUND, "Revoke again")
	wantCode(t, a.Revoke(""), vigil.ENOTFOUND, "Revoke nothing")
}

// TestStoreTokensBootstrap checks that two nodes starting on one empty
// database make one bootstrap admin, and none once an admin exists.
func TestStoreTokensBootstrap(t *testing.T) {
	db := openDB(t)
	c := newClock()
	a, b := NewStoreTokens(db, WithClock(c)), NewStoreTokens(db, WithClock(c))
	first, err := a.EnsureBootstrapAdmin()
	if err != nil || first == "" {
		t.Fatalf("first start: %q, %v", first, err)
	}
	if again, err := b.EnsureBootstrapAdmin(); err != nil || again != "" {
		t.Fatalf("second node: %q, %v; want none", again, err)
	}
	tok, err := b.Verify(first)
	if err != nil || tok.Role != RoleAdmin || tok.Name != BootstrapName {
		t.Fatalf("bootstrap token = %+v, %v", tok, err)
	}
	// Its admin revoked, a restart makes another, with a free name.
	if _, _, err := a.Create(BootstrapName+"-2", RoleViewer); err != nil {
		t.Fatal(err)
	}
	if err := a.Revoke(tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Create(BootstrapName, RoleViewer); err != nil {
		t.Fatal(err)
	}
	next, err := b.EnsureBootstrapAdmin()
	if err != nil || next == "" {
		t.Fatalf("after revoking the admin: %q, %v", next, err)
	}
	if tok, err := a.Verify(next); err != nil || tok.Name != BootstrapName+"-3" {
		t.Fatalf("new bootstrap admin = %+v, %v", tok, err)
	}
}

// TestImportFile checks that a token file's tokens move into the store
// once, keep working with their role, expiry and binding, and that the
// file is renamed; a name taken in the store gets a suffix.
func TestImportFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	c := newClock()
	f := open(t, path, c)
	adminPlain, err := f.EnsureBootstrapAdmin()
	if err != nil {
		t.Fatal(err)
	}
	agentPlain, agent, err := f.CreateWith("cam", RoleAgent, CreateOptions{TTL: time.Hour, Devices: []string{"cam-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Verify(agentPlain); err != nil {
		t.Fatal(err)
	}

	db := openDB(t)
	s := NewStoreTokens(db, WithClock(c))
	if _, _, err := s.Create("cam", RoleViewer); err != nil { // another node's token of the same name
		t.Fatal(err)
	}
	n, err := s.ImportFile(path)
	if err != nil || n != 2 {
		t.Fatalf("ImportFile = %d, %v; want 2", n, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("token file still there: %v", err)
	}
	if _, err := os.Stat(path + ImportedSuffix); err != nil {
		t.Fatal(err)
	}
	if tok, err := s.Verify(adminPlain); err != nil || tok.Role != RoleAdmin || tok.Name != BootstrapName {
		t.Fatalf("imported admin = %+v, %v", tok, err)
	}
	tok, err := s.Verify(agentPlain)
	if err != nil || tok.ID != agent.ID || tok.Name != "cam-imported" || !tok.Expires.Equal(agent.Expires) ||
		!tok.MayPostFor("cam-1") || tok.MayPostFor("cam-2") || !tok.Created.Equal(agent.Created) {
		t.Fatalf("imported agent = %+v, %v; want %+v renamed cam-imported", tok, err, agent)
	}
	if again, err := s.EnsureBootstrapAdmin(); err != nil || again != "" {
		t.Fatalf("bootstrap after import: %q, %v; want none", again, err)
	}
	// Once renamed, nothing more is imported; a file put back (a crash
	// before the rename) adds nothing twice.
	if n, err := s.ImportFile(path); err != nil || n != 0 {
		t.Fatalf("second ImportFile = %d, %v", n, err)
	}
	if err := os.Rename(path+ImportedSuffix, path); err != nil {
		t.Fatal(err)
	}
	if n, err := s.ImportFile(path); err != nil || n != 0 {
		t.Fatalf("ImportFile of a file imported already = %d, %v", n, err)
	}
	if l, _ := s.List(); len(l) != 3 {
		t.Fatalf("%d tokens after importing twice, want 3", len(l))
	}
	// A corrupt file is an error naming it, and is left in place.
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("ImportFile of a corrupt file: %v", err)
	}
}

// BenchmarkStoreTokensVerify measures what a request pays for tokens kept
// in the store without a cache: one lookup by hash in SQLite (the last-used
// time is written at most once a minute, so not in the loop).
func BenchmarkStoreTokensVerify(b *testing.B) {
	db, err := sqlite.Open(filepath.Join(b.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := NewStoreTokens(db, WithClock(newClock()))
	for i := range 100 {
		if _, _, err := s.Create("t"+strconv.Itoa(i), RoleViewer); err != nil {
			b.Fatal(err)
		}
	}
	plain, _, err := s.Create("bench", RoleAgent)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Verify(plain); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFileStoreVerify is the same for the token file (one stat of the
// file and a constant-time compare with every hash), for comparison.
func BenchmarkFileStoreVerify(b *testing.B) {
	s, err := OpenFileStore(filepath.Join(b.TempDir(), "tokens.json"), WithClock(newClock()))
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		if _, _, err := s.Create("t"+strconv.Itoa(i), RoleViewer); err != nil {
			b.Fatal(err)
		}
	}
	plain, _, err := s.Create("bench", RoleAgent)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Verify(plain); err != nil {
			b.Fatal(err)
		}
	}
}
