package enroll

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/agent"
)

// TestUpdateKeyHanded: the enrollment and renewal answers carry the
// public update key, which the agent stores; a key that is not Ed25519,
// or is the command key, is refused when the handler is made.
func TestUpdateKeyHanded(t *testing.T) {
	f := newFixture(t, false)
	upd, _, _ := ed25519.GenerateKey(nil)
	f.h.opts.UpdateKey = upd
	state := filepath.Join(t.TempDir(), "agent")
	id := f.enroll(t, state)
	if !id.UpdateKey().Equal(upd) || id.UpdateKey().Equal(id.CommandKey) {
		t.Fatalf("update key after enrollment %x, want %x", id.UpdateKey(), upd)
	}
	if err := os.Remove(filepath.Join(state, agent.UpdateKeyFile)); err != nil {
		t.Fatal(err)
	}
	id2, err := agent.LoadIdentity(state)
	if err != nil || id2.UpdateKey() != nil {
		t.Fatalf("identity without update.pub: %v", err)
	}
	if err := id2.Renew(context.Background(), newTestClient(id2), f.srv.URL); err != nil {
		t.Fatal(err)
	}
	if !id2.UpdateKey().Equal(upd) {
		t.Fatal("renewal did not hand the update key")
	}

	o := f.h.opts
	o.UpdateKey = upd[:16]
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "UpdateKey") {
		t.Errorf("a short update key: %v", err)
	}
	o.UpdateKey = o.CommandKey.Public().(ed25519.PublicKey)
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "command key") {
		t.Errorf("the command key as update key: %v", err)
	}
}
