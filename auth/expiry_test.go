package auth

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// TestTokenExpires checks that a token with a ttl verifies until its
// expiry and is refused from then on, also by a store opened afterwards.
func TestTokenExpires(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	c := newClock()
	s := open(t, path, c)
	plain, tok, err := s.CreateWith("ci", RoleViewer, CreateOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if want := c.Now().Add(time.Hour); !tok.Expires.Equal(want) {
		t.Fatalf("Expires = %v, want %v", tok.Expires, want)
	}
	forever, _, err := s.Create("forever", RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	c.Add(59 * time.Minute)
	if _, err := s.Verify(plain); err != nil {
		t.Fatalf("Verify before expiry: %v", err)
	}
	c.Add(time.Minute)
	if _, err := s.Verify(plain); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("Verify at expiry err = %v, want unauthorized", err)
	}
	if _, err := open(t, path, c).Verify(plain); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("Verify by a new store err = %v, want unauthorized", err)
	}
	if _, err := s.Verify(forever); err != nil {
		t.Fatalf("a token without ttl: %v", err)
	}
	l, _ := s.List()
	if i := slices.IndexFunc(l, func(x Token) bool { return x.Name == "ci" }); i < 0 || !l[i].Expired(c.Now()) {
		t.Fatalf("List = %+v: want ci listed as expired", l)
	}
	if _, _, err := s.CreateWith("neg", RoleViewer, CreateOptions{TTL: -time.Second}); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Fatalf("negative ttl err = %v", err)
	}
}

// TestTokenDevices checks the binding of agent tokens to devices.
func TestTokenDevices(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.json")
	s := open(t, path, newClock())
	plain, tok, err := s.CreateWith("cams", RoleAgent, CreateOptions{Devices: []string{"cam-1", " cam-2", "cam-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tok.Devices, []string{"cam-1", "cam-2"}) {
		t.Fatalf("Devices = %q", tok.Devices)
	}
	got, err := open(t, path, newClock()).Verify(plain)
	if err != nil || !got.MayPostFor("cam-2") || got.MayPostFor("cam-3") || got.MayPostFor("") {
		t.Fatalf("Verify = %+v, %v: want bound to cam-1 and cam-2", got, err)
	}
	unbound := Token{Role: RoleAgent}
	if !unbound.MayPostFor("anything") {
		t.Fatal("an unbound token may post for any device")
	}
	f := func(role Role, devices ...string) {
		t.Helper()
		if _, _, err := s.CreateWith("bad", role, CreateOptions{Devices: devices}); vigil.ErrorCode(err) != vigil.EINVALID {
			t.Errorf("CreateWith(%s, %q) err = %v, want invalid", role, devices, err)
		}
	}
	f(RoleViewer, "cam-1")
	f(RoleAgent, "")
	f(RoleAgent, "cam 1")
	f(RoleAgent, make([]string, MaxBoundDevices+1)...)
}
