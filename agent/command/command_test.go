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
	"slices"
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
	clock := func() time.Time { return now }
	rc, err := OpenReplayCache(filepath.Join(dir, "replay"), clock)
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Key: pub, DeviceID: "cam-1", Replay: rc, Now: clock,
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
	rc2, err := OpenReplayCache(filepath.Join(dir, "replay"), clock)
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
	want4 := "*filter\n:VIGIL_ISOLATE - [0:0]\n-A VIGIL_ISOLATE -i lo -j ACCEPT\n-A VIGIL_ISOLATE -o lo -j ACCEPT\n" +
		"-A VIGIL_ISOLATE -s 192.0.2.1 -j ACCEPT\n-A VIGIL_ISOLATE -d 192.0.2.1 -j ACCEPT\n-A VIGIL_ISOLATE -j DROP\n" +
		"-I INPUT 1 -j VIGIL_ISOLATE\n-I OUTPUT 1 -j VIGIL_ISOLATE\nCOMMIT\n"
	if got := IptablesIsolateRules(srv, false); got != want4 {
		t.Errorf("IPv4 rules:\n%s\nwant\n%s", got, want4)
	}
	if got := IptablesIsolateRules(srv, true); !strings.Contains(got, "-A VIGIL_ISOLATE -d 2001:db8::1 -j ACCEPT\n") || strings.Contains(got, "192.0.2.1") {
		t.Errorf("IPv6 rules:\n%s", got)
	}
	if _, err := (&System{Run: (&fakeFirewall{}).run}).Execute(context.Background(), Command{Action: ActionIsolate}); err == nil {
		t.Fatal("isolation without a server address must be refused")
	}
}

// fakeFirewall answers like iptables and nft would: a command whose
// argv starts with one of fail fails; "-n -L VIGIL_ISOLATE" fails (the
// chain is gone) unless stuck, and so does "-D" (no jump left).
type fakeFirewall struct {
	calls []string
	fail  []string
	stuck bool
}

func (f *fakeFirewall) run(_ context.Context, argv []string, stdin string) (string, error) {
	line := strings.Join(argv, " ")
	f.calls = append(f.calls, line+"|"+stdin)
	for _, p := range f.fail {
		if strings.HasPrefix(line, p) {
			return "boom", errors.New("exit status 1")
		}
	}
	if strings.Contains(line, " -D ") || (strings.Contains(line, " -n -L ") && !f.stuck) {
		return "No chain/target/match by that name.", errors.New("exit status 1")
	}
	return "", nil
}

