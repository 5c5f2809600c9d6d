package enroll

import (
	"crypto/ed25519"
	"path/filepath"
	"testing"

	"github.com/vigil-iot/vigil/agent/command"
)

// TestOnQueuedGetsACommandTheAgentAccepts checks the hook another
// transport (MQTT) uses: it receives each queued command signed, and the
// agent's own verification pipeline accepts it for that device only.
func TestOnQueuedGetsACommandTheAgentAccepts(t *testing.T) {
	f := newFixture(t, false)
	var got []command.Signed
	var dev string
	f.h.opts.OnQueued = func(d string, s command.Signed) { dev, got = d, append(got, s) }
	c, err := f.h.Send("cam-9", command.ActionIsolate, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || dev != "cam-9" {
		t.Fatalf("OnQueued got %d commands for %q", len(got), dev)
	}
	rc, err := command.OpenReplayCache(filepath.Join(t.TempDir(), "replay"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	pub := f.h.opts.CommandKey.Public().(ed25519.PublicKey)
	v := &command.Verifier{Key: pub, DeviceID: "cam-9", Policy: &command.Policy{Allow: []string{command.ActionIsolate}}, Replay: rc}
	run, err := v.Verify(got[0])
	if err != nil || run.ID != c.ID {
		t.Fatalf("the agent refuses the command OnQueued got: %v", err)
	}
	other := &command.Verifier{Key: pub, DeviceID: "cam-10", Policy: v.Policy, Replay: rc}
	if _, err := other.Verify(got[0]); err == nil {
		t.Fatal("another device accepted the command")
	}
	if _, err := v.Verify(got[0]); err == nil {
		t.Fatal("the same command ran twice")
	}
}
