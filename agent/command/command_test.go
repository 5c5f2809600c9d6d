package command

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)

func keys(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func TestVerifyMatrix(t *testing.T) {
	pub, priv := keys(t)
	_, otherPriv := keys(t)
	dir := t.TempDir()
	rc, err := OpenReplayCache(filepath.Join(dir, "replay"))
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Key: pub, DeviceID: "cam-1", Replay: rc, Now: func() time.Time { return now },
		Policy: &Policy{Allow: []string{ActionIsolate, ActionRestore, ActionSetParam}, Params: []string{"log_level"}}}
	cmd := func(mod func(*Command)) Command {
		c := Command{ID: "c1", DeviceID: "cam-1", Action: ActionIsolate, Issued: now, Expires: now.Add(5 * time.Minute)}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	sign := func(k ed25519.PrivateKey, c Command) Signed {
		s, err := Sign(k, c)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	f := func(name string, s Signed, want string) {
		t.Helper()
		_, err := v.Verify(s)
		var r *Refusal
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: refused: %v", name, err)
		case want != "" && (!errors.As(err, &r) || r.Reason != want):
			t.Errorf("%s: got %v, want refusal %s", name, err, want)
		}
	}
	good := sign(priv, cmd(nil))
	f("valid", good, "")
	f("replayed", good, ReasonReplayed)
	f("unsigned", Signed{Payload: good.Payload}, ReasonMalformed)
	f("wrongly signed", sign(otherPriv, cmd(nil)), ReasonBadSignature)
	tampered := sign(priv, cmd(nil))
	tampered.Payload = []byte(strings.Replace(string(tampered.Payload), "isolate", "reboot", 1))
	f("tampered", tampered, ReasonBadSignature)
	f("wrong device", sign(priv, cmd(func(c *Command) { c.DeviceID = "cam-2" })), ReasonWrongDevice)
	f("expired", sign(priv, cmd(func(c *Command) { c.Expires = now.Add(-time.Second) })), ReasonExpired)
	f("too long-lived", sign(priv, cmd(func(c *Command) { c.Expires = now.Add(48 * time.Hour) })), ReasonExpired)
	f("disallowed", sign(priv, cmd(func(c *Command) { c.Action = ActionReboot })), ReasonNotAllowed)
	f("disallowed param", sign(priv, cmd(func(c *Command) {
		c.Action, c.Params = ActionSetParam, map[string]string{"key": "root_password", "value": "x"}
	})), ReasonNotAllowed)
	f("allowed param", sign(priv, cmd(func(c *Command) {
		c.Action, c.Params = ActionSetParam, map[string]string{"key": "log_level", "value": "debug"}
	})), "")
	f("no id", sign(priv, cmd(func(c *Command) { c.ID = "" })), ReasonMalformed)

	// The replay cache survives a restart.
	rc.Close()
	rc2, err := OpenReplayCache(filepath.Join(dir, "replay"))
	if err != nil {
		t.Fatal(err)
	}
	v.Replay = rc2
	f("replayed after restart", good, ReasonReplayed)
	v.Policy = nil
	f("no policy", sign(priv, cmd(nil)), ReasonNotAllowed)
}

func TestLoadPolicy(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "policy.json")
	os.WriteFile(p, []byte(`{"allow":["isolate","restore"],"services":["dropbear"]}`), 0o644)
	pol, err := LoadPolicy(p)
	if err != nil || len(pol.Allow) != 2 {
		t.Fatalf("%v %+v", err, pol)
	}
	os.WriteFile(p, []byte(`{"allow":["format_disk"]}`), 0o644)
	if _, err := LoadPolicy(p); err == nil || !strings.Contains(err.Error(), "format_disk") {
		t.Fatalf("want unknown action error, got %v", err)
	}
	os.WriteFile(p, []byte(`{"alow":["isolate"]}`), 0o644)
	if _, err := LoadPolicy(p); err == nil {
		t.Fatal("unknown field accepted")
	}
}

