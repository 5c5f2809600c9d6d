package command

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseBlock(t *testing.T) {
	ok := func(p map[string]string, unblock bool, want Block) {
		t.Helper()
		got, err := ParseBlock(p, unblock)
		if err != nil {
			t.Errorf("%v: %v", p, err)
			return
		}
		if got.String() != want.String() || got.Timeout != want.Timeout {
			t.Errorf("%v: got %s (%s), want %s (%s)", p, got, got.Timeout, want, want.Timeout)
		}
	}
	pfx := netip.MustParsePrefix
	ok(map[string]string{"addr": "203.0.113.7", "timeout_s": "1800"}, false, Block{Prefix: pfx("203.0.113.7/32"), Timeout: 30 * time.Minute})
	ok(map[string]string{"addr": "10.0.0.0/8"}, false, Block{Prefix: pfx("10.0.0.0/8"), Timeout: time.Hour})
	ok(map[string]string{"addr": "2001:db8::1", "timeout_s": "86400"}, false, Block{Prefix: pfx("2001:db8::1/128"), Timeout: 24 * time.Hour})
	ok(map[string]string{"addr": "10.1.2.3", "port": "23", "timeout_s": "60"}, false, Block{Prefix: pfx("10.1.2.3/32"), Protos: []string{"tcp", "udp"}, Port: 23, Timeout: time.Minute})
	ok(map[string]string{"addr": "10.1.2.3", "port": "53", "proto": "udp", "timeout_s": "60"}, false, Block{Prefix: pfx("10.1.2.3/32"), Protos: []string{"udp"}, Port: 53, Timeout: time.Minute})
	// An unblock made by rolling back a block gets the block's params back.
	ok(map[string]string{"addr": "10.0.0.0/8", "timeout": "2h"}, true, Block{Prefix: pfx("10.0.0.0/8")})
	ok(map[string]string{"addr": "10.0.0.0/8", "timeout_s": "7200"}, true, Block{Prefix: pfx("10.0.0.0/8")})

	bad := func(p map[string]string, unblock bool, want string) {
		t.Helper()
		_, err := ParseBlock(p, unblock)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: got %v, want an error with %q", p, err, want)
		}
	}
	bad(map[string]string{}, false, "addr is required")
	bad(map[string]string{"addr": "nope"}, false, `addr "nope" is not an IP address`)
	bad(map[string]string{"addr": "10.0.0.1; flush ruleset"}, false, "is not an IP address")
	bad(map[string]string{"addr": "10.0.0.0/33"}, false, "is not an IP address")
	bad(map[string]string{"addr": "10.1.2.3/8"}, false, "host bits set (did you mean 10.0.0.0/8?)")
	bad(map[string]string{"addr": "0.0.0.0/0"}, false, "would match every address")
	bad(map[string]string{"addr": "::/0"}, true, "would match every address")
	bad(map[string]string{"addr": "127.0.0.1"}, false, "loopback")
	bad(map[string]string{"addr": "0.0.0.0"}, false, "unspecified")
	bad(map[string]string{"addr": "224.0.0.1"}, false, "multicast")
	bad(map[string]string{"addr": "fe80::1%eth0"}, false, "is not an IP address")
	bad(map[string]string{"addr": "::ffff:10.0.0.1"}, false, "IPv4-mapped")
	bad(map[string]string{"addr": "10.0.0.1", "port": "0"}, false, `port "0" is not a number in [1, 65535]`)
	bad(map[string]string{"addr": "10.0.0.1", "port": "65536"}, false, "port")
	bad(map[string]string{"addr": "10.0.0.1", "port": "+22"}, false, "port")
	bad(map[string]string{"addr": "10.0.0.1", "port": "22", "proto": "icmp"}, false, `proto "icmp" is not tcp or udp`)
	bad(map[string]string{"addr": "10.0.0.1", "proto": "tcp"}, false, `proto "tcp" needs a port`)
	bad(map[string]string{"addr": "10.0.0.1", "timeout_s": "0"}, false, "timeout_s \"0\" is not a whole number of seconds in [1, 86400]")
	bad(map[string]string{"addr": "10.0.0.1", "timeout_s": "86401"}, false, "timeout_s")
	bad(map[string]string{"addr": "10.0.0.1", "timeout_s": "1h"}, false, "timeout_s")
	bad(map[string]string{"addr": "10.0.0.1", "timeout": "1h"}, false, "unknown params timeout")
	bad(map[string]string{"addr": "10.0.0.1", "gateway": "gw", "zz": "1"}, true, "unknown params gateway, zz")
}

