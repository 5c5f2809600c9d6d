package agent

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/agent/command"
)

// TestUpdateKeyConfig: update_key (the server's `vigil update key`)
// verifies update artifacts instead of the command key; a malformed one is
// a configuration error.
func TestUpdateKeyConfig(t *testing.T) {
	s := newServer(t)
	state := s.enroll(t)
	policy := filepath.Join(state, "policy.json")
	writeFileAtomic(policy, []byte(`{"allow":["update"]}`), 0o600)
	pub, _, _ := ed25519.GenerateKey(nil)
	a, err := New(Config{StateDir: state, Commands: true, PolicyFile: policy, UpdateKey: base64.StdEncoding.EncodeToString(pub)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if sys := a.exec.(*command.System); !bytes.Equal(sys.UpdateKey, pub) || bytes.Equal(sys.UpdateKey, a.id.CommandKey) {
		t.Fatal("update_key is not the key that verifies updates")
	}
	a2, err := New(Config{StateDir: state, Commands: true, PolicyFile: policy}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	if sys := a2.exec.(*command.System); !bytes.Equal(sys.UpdateKey, a2.id.CommandKey) {
		t.Fatal("without update_key, updates are not verified with the command key")
	}
	if _, err := New(Config{StateDir: state, Commands: true, PolicyFile: policy, UpdateKey: "c2hvcnQ="}, Options{}); err == nil || !strings.Contains(err.Error(), "update_key") {
		t.Fatalf("a short update_key: %v", err)
	}
}