func TestSetParam(t *testing.T) {
	p := filepath.Join(t.TempDir(), "params.conf")
	os.WriteFile(p, []byte("# settings\nlog_level=info\nntp=pool.ntp.org\n"), 0o640)
	if err := SetParam(p, "log_level", "debug"); err != nil {
		t.Fatal(err)
	}
	if err := SetParam(p, "new_key", "1"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if string(b) != "# settings\nlog_level=debug\nntp=pool.ntp.org\nnew_key=1\n" {
		t.Fatalf("got %q", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if err := SetParam(p, "a\nb", "x"); err == nil {
		t.Fatal("newline in key accepted")
	}
}

type recorder struct{ calls []string }

func (r *recorder) run(_ context.Context, argv []string, stdin string) (string, error) {
	r.calls = append(r.calls, strings.Join(argv, " ")+"|"+stdin)
	return "", nil
}

func TestIsolateCommands(t *testing.T) {
	srv := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
	rs := IsolateRuleset(srv)
	for _, want := range []string{"policy drop", "ip saddr 192.0.2.1 accept", "ip6 daddr 2001:db8::1 accept", `iif "lo" accept`} {
		if !strings.Contains(rs, want) {
			t.Errorf("ruleset lacks %q:\n%s", want, rs)
		}
	}
	r := &recorder{}
	s := &System{ServerAddrs: srv, Firewall: "iptables", Run: r.run}
	if _, err := s.Execute(context.Background(), Command{Action: ActionIsolate}); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(r.calls, "\n")
	for _, want := range []string{"iptables -A VIGIL_ISOLATE -s 192.0.2.1 -j ACCEPT", "ip6tables -A VIGIL_ISOLATE -d 2001:db8::1 -j ACCEPT", "iptables -I INPUT 1 -j VIGIL_ISOLATE", "iptables -A VIGIL_ISOLATE -j DROP"} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q in\n%s", want, all)
		}
	}
	if strings.Contains(all, "iptables -A VIGIL_ISOLATE -s 2001:db8::1") {
		t.Error("an IPv6 address in an iptables rule")
	}
	if _, err := (&System{Run: r.run}).Execute(context.Background(), Command{Action: ActionIsolate}); err == nil {
		t.Fatal("isolation without a server address must be refused")
	}
}

func TestServiceCommand(t *testing.T) {
	r := &recorder{}
	s := &System{ServiceCommand: []string{"/usr/sbin/svc", "{action}", "{service}"}, Run: r.run}
	if _, err := s.Execute(context.Background(), Command{Action: ActionRestartService, Params: map[string]string{"service": "dropbear"}}); err != nil {
		t.Fatal(err)
	}
	if r.calls[0] != "/usr/sbin/svc restart dropbear|" {
		t.Fatalf("got %q", r.calls)
	}
	if _, err := s.Execute(context.Background(), Command{Action: ActionStopService, Params: map[string]string{"service": "x; rm -rf /"}}); err == nil {
		t.Fatal("bad service name accepted")
	}
}

func TestKillProcess(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	s := &System{}
	if _, err := s.Execute(context.Background(), Command{Action: ActionKillProcess, Params: map[string]string{"pid": pid, "name": "bash"}}); err == nil {
		t.Fatal("killed a process whose name does not match")
	}
	out, err := s.Execute(context.Background(), Command{Action: ActionKillProcess, Params: map[string]string{"pid": pid, "name": "sleep"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("process not killed: %v (%s)", err, out)
	}
}

func TestUpdate(t *testing.T) {
	pub, priv := keys(t)
	artifact := []byte("#!/bin/sh\necho new firmware\n")
	sum := sha256.Sum256(artifact)
	params := map[string]string{"url": "/artifacts/fw.bin", "sha256": hex.EncodeToString(sum[:]),
		"signature": base64.StdEncoding.EncodeToString(ed25519.Sign(priv, artifact)), "version": "2.0"}
	fetch := func(data []byte) func(context.Context, string) (io.ReadCloser, error) {
		return func(context.Context, string) (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader(string(data))), nil
		}
	}
	marker := filepath.Join(t.TempDir(), "rolled-back")
	s := &System{Fetch: fetch(artifact), UpdateKey: pub, Installer: []string{"/bin/sh", "{file}"}, Rollback: []string{"/bin/touch", marker}}
	out, err := s.Execute(context.Background(), Command{Action: ActionUpdate, Params: params})
	if err != nil || !strings.Contains(out, "new firmware") || !strings.Contains(out, "updated to 2.0") {
		t.Fatalf("%v: %s", err, out)
	}
	s.Fetch = fetch(append([]byte("x"), artifact...))
	if _, err := s.Execute(context.Background(), Command{Action: ActionUpdate, Params: params}); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("tampered artifact: %v", err)
	}
	other, _ := keys(t)
	s.Fetch, s.UpdateKey = fetch(artifact), other
	if _, err := s.Execute(context.Background(), Command{Action: ActionUpdate, Params: params}); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("wrong key: %v", err)
	}
	s.UpdateKey, s.Installer = pub, []string{"/bin/false", "{file}"}
	if _, err := s.Execute(context.Background(), Command{Action: ActionUpdate, Params: params}); err == nil || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("failing installer: %v", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("rollback did not run")
	}
}
