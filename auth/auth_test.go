package auth

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *testClock {
	return &testClock{t: time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)}
}

func open(t *testing.T, path string, c vigil.Clock) *FileStore {
	t.Helper()
	s, err := OpenFileStore(path, WithClock(c))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoleTable(t *testing.T) {
	// The spec, written out: role → read, ingest, write, admin.
	want := map[Role][4]bool{
		RoleAdmin:   {true, true, true, true},
		RoleAnalyst: {true, false, true, false},
		RoleViewer:  {true, false, false, false},
		RoleAgent:   {false, true, false, false},
		Role("x"):   {false, false, false, false},
	}
	for role, w := range want {
		for i, p := range Permissions() {
			if got := role.Can(p); got != w[i] {
				t.Errorf("%s.Can(%s) = %v, want %v", role, p, got, w[i])
			}
		}
	}
	for _, r := range Roles() {
		got, err := ParseRole(" " + strings.ToUpper(string(r)))
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	if _, err := ParseRole("root"); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("ParseRole(root): err = %v, want EINVALID", err)
	}
}

func TestCreateVerifyPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "tokens.json")
	c := newClock()
	s := open(t, path, c)
	plain, tok, err := s.Create("ci", RoleAnalyst)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(plain, TokenPrefix) || len(plain) != len(TokenPrefix)+43 {
		t.Fatalf("token %q: want vgl_ + 43 base64url characters", plain)
	}
	if tok.Name != "ci" || tok.Role != RoleAnalyst || tok.ID == "" || !tok.Created.Equal(c.Now()) {
		t.Fatalf("token = %+v", tok)
	}
	got, err := s.Verify(plain)
	if err != nil || got.ID != tok.ID || got.Role != RoleAnalyst {
		t.Fatalf("Verify = %+v, %v", got, err)
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), plain) || strings.Contains(string(b), plain[len(TokenPrefix):]) {
		t.Fatal("token file holds the plaintext")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %04o, want 0600", fi.Mode().Perm())
	}

	s2 := open(t, path, c)
	got, err = s2.Verify(plain)
	if err != nil || got.ID != tok.ID {
		t.Fatalf("after reopen Verify = %+v, %v", got, err)
	}
}

func TestVerifyRejects(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "tokens.json"), newClock())
	plain, _, err := s.Create("a", RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	flipped := []byte(plain)
	if flipped[10] == 'A' {
		flipped[10] = 'B'
	} else {
		flipped[10] = 'A'
	}
	for _, bad := range []string{"", "vgl_", plain[:len(plain)-1], plain + "x", string(flipped), "Bearer " + plain, strings.Replace(plain, "vgl_", "vgx_", 1)} {
		if _, err := s.Verify(bad); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
			t.Errorf("Verify(%q): err = %v, want EUNAUTHORIZED", bad, err)
		}
	}
}

func TestCreateValidates(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "tokens.json"), newClock())
	if _, _, err := s.Create("dup", RoleViewer); err != nil {
		t.Fatal(err)
	}
	f := func(name string, role Role, code string) {
		t.Helper()
		if _, _, err := s.Create(name, role); vigil.ErrorCode(err) != code {
			t.Errorf("Create(%q, %q): err = %v, want %s", name, role, err, code)
		}
	}
	f("dup", RoleAdmin, vigil.ECONFLICT)
	f(" dup ", RoleAdmin, vigil.ECONFLICT)
	f("", RoleAdmin, vigil.EINVALID)
	f("x", Role("root"), vigil.EINVALID)
	f("a\nb", RoleAdmin, vigil.EINVALID)
	f(strings.Repeat("n", 101), RoleAdmin, vigil.EINVALID)
}

func TestRevoke(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	s := open(t, path, newClock())
	p1, t1, err := s.Create("one", RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	p2, _, err := s.Create("two", RoleAgent)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(t1.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke("two"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{p1, p2} {
		if _, err := s.Verify(p); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
			t.Errorf("revoked token verifies: %v", err)
		}
	}
	if err := s.Revoke("two"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("Revoke twice: err = %v, want ENOTFOUND", err)
	}
	if err := s.Revoke(""); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("Revoke(\"\"): err = %v, want ENOTFOUND", err)
	}
	if l, _ := open(t, path, newClock()).List(); len(l) != 0 {
		t.Fatalf("after revoking all, reopened store lists %v", l)
	}
}

func TestBootstrapAdminOnlyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	s := open(t, path, newClock())
	plain, err := s.EnsureBootstrapAdmin()
	if err != nil || plain == "" {
		t.Fatalf("first EnsureBootstrapAdmin = %q, %v", plain, err)
	}
	tok, err := s.Verify(plain)
	if err != nil || tok.Role != RoleAdmin || tok.Name != BootstrapName {
		t.Fatalf("bootstrap token = %+v, %v", tok, err)
	}
	if again, err := s.EnsureBootstrapAdmin(); err != nil || again != "" {
		t.Fatalf("second EnsureBootstrapAdmin = %q, %v; want nothing", again, err)
	}
	if again, err := open(t, path, newClock()).EnsureBootstrapAdmin(); err != nil || again != "" {
		t.Fatalf("after restart EnsureBootstrapAdmin = %q, %v; want nothing", again, err)
	}
	// Locked out (every admin revoked): a restart makes a new one.
	if err := s.Revoke(BootstrapName); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Create(BootstrapName, RoleViewer); err != nil {
		t.Fatal(err)
	}
	p2, err := s.EnsureBootstrapAdmin()
	if err != nil || p2 == "" || p2 == plain {
		t.Fatalf("EnsureBootstrapAdmin without admins = %q, %v", p2, err)
	}
	tok, err = s.Verify(p2)
	if err != nil || tok.Name != BootstrapName+"-2" {
		t.Fatalf("new bootstrap token = %+v, %v; want a free name", tok, err)
	}
}