func TestBlockScripts(t *testing.T) {
	b, err := ParseBlock(map[string]string{"addr": "10.213.0.0/16", "port": "23", "proto": "tcp", "timeout_s": "90"}, false)
	if err != nil {
		t.Fatal(err)
	}
	want := blockSetup + `add element inet vigil blocked_svc { 10.213.0.0/16 . tcp . 23 timeout 90s }
delete element inet vigil blocked_svc { 10.213.0.0/16 . tcp . 23 }
add element inet vigil blocked_svc { 10.213.0.0/16 . tcp . 23 timeout 90s }
`
	if got := BlockScript(b); got != want {
		t.Errorf("block script:\n%s\nwant:\n%s", got, want)
	}
	b, _ = ParseBlock(map[string]string{"addr": "2001:db8::7"}, true)
	want = blockSetup + `add element inet vigil blocked6 { 2001:db8::7/128 timeout 1s }
delete element inet vigil blocked6 { 2001:db8::7/128 }
`
	if got := UnblockScript(b); got != want {
		t.Errorf("unblock script:\n%s\nwant:\n%s", got, want)
	}
	for _, line := range []string{
		"add set inet vigil blocked { type ipv4_addr; flags interval, timeout; }",
		"add chain inet vigil forward { type filter hook forward priority -5; policy accept; }",
		"flush chain inet vigil block",
		"add rule inet vigil block ip daddr . meta l4proto . th dport @blocked_svc drop",
		"add rule inet vigil forward jump block",
	} {
		if !strings.Contains(blockSetup, line+"\n") {
			t.Errorf("the setup lacks %q", line)
		}
	}
}

func TestBlockExecute(t *testing.T) {
	var runs []string
	s := &System{Firewall: "nft", ServerAddrs: []netip.Addr{netip.MustParseAddr("10.213.1.1")},
		Run: func(_ context.Context, argv []string, stdin string) (string, error) {
			runs = append(runs, strings.Join(argv, " ")+"\n"+stdin)
			return "", nil
		}}
	ctx := context.Background()
	out, err := s.Execute(ctx, Command{Action: ActionBlock, Params: map[string]string{"addr": "203.0.113.7", "timeout_s": "1800"}})
	if err != nil || out != "blocked 203.0.113.7/32 for 30m0s (nftables table inet vigil)" {
		t.Fatalf("block: %q %v", out, err)
	}
	if len(runs) != 1 || !strings.HasPrefix(runs[0], "nft -f -\n"+blockSetup) || !strings.Contains(runs[0], "add element inet vigil blocked { 203.0.113.7/32 timeout 1800s }\n") {
		t.Fatalf("ran %q", runs)
	}
	if _, err := s.Execute(ctx, Command{Action: ActionBlock, Params: map[string]string{"addr": "10.213.0.0/16"}}); err == nil || !strings.Contains(err.Error(), "contains the Vigil server's address 10.213.1.1") {
		t.Fatalf("blocking the server: %v", err)
	}
	if _, err := s.Execute(ctx, Command{Action: ActionUnblock, Params: map[string]string{"addr": "10.213.0.0/16"}}); err != nil {
		t.Fatalf("unblock: %v", err)
	}
	if _, err := s.Execute(ctx, Command{Action: ActionBlock, Params: map[string]string{"addr": "bad"}}); err == nil {
		t.Fatal("a bad addr ran")
	}
	if len(runs) != 2 {
		t.Fatalf("ran %d scripts, want 2 (the refused ones must not run)", len(runs))
	}
	s.Firewall = "iptables"
	if _, err := s.Execute(ctx, Command{Action: ActionBlock, Params: map[string]string{"addr": "203.0.113.7"}}); err == nil || !strings.Contains(err.Error(), "needs nftables") {
		t.Fatalf("iptables: %v", err)
	}
}

func TestPolicyAllowsBlock(t *testing.T) {
	f := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(f, []byte(`{"allow": ["block"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPolicy(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Permits(Command{Action: ActionBlock}); err != nil {
		t.Fatal(err)
	}
	if err := p.Permits(Command{Action: ActionUnblock}); err == nil {
		t.Fatal("unblock allowed by a policy that lists only block")
	}
}
