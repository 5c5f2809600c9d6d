//go:build linux && amd64

package command

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// inNS runs fn with the calling thread in the named network namespace;
// sockets fn creates stay in it.
func inNS(t *testing.T, name string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid()))
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	target, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	const cloneNewNet = 0x40000000
	const sysSetns = 308 // linux/amd64
	if _, _, e := syscall.RawSyscall(sysSetns, target.Fd(), cloneNewNet, 0); e != 0 {
		t.Fatalf("setns %s: %v", name, e)
	}
	defer func() {
		if _, _, e := syscall.RawSyscall(sysSetns, self.Fd(), cloneNewNet, 0); e != 0 {
			panic(fmt.Sprintf("cannot return to the test's network namespace: %v", e))
		}
	}()
	fn()
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestIsolateInNetworkNamespace isolates a "device" namespace with the
// real nftables ruleset: a test host loses connectivity to it, the Vigil
// server's address keeps it, and restore gives it back.
func TestIsolateInNetworkNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft tool (apt-get install nftables)")
	}
	dev, host := fmt.Sprintf("vgl-dev-%d", os.Getpid()), fmt.Sprintf("vgl-host-%d", os.Getpid())
	if err := exec.Command("ip", "netns", "add", dev).Run(); err != nil {
		t.Skipf("cannot create a network namespace here: %v", err)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", dev).Run() })
	sh(t, "ip", "netns", "add", host)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", host).Run() })
	veth := fmt.Sprintf("vgl%d", os.Getpid()%100000)
	sh(t, "ip", "link", "add", veth+"a", "netns", dev, "type", "veth", "peer", "name", veth+"b", "netns", host)
	sh(t, "ip", "-n", dev, "addr", "add", "10.99.0.2/24", "dev", veth+"a")
	sh(t, "ip", "-n", host, "addr", "add", "10.99.0.1/24", "dev", veth+"b")
	sh(t, "ip", "-n", host, "addr", "add", "10.99.0.3/24", "dev", veth+"b") // the Vigil server
	for _, ns := range []string{dev, host} {
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	sh(t, "ip", "-n", dev, "link", "set", veth+"a", "up")
	sh(t, "ip", "-n", host, "link", "set", veth+"b", "up")

	var ln net.Listener
	inNS(t, dev, func() {
		var err error
		ln, err = net.Listen("tcp", "10.99.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
	})
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	reach := func(from string) bool {
		ok := false
		inNS(t, host, func() {
			d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
			c, err := d.Dial("tcp", ln.Addr().String())
			if err == nil {
				c.Close()
				ok = true
			}
		})
		return ok
	}
	if !reach("10.99.0.1") || !reach("10.99.0.3") {
		t.Fatal("no connectivity before isolation")
	}
	s := &System{Firewall: "nft", ServerAddrs: []netip.Addr{netip.MustParseAddr("10.99.0.3")},
		Run: func(ctx context.Context, argv []string, stdin string) (string, error) {
			cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", dev}, argv...)...)
			cmd.Stdin = strings.NewReader(stdin)
			out, err := cmd.CombinedOutput()
			return string(out), err
		}}
	if out, err := s.Execute(context.Background(), Command{Action: ActionIsolate}); err != nil {
		t.Fatalf("isolate: %v\n%s", err, out)
	}
	if reach("10.99.0.1") {
		t.Fatal("the test host still reaches the isolated device")
	}
	if !reach("10.99.0.3") {
		t.Fatal("the Vigil server lost the isolated device")
	}
	if out, err := s.Execute(context.Background(), Command{Action: ActionRestore}); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if !reach("10.99.0.1") {
		t.Fatal("no connectivity after restore")
	}
}
