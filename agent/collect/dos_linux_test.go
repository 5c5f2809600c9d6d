package collect

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/wire"
)

// The flood tests run three processes of this test binary: a victim in one
// network namespace (a TCP listener with a listen queue of 16 and a UDP
// socket with the smallest receive buffer that never reads) and an
// attacker in another, joined by a veth pair. The collector reads the
// victim's counters through /proc/<victim pid>/net, which shows its
// namespace. Nothing outside the two namespaces is touched.

const (
	dosAttacker = "10.66.0.1"
	dosVictim   = "10.66.0.2"
	dosTCPPort  = 8080
	dosUDPPort  = 9999
	// The same pair over IPv6 (unique local addresses, no duplicate
	// address detection so they are usable at once).
	dosAttacker6 = "fd66::1"
	dosVictim6   = "fd66::2"
)

// dosSpoofed are the SYN flood's forged sources: on the veth's subnet but
// nobody's, so the victim's SYN-ACKs go unanswered.
var dosSpoofed = []string{"10.66.0.10", "10.66.0.11", "10.66.0.12"}

var dosNetnsSeq atomic.Int64

// dosNamespaces creates the attacker's and the victim's namespaces, or
// skips when not root or without ip(8).
func dosNamespaces(t *testing.T) (attacker, victim string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root for ip netns and raw sockets")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("needs ip(8): %v", err)
	}
	id := os.Getpid()%10000*10 + int(dosNetnsSeq.Add(1)%10)
	attacker, victim = fmt.Sprintf("vigil-dosa-%d", id), fmt.Sprintf("vigil-dosv-%d", id)
	ifA, ifV := fmt.Sprintf("vda%d", id), fmt.Sprintf("vdv%d", id)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	run("ip", "netns", "add", attacker)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", attacker).Run() })
	run("ip", "netns", "add", victim)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", victim).Run() })
	run("ip", "link", "add", ifA, "netns", attacker, "type", "veth", "peer", "name", ifV, "netns", victim)
	run("ip", "-n", attacker, "addr", "add", dosAttacker+"/24", "dev", ifA)
	run("ip", "-n", victim, "addr", "add", dosVictim+"/24", "dev", ifV)
	run("ip", "-n", attacker, "addr", "add", dosAttacker6+"/64", "dev", ifA, "nodad")
	run("ip", "-n", victim, "addr", "add", dosVictim6+"/64", "dev", ifV, "nodad")
	run("ip", "-n", attacker, "link", "set", ifA, "up")
	run("ip", "-n", victim, "link", "set", ifV, "up")
	run("ip", "-n", victim, "link", "set", "lo", "up")
	// Permanent neighbour entries for IPv6: neighbour discovery would
	// hold only a few datagrams while it resolves, and drop the flood.
	mac := func(ns, dev string) string {
		t.Helper()
		out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", "dev", dev).CombinedOutput()
		if err != nil {
			t.Fatalf("ip link show %s: %v: %s", dev, err, out)
		}
		f := strings.Fields(string(out))
		for i := range f[:len(f)-1] {
			if f[i] == "link/ether" {
				return f[i+1]
			}
		}
		t.Fatalf("no link-layer address in %q", out)
		return ""
	}
	run("ip", "-n", attacker, "neigh", "replace", dosVictim6, "lladdr", mac(victim, ifV), "dev", ifA, "nud", "permanent")
	run("ip", "-n", victim, "neigh", "replace", dosAttacker6, "lladdr", mac(attacker, ifA), "dev", ifV, "nud", "permanent")
	return attacker, victim
}

// startVictim runs the victim in its namespace and returns its pid once
// its sockets are open; it ends with the test.
func startVictim(t *testing.T, ns string) int {
	t.Helper()
	c := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestDoSHelperProcess$")
	c.Env = append(os.Environ(), "VIGIL_TEST_DOS_ROLE=victim")
	in, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); c.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if sc.Text() == "ready" {
			return c.Process.Pid
		}
	}
	t.Fatalf("victim ended before its sockets were open: %v", sc.Err())
	return 0
}

// attack runs the attacker in its namespace to the end.
func attack(t *testing.T, ns, role string, n int) {
	t.Helper()
	c := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestDoSHelperProcess$")
	c.Env = append(os.Environ(), "VIGIL_TEST_DOS_ROLE="+role, "VIGIL_TEST_DOS_COUNT="+strconv.Itoa(n))
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("attacker %s: %v: %s", role, err, out)
	}
}

