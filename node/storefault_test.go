package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/internal/testfs"
)

// TestReadyzAndRecoveryOnStoreFault runs a server whose store is on a
// tmpfs that the test fills up (a full disk is a real write failure, even
// for root, which chmod is not): /readyz answers 503 while the store
// cannot write, and once space is back the pipeline stores the events it
// could not store, with no restart, and /readyz is 200 again. The bus
// (JetStream) lives outside the tmpfs here: its own full-disk recovery is
// tested in bus/natsbus (TestDiskFullRecovery).
func TestReadyzAndRecoveryOnStoreFault(t *testing.T) {
	mnt := testfs.Tmpfs(t, "16m")
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = filepath.Join(mnt, "data"), "127.0.0.1:0", "warn"
	cfg.SigmaDirs = []string{t.TempDir()}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(cfg.DataDir, "nats")); err != nil {
		t.Fatal(err)
	}
	a := runTestApp(t, cfg)
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.ca.Pool()))
	if err != nil {
		t.Fatal(err)
	}
	seq := 0
	post := func(n int) {
		t.Helper()
		var b strings.Builder
		for range n {
			seq++
			ev, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("ev-%06d", seq), "time": time.Now().UTC().Format(time.RFC3339Nano),
				"device_id": fmt.Sprintf("dev-%d", seq%5), "kind": "net", "action": "flow", "fields": map[string]any{"pad": strings.Repeat("p", 1000)}})
			b.Write(ev)
			b.WriteByte('\n')
		}
		if res, err := c.PostEvents(t.Context(), []byte(b.String())); err != nil || res.Accepted != n {
			t.Fatalf("post %d events: %+v %v", n, res, err)
		}
	}
	// waitFor polls cond; the deadline is a guard against a hang, not a
	// measure (redelivery comes after the bus's AckWait of 10 s).
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); !cond(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting: %s", what)
			}
		}
	}
	stored := func(n int64) func() bool {
		return func() bool { got, err := a.store.CountEvents(t.Context()); return err == nil && got == n }
	}
	post(20)
	waitFor("20 events stored", stored(20))
	if err := c.Ready(t.Context()); err != nil {
		t.Fatalf("readyz before the fault: %v", err)
	}

	filler := testfs.Fill(t, mnt)
	for range 10 { // the WAL may have room left for a batch or two
		post(500)
		if c.Ready(t.Context()) != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitFor("readyz 503 while the disk is full", func() bool { return c.Ready(t.Context()) != nil })
	t.Logf("not ready as wanted: %v", c.Ready(t.Context()))

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	want := int64(seq)
	waitFor(fmt.Sprintf("all %d events stored after the fault cleared", want), stored(want))
	waitFor("readyz 200 after the fault cleared", func() bool { return c.Ready(t.Context()) == nil })
	post(5)
	waitFor("new events stored", stored(want+5))
}