func (f *fakeFirewall) ran(prefix string) []string {
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func lookPath(found ...string) func(string) (string, error) {
	return func(p string) (string, error) {
		if slices.Contains(found, p) {
			return "/usr/sbin/" + p, nil
		}
		return "", exec.ErrNotFound
	}
}

// TestIsolateIptables covers the iptables path: one atomic
// iptables-restore per family (IPv6 only when the device has it), undone
// when a family fails; the fallback from a missing or failing nft; and a
// restore that reports a chain it could not remove.
func TestIsolateIptables(t *testing.T) {
	srv := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
	v6root, v4root := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(v6root, "proc/net"), 0o755)
	os.WriteFile(filepath.Join(v6root, "proc/net/if_inet6"), []byte("00000000000000000000000000000001 01 80 10 80       lo\n"), 0o644)
	all := lookPath("iptables", "ip6tables", "iptables-restore", "ip6tables-restore")
	ctx := context.Background()
	isolate := Command{Action: ActionIsolate}

	f := &fakeFirewall{}
	s := &System{ServerAddrs: srv, Firewall: "iptables", Root: v6root, LookPath: all, Run: f.run}
	out, err := s.Execute(ctx, isolate)
	if err != nil || out != "isolated with iptables chain VIGIL_ISOLATE and ip6tables" {
		t.Fatalf("isolate: %q %v", out, err)
	}
	if got := f.ran("iptables-restore --noflush|"); len(got) != 1 || !strings.HasSuffix(got[0], IptablesIsolateRules(srv, false)) {
		t.Errorf("iptables-restore: %q", got)
	}
	if got := f.ran("ip6tables-restore --noflush|"); len(got) != 1 || !strings.HasSuffix(got[0], IptablesIsolateRules(srv, true)) {
		t.Errorf("ip6tables-restore: %q", got)
	}
	if len(f.ran("nft")) != 0 {
		t.Errorf("nft ran with firewall iptables: %q", f.ran("nft"))
	}

	// No IPv6 on the device: no ip6tables.
	f = &fakeFirewall{}
	s = &System{ServerAddrs: srv, Firewall: "iptables", Root: v4root, LookPath: all, Run: f.run}
	if out, err := s.Execute(ctx, isolate); err != nil || !strings.Contains(out, "no IPv6") || len(f.ran("ip6tables-restore")) != 0 {
		t.Fatalf("isolate without IPv6: %q %v %q", out, err, f.calls)
	}

	// The IPv6 half fails: the IPv4 half is undone.
	f = &fakeFirewall{fail: []string{"ip6tables-restore"}}
	s = &System{ServerAddrs: srv, Firewall: "iptables", Root: v6root, LookPath: all, Run: f.run}
	if _, err := s.Execute(ctx, isolate); err == nil || !strings.Contains(err.Error(), "ip6tables-restore") {
		t.Fatalf("failed IPv6 half: %v", err)
	}
	if c := f.calls[len(f.calls)-1]; !strings.HasPrefix(c, "ip6tables -w -n -L VIGIL_ISOLATE") || len(f.ran("iptables -w -X VIGIL_ISOLATE")) != 2 {
		t.Fatalf("not undone after the failure: %q", f.calls)
	}

	// Auto: no nft on the device, iptables is used.
	f = &fakeFirewall{}
	s = &System{ServerAddrs: srv, Root: v4root, LookPath: all, Run: f.run}
	if out, err := s.Execute(ctx, isolate); err != nil || !strings.HasPrefix(out, "isolated with iptables") || len(f.ran("nft")) != 0 {
		t.Fatalf("auto without nft: %q %v %q", out, err, f.calls)
	}

	// Auto: nft is there but fails (no nf_tables in the kernel).
	f = &fakeFirewall{fail: []string{"nft -f"}}
	s = &System{ServerAddrs: srv, Root: v4root, LookPath: lookPath("nft", "iptables", "iptables-restore"), Run: f.run}
	if out, err := s.Execute(ctx, isolate); err != nil || !strings.Contains(out, "nftables failed") || len(f.ran("iptables-restore")) != 1 {
		t.Fatalf("auto with a failing nft: %q %v %q", out, err, f.calls)
	}
	// ... and nothing to fall back to.
	s.LookPath = lookPath("nft")
	if _, err := s.Execute(ctx, isolate); err == nil {
		t.Fatal("isolated with a failing nft and no iptables")
	}
	// nft configured: no fallback.
	s.Firewall, s.LookPath = "nft", all
	if _, err := s.Execute(ctx, isolate); err == nil {
		t.Fatal("fell back to iptables with firewall nft configured")
	}

	// Restore removes both the nft table and the chains; a chain that
	// stays is an error.
	f = &fakeFirewall{}
	s = &System{ServerAddrs: srv, Root: v6root, LookPath: lookPath("nft", "iptables", "ip6tables"), Run: f.run}
	if out, err := s.Execute(ctx, Command{Action: ActionRestore}); err != nil || out != "restored: nftables table inet vigil_isolate and iptables/ip6tables chain VIGIL_ISOLATE removed" {
		t.Fatalf("restore: %q %v", out, err)
	}
	f.stuck = true
	if _, err := s.Execute(ctx, Command{Action: ActionRestore}); err == nil || !strings.Contains(err.Error(), "still there") {
		t.Fatalf("restore of a stuck chain: %v", err)
	}
	s = &System{ServerAddrs: srv, LookPath: lookPath(), Run: f.run}
	if _, err := s.Execute(ctx, Command{Action: ActionRestore}); err == nil {
		t.Fatal("restored with neither nft nor iptables")
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
	if err != nil || !strings.Contains(out, "new firmware") || !strings.Contains(out, "updated firmware to 2.0") {
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
