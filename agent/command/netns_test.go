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
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var nsSeq atomic.Int32 // names namespaces of one test run apart

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
// real nftables ruleset: a test host loses connectivity to it (IPv4 and
// IPv6), the Vigil server's addresses keep it, and restore gives it back.
func TestIsolateInNetworkNamespace(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft tool (apt-get install nftables)")
	}
	testIsolation(t, "nft", nil)
}

// TestIsolateIptablesInNetworkNamespace does the same with the iptables
// fallback (iptables-restore and ip6tables-restore, chain VIGIL_ISOLATE),
// with each iptables backend found: the default iptables and, when the
// kernel supports it, iptables-legacy.
func TestIsolateIptablesInNetworkNamespace(t *testing.T) {
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		t.Skip("needs iptables (apt-get install iptables)")
	}
	t.Run("default", func(t *testing.T) { testIsolation(t, "iptables", nil) })
	t.Run("legacy", func(t *testing.T) {
		if _, err := exec.LookPath("iptables-legacy-restore"); err != nil {
			t.Skip("no iptables-legacy-restore")
		}
		legacy := map[string]string{"iptables": "iptables-legacy", "ip6tables": "ip6tables-legacy",
			"iptables-restore": "iptables-legacy-restore", "ip6tables-restore": "ip6tables-legacy-restore"}
		testIsolation(t, "iptables", legacy)
	})
}

// testIsolation builds a device namespace and a host namespace joined by
// a veth pair (IPv4 and IPv6), isolates the device with firewall (its
// programs renamed by rename, when set, and run inside the device
// namespace), and checks who reaches the device's listener before,
// during and after.
func testIsolation(t *testing.T, firewall string, rename map[string]string) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip tool (iproute2)")
	}
	n := nsSeq.Add(1)
	dev, host := fmt.Sprintf("vgl-dev-%d-%d", os.Getpid(), n), fmt.Sprintf("vgl-host-%d-%d", os.Getpid(), n)
	if err := exec.Command("ip", "netns", "add", dev).Run(); err != nil {
		t.Skipf("cannot create a network namespace here: %v", err)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", dev).Run() })
	sh(t, "ip", "netns", "add", host)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", host).Run() })
	veth := fmt.Sprintf("vgl%d", (os.Getpid()*10+int(n))%1000000)
	sh(t, "ip", "link", "add", veth+"a", "netns", dev, "type", "veth", "peer", "name", veth+"b", "netns", host)
	sh(t, "ip", "-n", dev, "addr", "add", "10.99.0.2/24", "dev", veth+"a")
	sh(t, "ip", "-n", host, "addr", "add", "10.99.0.1/24", "dev", veth+"b")
	sh(t, "ip", "-n", host, "addr", "add", "10.99.0.3/24", "dev", veth+"b") // the Vigil server
	sh(t, "ip", "-n", dev, "addr", "add", "fd00:99::2/64", "dev", veth+"a", "nodad")
	sh(t, "ip", "-n", host, "addr", "add", "fd00:99::1/64", "dev", veth+"b", "nodad")
	sh(t, "ip", "-n", host, "addr", "add", "fd00:99::3/64", "dev", veth+"b", "nodad")
	for _, ns := range []string{dev, host} {
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	sh(t, "ip", "-n", dev, "link", "set", veth+"a", "up")
	sh(t, "ip", "-n", host, "link", "set", veth+"b", "up")

	var ln net.Listener
	inNS(t, dev, func() {
		var err error
		ln, err = net.Listen("tcp", ":0")
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
	port := ln.Addr().(*net.TCPAddr).Port
	reach := func(from, to string) bool {
		ok := false
		inNS(t, host, func() {
			d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
			c, err := d.Dial("tcp", net.JoinHostPort(to, fmt.Sprint(port)))
			if err == nil {
				c.Close()
				ok = true
			}
		})
		return ok
	}
	check := func(when string, host, server bool) {
		t.Helper()
		for _, c := range []struct {
			from, to string
			want     bool
		}{{"10.99.0.1", "10.99.0.2", host}, {"fd00:99::1", "fd00:99::2", host}, {"10.99.0.3", "10.99.0.2", server}, {"fd00:99::3", "fd00:99::2", server}} {
			if got := reach(c.from, c.to); got != c.want {
				t.Errorf("%s: %s reaches the device: %v, want %v", when, c.from, got, c.want)
			}
		}
	}
	// IPv6 addresses need a moment (nodad, but the link comes up).
	for i := 0; i < 50 && !(reach("fd00:99::1", "fd00:99::2") && reach("fd00:99::3", "fd00:99::2")); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	check("before isolation", true, true)
	if t.Failed() {
		t.FailNow()
	}
	s := &System{Firewall: firewall, ServerAddrs: []netip.Addr{netip.MustParseAddr("10.99.0.3"), netip.MustParseAddr("fd00:99::3")},
		Run: func(ctx context.Context, argv []string, stdin string) (string, error) {
			if r, ok := rename[argv[0]]; ok {
				argv = append([]string{r}, argv[1:]...)
			}
			cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", dev}, argv...)...)
			cmd.Stdin = strings.NewReader(stdin)
			out, err := cmd.CombinedOutput()
			return string(out), err
		}}
	out, err := s.Execute(context.Background(), Command{Action: ActionIsolate})
	if err != nil && rename != nil && strings.Contains(out, "Table does not exist") {
		t.Skipf("this kernel has no legacy iptables (ip_tables module): %s", out)
	}
	if err != nil {
		t.Fatalf("isolate: %v\n%s", err, out)
	}
	t.Logf("isolate: %s", out)
	check("isolated", false, true)
	out, err = s.Execute(context.Background(), Command{Action: ActionRestore})
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	t.Logf("restore: %s", out)
	check("restored", true, true)
}
