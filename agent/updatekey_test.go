package agent

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/agent/httpc"
	"github.com/vigil-iot/vigil/enroll"
)

// updateRun runs a real update command through the agent's command.System
// (its download replaced by the artifact's bytes, its installer a shell)
// with an artifact signed by priv.
func updateRun(t *testing.T, a *Agent, priv ed25519.PrivateKey) error {
	t.Helper()
	sys := a.exec.(*command.System)
	artifact := []byte("#!/bin/sh\necho installed\n")
	sum := sha256.Sum256(artifact)
	sys.Fetch = func(context.Context, string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(artifact)), nil
	}
	sys.Installer, sys.Rollback = []string{"/bin/sh", "{file}"}, []string{"/bin/true"}
	_, err := sys.Execute(context.Background(), command.Command{Action: command.ActionUpdate, Params: map[string]string{
		"url": "/api/v1/agent/artifacts/x", "sha256": hex.EncodeToString(sum[:]), "version": "2.0", "product": "fw",
		"signature": base64.StdEncoding.EncodeToString(ed25519.Sign(priv, artifact))}})
	return err
}

// TestUpdateKeyFromEnrollment: the server hands its update key in the
// enrollment answer; the agent stores it (update.pub) and verifies
// updates with it, never with the command key. The config's update_key is
// a pin: equal, updates run; different, they are refused and the
// mismatch logged. A malformed pin is a configuration error.
func TestUpdateKeyFromEnrollment(t *testing.T) {
	updPub, updPriv, _ := ed25519.GenerateKey(nil)
	s := newServer(t, func(o *enroll.Options) { o.UpdateKey = updPub })
	state := s.enroll(t)
	policy := filepath.Join(state, "policy.json")
	writeFileAtomic(policy, []byte(`{"allow":["update"]}`), 0o600)
	if fi, err := os.Stat(filepath.Join(state, UpdateKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("update.pub after enrollment: %v %v", fi, err)
	}
	a, err := New(Config{StateDir: state, Commands: true, PolicyFile: policy}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if k, err := a.UpdateKey(); err != nil || !k.Equal(updPub) || k.Equal(a.id.CommandKey) {
		t.Fatalf("update key %x %v, want the server's %x", k, err, updPub)
	}
	if err := updateRun(t, a, updPriv); err != nil {
		t.Fatalf("an artifact signed with the update key: %v", err)
	}
	if err := updateRun(t, a, s.cmdKey); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("an artifact signed with the command key: %v", err)
	}

	// A pin equal to the server's key.
	pinned, err := New(Config{StateDir: state, Commands: true, PolicyFile: policy, UpdateKey: base64.StdEncoding.EncodeToString(updPub)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pinned.Close()
	if err := updateRun(t, pinned, updPriv); err != nil {
		t.Fatalf("pinned, equal: %v", err)
	}

	// A pin of another key: refused, logged.
	other, otherPriv, _ := ed25519.GenerateKey(nil)
	var logs bytes.Buffer
	bad, err := New(Config{StateDir: state, Commands: true, PolicyFile: policy, UpdateKey: base64.StdEncoding.EncodeToString(other)},
		Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	for _, priv := range []ed25519.PrivateKey{updPriv, otherPriv} {
		if err := updateRun(t, bad, priv); !errors.Is(err, ErrUpdateKeyMismatch) {
			t.Fatalf("pinned, different: %v", err)
		}
	}
	if n := strings.Count(logs.String(), "update key mismatch"); n < 3 {
		t.Fatalf("the mismatch was logged %d times (want at start and at each update):\n%s", n, logs.String())
	}

	if _, err := New(Config{StateDir: state, Commands: true, PolicyFile: policy, UpdateKey: "c2hvcnQ="}, Options{}); err == nil || !strings.Contains(err.Error(), "update_key") {
		t.Fatalf("a short update_key: %v", err)
	}
}

// TestNoUpdateKeyRefusesUpdates: an agent whose server handed no update
// key (a server before update keys) and whose config pins none refuses
// updates, whatever signed them — the command key is no fallback; a pin
// alone then verifies them. A renewal from a server that has the key
// hands it to an agent enrolled without it.
func TestNoUpdateKeyRefusesUpdates(t *testing.T) {
	updPub, updPriv, _ := ed25519.GenerateKey(nil)
	s := newServer(t, func(o *enroll.Options) { o.UpdateKey = updPub })
	state := s.enroll(t)
	// As if enrolled with a server that handed no key.
	if err := os.Remove(filepath.Join(state, UpdateKeyFile)); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(state, "policy.json")
	writeFileAtomic(policy, []byte(`{"allow":["update"]}`), 0o600)
	var logs bytes.Buffer
	a, err := New(Config{StateDir: state, Commands: true, PolicyFile: policy}, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if !strings.Contains(logs.String(), "updates will be refused") {
		t.Errorf("no warning at start:\n%s", logs.String())
	}
	for _, priv := range []ed25519.PrivateKey{s.cmdKey, updPriv} {
		if err := updateRun(t, a, priv); !errors.Is(err, ErrNoUpdateKey) {
			t.Fatalf("no update key: %v", err)
		}
	}
	pinned, err := New(Config{StateDir: state, Commands: true, PolicyFile: policy, UpdateKey: base64.StdEncoding.EncodeToString(updPub)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pinned.Close()
	if err := updateRun(t, pinned, updPriv); err != nil {
		t.Fatalf("the pin alone: %v", err)
	}
	if err := updateRun(t, pinned, s.cmdKey); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("the pin alone, signed with the command key: %v", err)
	}

	// Renewal hands the key; the running agent uses it at once.
	c := &httpc.Client{TLS: a.id.TLSConfig(), Timeout: time.Minute}
	defer c.Close()
	if err := a.id.Renew(context.Background(), c, s.srv.URL); err != nil {
		t.Fatal(err)
	}
	if err := updateRun(t, a, updPriv); err != nil {
		t.Fatalf("after renewal: %v", err)
	}
	id, err := LoadIdentity(state)
	if err != nil || !id.UpdateKey().Equal(updPub) {
		t.Fatalf("update.pub after renewal: %v", err)
	}
}

// TestEnrollWithoutUpdateKey: a server without an update key enrolls
// agents all the same, and no update.pub is written.
func TestEnrollWithoutUpdateKey(t *testing.T) {
	s := newServer(t)
	state := s.enroll(t)
	if _, err := os.Stat(filepath.Join(state, UpdateKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("update.pub from a server without an update key: %v", err)
	}
	id, err := LoadIdentity(state)
	if err != nil || id.UpdateKey() != nil {
		t.Fatalf("identity %v", err)
	}
}
