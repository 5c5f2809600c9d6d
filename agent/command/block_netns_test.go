//go:build linux && amd64

package command

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBlockInNetworkNamespace runs the real nft scripts in a "gateway"
// namespace: a blocked address loses the gateway's listener, an address
// blocked on one port only loses that port, a block expires on its own,
// and unblock lifts a block.
func TestBlockInNetworkNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft tool (apt-get install nftables)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip tool (iproute2)")
	}
	gw, host := fmt.Sprintf("vgl-gw-%d", os.Getpid()), fmt.Sprintf("vgl-bhost-%d", os.Getpid())
	if err := exec.Command("ip", "netns", "add", gw).Run(); err != nil {
		t.Skipf("cannot create a network namespace here: %v", err)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", gw).Run() })
	sh(t, "ip", "netns", "add", host)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", host).Run() })
	veth := fmt.Sprintf("vgb%d", os.Getpid()%100000)
	sh(t, "ip", "link", "add", veth+"a", "netns", gw, "type", "veth", "peer", "name", veth+"b", "netns", host)
	sh(t, "ip", "-n", gw, "addr", "add", "10.213.7.2/24", "dev", veth+"a")
	sh(t, "ip", "-n", host, "addr", "add", "10.213.7.1/24", "dev", veth+"b")
	sh(t, "ip", "-n", host, "addr", "add", "10.213.7.3/24", "dev", veth+"b")
	for _, ns := range []string{gw, host} {
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	sh(t, "ip", "-n", gw, "link", "set", veth+"a", "up")
	sh(t, "ip", "-n", host, "link", "set", veth+"b", "up")

	var ln1, ln2 net.Listener
	inNS(t, gw, func() {
		var err error
		if ln1, err = net.Listen("tcp", "10.213.7.2:0"); err != nil {
			t.Fatal(err)
		}
		if ln2, err = net.Listen("tcp", "10.213.7.2:0"); err != nil {
			t.Fatal(err)
		}
	})
	for _, ln := range []net.Listener{ln1, ln2} {
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	reach := func(from string, ln net.Listener) bool {
		ok := false
		inNS(t, host, func() {
			d := net.Dialer{Timeout: 500 * time.Millisecond, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
			c, err := d.Dial("tcp", ln.Addr().String())
			if err == nil {
				c.Close()
				ok = true
			}
		})
		return ok
	}
	s := &System{Firewall: "nft", Run: func(ctx context.Context, argv []string, stdin string) (string, error) {
		cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", gw}, argv...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}}
	do := func(action string, p map[string]string) {
		t.Helper()
		if out, err := s.Execute(context.Background(), Command{Action: action, Params: p}); err != nil {
			t.Fatalf("%s %v: %v\n%s", action, p, err, out)
		}
	}
	if !reach("10.213.7.1", ln1) || !reach("10.213.7.3", ln1) || !reach("10.213.7.3", ln2) {
		t.Fatal("no connectivity before any block")
	}

	do(ActionBlock, map[string]string{"addr": "10.213.7.1", "timeout_s": "600"})
	do(ActionBlock, map[string]string{"addr": "10.213.7.1", "timeout_s": "600"}) // again: refreshes, no error
	if reach("10.213.7.1", ln1) {
		t.Fatal("a blocked address still reaches the gateway")
	}
	if !reach("10.213.7.3", ln1) {
		t.Fatal("an address that is not blocked lost the gateway")
	}
	do(ActionUnblock, map[string]string{"addr": "10.213.7.1", "timeout": "10m"})
	if !reach("10.213.7.1", ln1) {
		t.Fatal("no connectivity after unblock")
	}
	do(ActionUnblock, map[string]string{"addr": "10.213.7.1"}) // not blocked: still succeeds

	// A port block: traffic to and from port P of the gateway's own
	// address is dropped (the SYN in input), other ports still work.
	port := strconv.Itoa(ln2.Addr().(*net.TCPAddr).Port)
	do(ActionBlock, map[string]string{"addr": "10.213.7.2", "port": port, "proto": "tcp", "timeout_s": "600"})
	if reach("10.213.7.3", ln2) {
		t.Fatal("the blocked port is still reachable")
	}
	if !reach("10.213.7.3", ln1) {
		t.Fatal("a port that is not blocked lost connectivity")
	}
	do(ActionUnblock, map[string]string{"addr": "10.213.7.2", "port": port, "proto": "tcp"})
	if !reach("10.213.7.3", ln2) {
		t.Fatal("no connectivity to the port after unblock")
	}

	// A block expires on its own.
	do(ActionBlock, map[string]string{"addr": "10.213.7.0/24", "timeout_s": "1"})
	deadline := time.Now().Add(15 * time.Second)
	for !reach("10.213.7.3", ln1) {
		if time.Now().After(deadline) {
			t.Fatal("a block of 1 s has not expired after 15 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
