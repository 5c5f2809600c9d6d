package enroll

import (
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/ingest/httpin"
)

type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *stepClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// pollOnce asks h for dev's commands the way an agent's long poll does.
func pollOnce(t *testing.T, h *Handler, dev string) []command.Command {
	t.Helper()
	r := httptest.NewRequest("GET", "/api/v1/agent/commands?wait=0s", nil)
	r = r.WithContext(httpin.WithDevice(r.Context(), dev))
	w := httptest.NewRecorder()
	h.poll(w, r)
	if w.Code == http.StatusNoContent {
		return nil
	}
	var p command.Poll
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("poll: %d %s", w.Code, w.Body)
	}
	var out []command.Command
	for _, s := range p.Commands {
		var c command.Command
		json.Unmarshal(s.Payload, &c)
		out = append(out, c)
	}
	return out
}

// TestQueueSurvivesRestart queues commands, "restarts" the server (a new
// Handler on the same QueueFile) and checks that the unexpired ones, and
// only those, are served to their devices once, still signed for them,
// that their results are still recorded, and that OnQueued gets them
// again.
func TestQueueSurvivesRestart(t *testing.T) {
	f := newFixture(t, false)
	clock := &stepClock{t: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}
	qf := filepath.Join(t.TempDir(), QueueFile)
	opts := f.h.opts
	opts.Clock, opts.QueueFile, opts.Registerer = clock, qf, nil
	h1, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	short, _ := h1.Send("cam-1", command.ActionIsolate, nil, time.Minute)
	long, _ := h1.Send("cam-1", command.ActionRestore, nil, time.Hour)
	other, _ := h1.Send("cam-2", command.ActionReboot, nil, time.Hour)
	taken, _ := h1.Send("cam-3", command.ActionReboot, nil, time.Hour)
	if got := pollOnce(t, h1, "cam-3"); len(got) != 1 || got[0].ID != taken.ID {
		t.Fatalf("cam-3 polled %v", got)
	}
	if fi, err := os.Stat(qf); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("queue file: %v %v", fi, err)
	}

	// Restart two minutes later: the isolate expired.
	clock.add(2 * time.Minute)
	var requeued []string
	var signed []command.Signed
	opts.OnQueued = func(dev string, s command.Signed) { requeued, signed = append(requeued, dev), append(signed, s) }
	h2, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(requeued, ",") != "cam-1,cam-2" {
		t.Fatalf("OnQueued after the restart got %v, want cam-1,cam-2", requeued)
	}
	// Restored, the command is still the one the server signed.
	rc, err := command.OpenReplayCache(filepath.Join(t.TempDir(), "replay"), clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	v := &command.Verifier{Key: opts.CommandKey.Public().(ed25519.PublicKey), DeviceID: "cam-1",
		Policy: &command.Policy{Allow: []string{command.ActionRestore}}, Replay: rc, Now: clock.Now}
	if c, err := v.Verify(signed[0]); err != nil || c.ID != long.ID {
		t.Fatalf("the agent refuses the restored command: %v", err)
	}
	got := pollOnce(t, h2, "cam-1")
	if len(got) != 1 || got[0].ID != long.ID || got[0].DeviceID != "cam-1" {
		t.Fatalf("cam-1 after the restart: %+v (short %s, long %s)", got, short.ID, long.ID)
	}
	if got := pollOnce(t, h2, "cam-3"); len(got) != 0 {
		t.Fatalf("a command already taken came back: %+v", got)
	}
	if got := pollOnce(t, h2, "cam-1"); len(got) != 0 {
		t.Fatalf("served twice: %+v", got)
	}
	// The restored command's result is recorded against it.
	h2.mu.Lock()
	_, known := h2.issued[long.ID]
	h2.mu.Unlock()
	if !known {
		t.Fatal("the restored command is not known as issued")
	}

	// A third start sees what h2 left: cam-2's reboot only.
	h3, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := pollOnce(t, h3, "cam-1"); len(got) != 0 {
		t.Fatalf("cam-1 served again after a second restart: %+v", got)
	}
	if got := pollOnce(t, h3, "cam-2"); len(got) != 1 || got[0].ID != other.ID {
		t.Fatalf("cam-2 after two restarts: %+v", got)
	}
}

func TestQueueFileErrors(t *testing.T) {
	f := newFixture(t, false)
	dir := t.TempDir()
	check := func(name, body, want string) {
		t.Helper()
		qf := filepath.Join(dir, name)
		os.WriteFile(qf, []byte(body), 0o600)
		opts := f.h.opts
		opts.QueueFile, opts.Registerer = qf, nil
		_, err := New(opts)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), qf) {
			t.Errorf("%s: got %v, want %q and the file name", body, err, want)
		}
	}
	check("garbage.json", "{", "unexpected end")
	check("version.json", `{"version": 2, "commands": []}`, "version 2")
	check("payload.json", `{"version": 1, "commands": [{"payload": "bm90IGpzb24=", "signature": ""}]}`, "command 0")
}