func storedLastUsed(t *testing.T, path, id string) time.Time {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f fileFormat
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Tokens {
		if r.ID == id {
			return r.LastUsed
		}
	}
	t.Fatalf("token %s not in file", id)
	return time.Time{}
}

func TestLastUsed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	c := newClock()
	s := open(t, path, c)
	plain, tok, err := s.Create("agent-1", RoleAgent)
	if err != nil {
		t.Fatal(err)
	}
	if !storedLastUsed(t, path, tok.ID).IsZero() {
		t.Fatal("new token has a last-used time")
	}
	first := c.Now()
	if _, err := s.Verify(plain); err != nil {
		t.Fatal(err)
	}
	if got := storedLastUsed(t, path, tok.ID); !got.Equal(first) {
		t.Fatalf("stored last used = %s, want %s", got, first)
	}
	c.Add(LastUsedResolution / 2)
	if _, err := s.Verify(plain); err != nil {
		t.Fatal(err)
	}
	if got := storedLastUsed(t, path, tok.ID); !got.Equal(first) {
		t.Fatalf("a use within the resolution rewrote last used: %s", got)
	}
	c.Add(LastUsedResolution)
	if _, err := s.Verify(plain); err != nil {
		t.Fatal(err)
	}
	if got := storedLastUsed(t, path, tok.ID); !got.Equal(c.Now()) {
		t.Fatalf("stored last used = %s, want %s", got, c.Now())
	}
	l, err := s.List()
	if err != nil || len(l) != 1 || !l[0].LastUsed.Equal(c.Now()) {
		t.Fatalf("List = %+v, %v", l, err)
	}
}

func TestTwoProcessesShareTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	server := open(t, path, newClock())
	ctl := open(t, path, newClock())
	plain, _, err := ctl.Create("made-offline", RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.Verify(plain); err != nil {
		t.Fatalf("server does not see a token created by another process: %v", err)
	}
	if _, _, err := server.Create("made-offline", RoleViewer); vigil.ErrorCode(err) != vigil.ECONFLICT {
		t.Fatalf("server Create of a name taken by another process: err = %v", err)
	}
	if _, _, err := server.Create("made-online", RoleViewer); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Revoke("made-offline"); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Verify(plain); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("token revoked by another process still verifies: %v", err)
	}
	l, err := server.List()
	if err != nil || len(l) != 1 || l[0].Name != "made-online" {
		t.Fatalf("List = %+v, %v", l, err)
	}
}

func TestCorruptFile(t *testing.T) {
	dir := t.TempDir()
	f := func(content, want string) {
		t.Helper()
		path := filepath.Join(dir, "tokens.json")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := OpenFileStore(path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("OpenFileStore(%s): err = %v, want it to mention %q", content, err, want)
		}
	}
	f(`{`, "cannot parse token file")
	f(`{"version":2,"tokens":[]}`, "unsupported version 2")
	f(`{"version":1,"tokens":[{"id":"1","name":"x","role":"admin","hash":"zz"}]}`, "bad hash")
	f(`{"version":1,"tokens":[{"id":"1","name":"x","role":"god","hash":"`+strings.Repeat("00", 32)+`"}]}`, "unknown role")
}

func TestConcurrentUse(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "tokens.json"), vigil.SystemClock{})
	plain, _, err := s.Create("shared", RoleAgent)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				if _, err := s.Verify(plain); err != nil {
					t.Error(err)
					return
				}
				if j == 0 {
					if _, _, err := s.Create("w"+string(rune('a'+i)), RoleViewer); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if l, _ := s.List(); len(l) != 9 {
		t.Fatalf("List has %d tokens, want 9", len(l))
	}
}

func TestContext(t *testing.T) {
	if _, ok := FromContext(context.Background()); ok {
		t.Fatal("empty context has a token")
	}
	tok := Token{ID: "1", Name: "n", Role: RoleViewer}
	got, ok := FromContext(NewContext(context.Background(), tok))
	if !ok || got.ID != tok.ID || got.Name != tok.Name || got.Role != tok.Role {
		t.Fatalf("FromContext = %+v, %v", got, ok)
	}
}
