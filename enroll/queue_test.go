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
// Handler on the same store) and checks that the unexpired ones, and only
// those, are served to their devices once, still signed for them, that
// their results are still recorded, and that OnQueued gets them again.
func TestQueueSurvivesRestart(t *testing.T) {
	f := newFixture(t, false)
	clock := &stepClock{t: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}
	opts := f.h.opts
	opts.Clock, opts.Commands, opts.Registerer = clock, openSQLite(t), nil
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
	res := command.Result{CommandID: long.ID, DeviceID: "cam-1", Status: command.StatusSucceeded}
	if err := h2.AcceptResult(&res); err != nil {
		t.Fatalf("the result of the restored command: %v", err)
	}
	if c, r, done := h2.Result(long.ID); !done || r.Status != command.StatusSucceeded || c.Action != command.ActionRestore {
		t.Fatalf("Result after the restart: %+v %+v %v", c, r, done)
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

// TestImportQueueFile checks the upgrade from a data dir with a queue
// file: its unexpired commands move into the store once, in order, still
// signed, and are served by the next poll; the file is renamed.
func TestImportQueueFile(t *testing.T) {
	f := newFixture(t, false)
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	clock := &stepClock{t: now}
	var file []command.Signed
	var want []string
	for i, c := range []command.Command{
		{ID: "c1", DeviceID: "cam-1", Action: command.ActionIsolate, Issued: now.Add(-time.Minute), Expires: now.Add(time.Hour)},
		{ID: "c2", DeviceID: "cam-1", Action: command.ActionRestore, Issued: now.Add(-time.Hour), Expires: now.Add(-time.Second)}, // expired
		{ID: "c3", DeviceID: "cam-1", Action: command.ActionReboot, Issued: now, Expires: now.Add(time.Hour)},
	} {
		s, err := command.Sign(f.h.opts.CommandKey, c)
		if err != nil {
			t.Fatal(err)
		}
		file = append(file, s)
		if i != 1 {
			want = append(want, c.ID)
		}
	}
	b, _ := json.Marshal(queueState{Version: 1, Commands: file})
	qf := filepath.Join(t.TempDir(), QueueFile)
	if err := os.WriteFile(qf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	st := openSQLite(t)
	n, err := ImportQueueFile(st, qf, clock)
	if err != nil || n != 2 {
		t.Fatalf("ImportQueueFile: %d, %v; want 2", n, err)
	}
	if _, err := os.Stat(qf + ImportedSuffix); err != nil {
		t.Fatalf("the file is not renamed: %v", err)
	}
	if n, err := ImportQueueFile(st, qf, clock); err != nil || n != 0 {
		t.Fatalf("a second import: %d, %v", n, err)
	}
	opts := f.h.opts
	opts.Clock, opts.Commands, opts.Registerer = clock, st, nil
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range pollOnce(t, h, "cam-1") {
		got = append(got, c.ID)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("served after the import: %v, want %v", got, want)
	}
}

func TestImportQueueFileErrors(t *testing.T) {
	dir := t.TempDir()
	st := openSQLite(t)
	check := func(name, body, want string) {
		t.Helper()
		qf := filepath.Join(dir, name)
		os.WriteFile(qf, []byte(body), 0o600)
		_, err := ImportQueueFile(st, qf, nil)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), qf) {
			t.Errorf("%s: got %v, want %q and the file name", body, err, want)
		}
	}
	check("garbage.json", "{", "unexpected end")
	check("version.json", `{"version": 2, "commands": []}`, "version 2")
	check("payload.json", `{"version": 1, "commands": [{"payload": "bm90IGpzb24=", "signature": ""}]}`, "command 0")
}

// FuzzLoadQueue feeds loadQueue arbitrary queue files: it returns
// commands with an id, a device and an expiry, or an error, and never
// panics.
func FuzzLoadQueue(f *testing.F) {
	f.Add([]byte(`{"version": 1, "commands": []}`))
	f.Add([]byte(`{"version": 1, "commands": [{"payload": "bm90IGpzb24=", "signature": ""}]}`))
	f.Add([]byte(`{"version": 1, "commands": [{"payload": "eyJpZCI6ImMxIiwiZGV2aWNlX2lkIjoiY2FtLTEiLCJleHBpcmVzIjoiMjAyNi0wMS0wMVQwMDowMDowMFoifQ==", "signature": ""}]}`))
	f.Add([]byte(`{`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "q.json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		cmds, signed, err := loadQueue(path)
		if err != nil {
			return
		}
		if len(cmds) != len(signed) {
			t.Fatalf("%d commands, %d signed", len(cmds), len(signed))
		}
		for _, c := range cmds {
			if c.ID == "" || c.DeviceID == "" || c.Expires.IsZero() {
				t.Fatalf("accepted %+v", c)
			}
		}
	})
}