// TestDoSHelperProcess is the victim or the attacker of the flood tests
// when VIGIL_TEST_DOS_ROLE says so; it does nothing otherwise.
func TestDoSHelperProcess(t *testing.T) {
	role := os.Getenv("VIGIL_TEST_DOS_ROLE")
	if role == "" {
		t.Skip("helper process of the flood tests")
	}
	n, _ := strconv.Atoi(os.Getenv("VIGIL_TEST_DOS_COUNT"))
	var err error
	switch role {
	case "victim":
		err = dosVictimProcess()
	case "syn":
		err = synFlood(dosVictim, dosTCPPort, dosSpoofed, n)
	case "udp":
		err = udpFlood(dosVictim, dosUDPPort, n)
	case "udp6":
		err = udpFlood(dosVictim6, dosUDPPort, n)
	case "icmp6":
		err = icmp6Flood(dosVictim6, n)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func dosVictimProcess() error {
	addr := [4]byte(netip.MustParseAddr(dosVictim).As4())
	tcp, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	if err := syscall.Bind(tcp, &syscall.SockaddrInet4{Port: dosTCPPort, Addr: addr}); err != nil {
		return fmt.Errorf("cannot bind tcp: %w", err)
	}
	if err := syscall.Listen(tcp, 16); err != nil {
		return err
	}
	udp, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	_ = syscall.SetsockoptInt(udp, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1) // the kernel's minimum
	if err := syscall.Bind(udp, &syscall.SockaddrInet4{Port: dosUDPPort, Addr: addr}); err != nil {
		return fmt.Errorf("cannot bind udp: %w", err)
	}
	udp6, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	_ = syscall.SetsockoptInt(udp6, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1)
	addr6 := netip.MustParseAddr(dosVictim6).As16()
	if err := syscall.Bind(udp6, &syscall.SockaddrInet6{Port: dosUDPPort, Addr: addr6}); err != nil {
		return fmt.Errorf("cannot bind udp6: %w", err)
	}
	fmt.Println("ready")
	// Never accept, never read: until the test closes stdin.
	_, _ = bufio.NewReader(os.Stdin).ReadString(0)
	return nil
}

// synFlood sends n TCP SYNs to dst:port from the spoofed sources, through
// a raw socket.
func synFlood(dst string, port int, sources []string, n int) error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_RAW)
	if err != nil {
		return fmt.Errorf("cannot open raw socket: %w", err)
	}
	defer syscall.Close(fd)
	d := netip.MustParseAddr(dst).As4()
	for i := 0; i < n; i++ {
		s := netip.MustParseAddr(sources[i%len(sources)]).As4()
		pkt := synPacket(s, d, uint16(20000+i%40000), uint16(port), uint32(i)*7919)
		if err := syscall.Sendto(fd, pkt, 0, &syscall.SockaddrInet4{Addr: d}); err != nil {
			return fmt.Errorf("cannot send SYN %d: %w", i, err)
		}
	}
	return nil
}

// synPacket builds an IPv4 packet with a TCP SYN.
func synPacket(src, dst [4]byte, sport, dport uint16, seq uint32) []byte {
	p := make([]byte, 40)
	p[0], p[8], p[9] = 0x45, 64, syscall.IPPROTO_TCP
	binary.BigEndian.PutUint16(p[2:], 40)
	copy(p[12:], src[:])
	copy(p[16:], dst[:])
	binary.BigEndian.PutUint16(p[10:], checksum(p[:20], 0))
	tcp := p[20:]
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	tcp[12], tcp[13] = 5<<4, 0x02 // header length 20, SYN
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	// The pseudo-header: addresses, protocol, TCP length.
	var sum uint32
	for _, w := range [][]byte{src[:], dst[:]} {
		sum += uint32(binary.BigEndian.Uint16(w)) + uint32(binary.BigEndian.Uint16(w[2:]))
	}
	sum += syscall.IPPROTO_TCP + 20
	binary.BigEndian.PutUint16(tcp[16:], checksum(tcp, sum))
	return p
}

