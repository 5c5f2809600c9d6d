package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/respond"
	"github.com/vigil-iot/vigil/store"
)

// startTestApp runs a node on embedded defaults in a temp dir.
func startTestApp(t *testing.T) *Node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.SigmaDirs = []string{t.TempDir()}
	return runTestApp(t, cfg)
}

// runTestApp validates cfg, opens and starts the node it describes, and
// closes it when the test ends.
func runTestApp(t *testing.T, cfg Config) *Node {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := Open(t.Context(), cfg, newLogger(os.Stderr, "warn"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// newLogger is a text logger at level, as vigil serve's.
func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// waitFor polls cond for up to 30 s; the test fails with what and cond's
// last word when it is not reached.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached; last: %s", what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// actionsOf lists the response actions on dev through the API.
func actionsOf(t *testing.T, c *client.Client, dev string) []respond.ActionView {
	t.Helper()
	acts, _, err := c.ListActions(t.Context(), store.ActionFilter{DeviceID: dev})
	if err != nil {
		t.Fatalf("list actions: %v", err)
	}
	return acts
}

// bruteForce posts six failed logins on dev (from an address and as a user
// of their own for each n, so each is an incident of its own) through the real ingest API:
// the built-in rule vigil-auth-bruteforce raises a high alert tagged
// attack.t1110.
func bruteForce(t *testing.T, c *client.Client, dev string, n int) {
	t.Helper()
	ip := fmt.Sprintf("203.0.113.%d", 10+n)
	var b strings.Builder
	now := time.Now().UTC()
	for i := range 6 {
		ev, _ := json.Marshal(map[string]any{
			"time": now.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano), "device_id": dev,
			"kind": "auth", "action": "login", "outcome": "failure", "fields": map[string]any{"user.name": fmt.Sprintf("admin%d", n), "source.ip": ip},
		})
		b.Write(ev)
		b.WriteByte('\n')
	}
	if res, err := c.PostEvents(t.Context(), []byte(b.String())); err != nil || res.Accepted != 6 {
		t.Fatalf("post: %+v %v", res, err)
	}
}

// states describes actions as type:state(result), for failures.
func states(acts []respond.ActionView) string {
	var s []string
	for _, a := range acts {
		s = append(s, fmt.Sprintf("%s:%s(%s)", a.Type, a.State, a.Result))
	}
	return strings.Join(s, ", ")
}

// freeAddr returns a loopback TCP address free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
