package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/node"
	"github.com/vigil-iot/vigil/store"
)

// run executes the vigil command line and returns its output and exit code.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	cmd := newRootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	var ec exitCode
	switch {
	case err == nil:
		return out.String(), 0
	case asExitCode(err, &ec):
		return out.String(), int(ec)
	default:
		return out.String() + err.Error(), -1
	}
}

// startTestApp runs a node on embedded defaults in a temp dir.
func startTestApp(t *testing.T) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.SigmaDirs = []string{t.TempDir()}
	return runTestApp(t, cfg)
}

// runTestApp validates cfg, opens and starts the node it describes, as
// vigil serve does, and closes it when the test ends.
func runTestApp(t *testing.T, cfg node.Config) *node.Node {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := node.Open(t.Context(), cfg, newLogger(os.Stderr, "warn"))
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

// revokeDevice revokes the certificate of device id through the API
// (POST /api/v1/devices/{id}/revoke, admin).
func revokeDevice(t *testing.T, a *node.Node, id string) error {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: client.TLSConfig(a.CAPool())}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, a.URL()+"/api/v1/devices/"+url.PathEscape(id)+"/revoke", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.AdminToken())
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("revoke %s: %s %s", id, res.Status, b)
	}
	return nil
}

// testSecretsKey writes a new operator secrets key file (mode 0600) and
// returns its path.
func testSecretsKey(t *testing.T) string {
	t.Helper()
	var b [32]byte
	rand.Read(b[:])
	path := filepath.Join(t.TempDir(), "secrets.key")
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(b[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCLIAgainstServer(t *testing.T) {
	a := startTestApp(t)
	conn := []string{"--server", a.URL(), "--token", a.AdminToken(), "--ca", filepath.Join(a.Config().DataDir, "pki", "ca.crt")}

	// Feed the brute force of the built-in rules through the real API.
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	now := time.Now().UTC()
	for i := range 6 {
		ev, _ := json.Marshal(map[string]any{
			"time": now.Add(time.Duration(i) * time.Second).Format(time.RFC3339Nano), "device_id": "cli-cam-1",
			"kind": "auth", "action": "login", "outcome": "failure", "fields": map[string]any{"user.name": "admin"},
		})
		b.Write(ev)
		b.WriteByte('\n')
	}
	if res, err := c.PostEvents(t.Context(), []byte(b.String())); err != nil || res.Accepted != 6 {
		t.Fatalf("post: %+v %v", res, err)
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		out, code := run(t, append([]string{"ctl", "incidents", "-o", "json"}, conn...)...)
		var incs []map[string]any
		if code != 0 {
			t.Fatalf("ctl incidents exited %d: %s", code, out)
		}
		if err := json.Unmarshal([]byte(out), &incs); err != nil {
			t.Fatalf("ctl incidents -o json printed no JSON: %v\n%s", err, out)
		}
		if len(incs) > 0 {
			if incs[0]["time_to_detect"] == "" {
				t.Errorf("incident without time_to_detect: %v", incs[0])
			}
			id, _ := incs[0]["id"].(string)
			out, code := run(t, append([]string{"ctl", "incidents", "resolve", id, "--as", "resolved", "--reason", "password changed", "-o", "json"}, conn...)...)
			if code != 0 || !strings.Contains(out, `"status": "resolved"`) || !strings.Contains(out, `"resolution": "password changed"`) ||
				!strings.Contains(out, `"resolved_by": "token:`) {
				t.Errorf("ctl incidents resolve: exit %d: %s", code, out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no incident from a brute force")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, sub := range []string{"devices", "alerts", "events"} {
		out, code := run(t, append([]string{"ctl", sub, "-o", "json"}, conn...)...)
		if code != 0 || !json.Valid([]byte(out)) || !strings.Contains(out, "cli-cam-1") {
			t.Errorf("ctl %s -o json: exit %d:\n%s", sub, code, out)
		}
	}
	if out, code := run(t, append([]string{"ctl", "alerts"}, conn...)...); code != 0 || !strings.Contains(out, "Login brute force on a device") {
		t.Errorf("ctl alerts table: exit %d:\n%s", code, out)
	}

	// Rules of the server: a new file in its sigma dir shows after reload.
	rule := "title: CLI test rule\nid: 33333333-3333-4333-8333-333333333333\ntags: [attack.t1105]\n" +
		"logsource: {product: linux, category: process_creation}\n" +
		"detection:\n  sel: {process.command_line|contains: tftp}\n  condition: sel\nlevel: high\n"
	os.WriteFile(filepath.Join(a.Config().SigmaDirs[0], "cli.yml"), []byte(rule), 0o644)
	if out, code := run(t, append([]string{"rules", "reload"}, conn...)...); code != 0 || !strings.Contains(out, "rejected=0") {
		t.Fatalf("rules reload: exit %d:\n%s", code, out)
	}
	if out, code := run(t, append([]string{"rules", "list", "-o", "json"}, conn...)...); code != 0 || !strings.Contains(out, "33333333-3333-4333-8333-333333333333") {
		t.Fatalf("rules list: exit %d:\n%s", code, out)
	}
	if out, code := run(t, append([]string{"rules", "disable", "33333333-3333-4333-8333-333333333333"}, conn...)...); code != 0 || !strings.Contains(out, "disabled 1") {
		t.Fatalf("rules disable: exit %d:\n%s", code, out)
	}

	// A token made offline on the data dir works at once.
	out, code := run(t, "ctl", "token", "create", "--role", "viewer", "--data-dir", a.Config().DataDir)
	if code != 0 {
		t.Fatalf("token create: %d %s", code, out)
	}
	viewer := strings.TrimSpace(out)
	vc, _ := client.New(a.URL(), viewer, client.TLSConfig(a.CAPool()))
	if _, _, err := vc.ListAlerts(t.Context(), store.AlertFilter{}); err != nil {
		t.Errorf("a viewer token made offline cannot read: %v", err)
	}
	if _, err := vc.CreateToken(t.Context(), "x", auth.RoleAdmin); err == nil {
		t.Error("a viewer could create an admin token")
	}
}

func TestRulesCheckAndTest(t *testing.T) {
	dir := t.TempDir()
	good := "title: Good\nid: 44444444-4444-4444-8444-444444444444\nlogsource: {product: linux, category: process_creation}\n" +
		"detection:\n  sel: {CommandLine|contains|all: [wget, /tmp]}\n  filter: {User: root}\n  condition: sel and not filter\nlevel: high\n"
	os.WriteFile(filepath.Join(dir, "good.yml"), []byte(good), 0o644)
	out, code := run(t, "rules", "check", dir)
	if code != 0 || !strings.Contains(out, "rules: total=1 compiled=1 rejected=0") {
		t.Fatalf("check of a good dir: exit %d:\n%s", code, out)
	}
	os.WriteFile(filepath.Join(dir, "bad.yml"), []byte("title: Bad\nlogsource: {product: linux}\ndetection:\n  sel: {a: 1}\n  condition: sel and nothere\n"), 0o644)
	out, code = run(t, "rules", "check", dir)
	if code != 1 || !strings.Contains(out, "rules: total=2 compiled=1 rejected=1") || !strings.Contains(out, "bad.yml:") {
		t.Fatalf("check of a dir with a bad rule: exit %d:\n%s", code, out)
	}

	events := filepath.Join(dir, "events.jsonl")
	os.WriteFile(events, []byte(`{"CommandLine":"wget http://x -O /tmp/a","User":"www"}`+"\n"+`{"CommandLine":"wget http://x -O /tmp/a"}`+"\n"+`{"CommandLine":"wget http://x -O /tmp/a","User":"root"}`+"\n"), 0o644)
	out, code = run(t, "rules", "test", "--rule", filepath.Join(dir, "good.yml"), "--events", events)
	if code != 0 || strings.Count(out, ": MATCH:") != 2 || !strings.Contains(out, "line 3: no match") {
		t.Fatalf("rules test: exit %d:\n%s", code, out)
	}
	os.WriteFile(events, []byte(`{"CommandLine":"ls"}`+"\n"), 0o644)
	if out, code = run(t, "rules", "test", "--rule", filepath.Join(dir, "good.yml"), "--events", events); code != 1 {
		t.Fatalf("rules test without a match: exit %d, want 1:\n%s", code, out)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