func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// udpFlood sends n datagrams to dst:port.
func udpFlood(dst string, port, n int) error {
	c, err := net.Dial("udp", net.JoinHostPort(dst, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	defer c.Close()
	b := make([]byte, 512)
	for i := 0; i < n; i++ {
		if _, err := c.Write(b); err != nil {
			return fmt.Errorf("cannot send datagram %d: %w", i, err)
		}
	}
	return nil
}

// icmp6Flood sends n ICMPv6 echo requests to dst through a raw socket
// (the kernel fills in the ICMPv6 checksum).
func icmp6Flood(dst string, n int) error {
	fd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_RAW, syscall.IPPROTO_ICMPV6)
	if err != nil {
		return fmt.Errorf("cannot open raw ICMPv6 socket: %w", err)
	}
	defer syscall.Close(fd)
	to := &syscall.SockaddrInet6{Addr: netip.MustParseAddr(dst).As16()}
	msg := make([]byte, 64)
	msg[0] = 128 // echo request
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint16(msg[6:], uint16(i))
		if err := syscall.Sendto(fd, msg, 0, to); err != nil {
			return fmt.Errorf("cannot send echo request %d: %w", i, err)
		}
	}
	return nil
}

// victimEnv is an Env whose /proc is the victim's: /proc/<pid>/net shows
// the network namespace of that process. The clock moves 10s a call.
func victimEnv(t *testing.T, pid int) (Env, func()) {
	root := t.TempDir()
	if err := os.Symlink(fmt.Sprintf("/proc/%d", pid), filepath.Join(root, "proc")); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	return Env{Root: root, Now: func() time.Time { return now }}, func() { now = now.Add(10 * time.Second) }
}

// collectDoS runs one collection and returns its dos events.
func collectDoS(t *testing.T, d *DoS) []wire.SecurityEvent {
	t.Helper()
	var r wire.Report
	if err := d.Collect(context.Background(), &r); err != nil {
		t.Fatalf("collect: %v", err)
	}
	return r.Events
}

func TestDoSSYNFloodInNamespace(t *testing.T) {
	attacker, victim := dosNamespaces(t)
	pid := startVictim(t, victim)
	env, tick := victimEnv(t, pid)
	d := &DoS{Env: env}
	if evs := collectDoS(t, d); len(evs) != 0 {
		t.Fatalf("first collection: want no event, got %v", evs)
	}
	tick()
	if evs := collectDoS(t, d); len(evs) != 0 {
		t.Fatalf("before the flood: want no event, got %v", evs)
	}
	snap(t, pid, "before")
	attack(t, attacker, "syn", 3000)
	snap(t, pid, "syn")
	tick()
	evs := collectDoS(t, d)
	if len(evs) != 1 {
		t.Fatalf("during the flood: want one syn_flood start, got %v", evs)
	}
	e := evs[0]
	t.Logf("start: %v", e.Fields)
	if e.Kind != KindDoS || e.Action != ActionSYNFlood || e.Fields["event.type"] != "start" || e.Severity != "high" {
		t.Fatalf("want a dos syn_flood start, got %+v", e)
	}
	if e.Fields["destination.port"] != strconv.Itoa(dosTCPPort) {
		t.Errorf("destination.port = %q, want %d", e.Fields["destination.port"], dosTCPPort)
	}
	spoofed := map[string]bool{}
	for _, s := range dosSpoofed {
		spoofed[s] = true
	}
	if !spoofed[e.Fields["source.ip"]] {
		t.Errorf("source.ip = %q, want one of the spoofed sources %v", e.Fields["source.ip"], dosSpoofed)
	}
	if cookies, _ := strconv.ParseFloat(e.Fields["dos.syn_cookies_per_sec"], 64); cookies < 50 {
		drops, _ := strconv.ParseFloat(e.Fields["dos.listen_drops_per_sec"], 64)
		if drops < 50 {
			t.Errorf("3000 SYNs in 10s: want ≥ 50 cookies or drops a second, got %v", e.Fields)
		}
	}
	// The flood goes on: no second start.
	attack(t, attacker, "syn", 3000)
	tick()
	if evs := collectDoS(t, d); len(evs) != 0 {
		t.Fatalf("flood going on: want no event, got %v", evs)
	}
	// Quiet twice: the end.
	tick()
	if evs := collectDoS(t, d); len(evs) != 0 {
		t.Fatalf("first quiet collection: want no event yet, got %v", evs)
	}
	tick()
	evs = collectDoS(t, d)
	if len(evs) != 1 || evs[0].Action != ActionSYNFlood || evs[0].Fields["event.type"] != "end" {
		t.Fatalf("after the flood: want one syn_flood end, got %v", evs)
	}
	t.Logf("end: %v", evs[0].Fields)
	if evs[0].Fields["event.duration"] != strconv.FormatInt(int64(30*time.Second), 10) {
		t.Errorf("event.duration = %s, want 30s in ns", evs[0].Fields["event.duration"])
	}
}

func TestDoSUDPFloodInNamespace(t *testing.T) {
	attacker, victim := dosNamespaces(t)
	pid := startVictim(t, victim)
	env, tick := victimEnv(t, pid)
	d := &DoS{Env: env}
	collectDoS(t, d)
	attack(t, attacker, "udp", 5000)
	snap(t, pid, "udp")
	tick()
	evs := collectDoS(t, d)
	if len(evs) != 1 || evs[0].Action != ActionUDPFlood || evs[0].Fields["event.type"] != "start" {
		t.Fatalf("want one udp_flood start, got %v", evs)
	}
	t.Logf("start: %v", evs[0].Fields)
	if v, _ := strconv.ParseFloat(evs[0].Fields["dos.udp_rcvbuf_errors_per_sec"], 64); v < 100 {
		t.Errorf("5000 datagrams to a full buffer in 10s: want ≥ 100 buffer errors a second, got %v", evs[0].Fields)
	}
	tick()
	collectDoS(t, d)
	tick()
	if evs := collectDoS(t, d); len(evs) != 1 || evs[0].Fields["event.type"] != "end" {
		t.Fatalf("want one udp_flood end, got %v", evs)
	}
}

// snap copies the victim's counters to $VIGIL_TEST_DOS_RECORD/<name>/proc/net
// when that is set: testdata/dos was recorded so.
func snap(t *testing.T, pid int, name string) {
	dir := os.Getenv("VIGIL_TEST_DOS_RECORD")
	if dir == "" {
		return
	}
	for _, f := range []string{"snmp", "netstat", "tcp", "dev"} {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		os.MkdirAll(filepath.Join(dir, name, "proc/net"), 0o755)
		os.WriteFile(filepath.Join(dir, name, "proc/net", f), b, 0o644)
	}
}

func TestDoSUDP6FloodInNamespace(t *testing.T) {
	attacker, victim := dosNamespaces(t)
	pid := startVictim(t, victim)
	env, tick := victimEnv(t, pid)
	d := &DoS{Env: env}
	collectDoS(t, d)
	attack(t, attacker, "udp6", 5000)
	tick()
	evs := collectDoS(t, d)
	if len(evs) != 1 || evs[0].Action != ActionUDPFlood || evs[0].Fields["event.type"] != "start" {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/snmp6", pid))
		t.Fatalf("want one udp_flood start from an IPv6 flood, got %v; the victim's counters:\n%s", evs, b)
	}
	if v, _ := strconv.ParseFloat(evs[0].Fields["dos.udp_rcvbuf_errors_per_sec"], 64); v < 100 {
		t.Errorf("5000 IPv6 datagrams to a full buffer in 10s: want ≥ 100 buffer errors a second, got %v", evs[0].Fields)
	}
}

func TestDoSICMP6FloodInNamespace(t *testing.T) {
	attacker, victim := dosNamespaces(t)
	pid := startVictim(t, victim)
	env, tick := victimEnv(t, pid)
	d := &DoS{Env: env}
	collectDoS(t, d)
	attack(t, attacker, "icmp6", 20000)
	tick()
	evs := collectDoS(t, d)
	if len(evs) != 1 || evs[0].Action != ActionICMPFlood || evs[0].Fields["event.type"] != "start" {
		t.Fatalf("want one icmp_flood start from an ICMPv6 echo flood, got %v", evs)
	}
	if v, _ := strconv.ParseFloat(evs[0].Fields["dos.icmp_echo_in_per_sec"], 64); v < 1000 {
		t.Errorf("20000 echo requests in 10s: want ≥ 1000 echos a second, got %v", evs[0].Fields)
	}
	// A quiet interval: no new episode, and ICMPv6 neighbour discovery
	// alone does not make one.
	tick()
	if evs := collectDoS(t, d); len(evs) != 0 {
		t.Fatalf("want nothing while the episode lasts quietly, got %v", evs)
	}
}
