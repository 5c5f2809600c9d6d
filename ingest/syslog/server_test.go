package syslog

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
)

var testPeer = netip.MustParseAddrPort("192.0.2.7:40000")

var errBusFull = fmt.Errorf("cannot publish: %w", bus.ErrBackpressure)

// collector is a Publisher that keeps what it is given.
type collector struct {
	mu     sync.Mutex
	events []vigil.Event
	// pushBack makes the first pushBack calls fail with
	// bus.ErrBackpressure, as a full bus does.
	pushBack int
	calls    int
}

func (c *collector) PublishEvents(_ context.Context, evs []vigil.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls <= c.pushBack {
		return errBusFull
	}
	c.events = append(c.events, evs...)
	return nil
}

func (c *collector) snapshot() []vigil.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]vigil.Event(nil), c.events...)
}

// waitFor polls until cond holds (the messages cross real sockets and
// processes); it fails the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// start runs a server until the test ends.
func start(t *testing.T, o Options) *Server {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s
}

func port(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

func byMessage(evs []vigil.Event) map[string]vigil.Event {
	m := map[string]vigil.Event{}
	for _, ev := range evs {
		m[ev.Fields["message"].(string)] = ev
	}
	return m
}

// TestLoggerSender: util-linux's logger, a real sender, over UDP (RFC
// 3164), TCP with newline framing and TCP with octet counting (RFC 5424).
func TestLoggerSender(t *testing.T) {
	logger, err := exec.LookPath("logger")
	if err != nil {
		t.Skipf("logger (util-linux) is not installed: %v", err)
	}
	c := &collector{}
	s := start(t, Options{UDP: "127.0.0.1:0", TCP: "127.0.0.1:0", Publisher: c})
	udp, tcp, _ := s.Addrs()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(logger, args...).CombinedOutput(); err != nil {
			t.Fatalf("logger %v: %v\n%s", args, err, out)
		}
	}
	run("--server", "127.0.0.1", "--port", port(udp), "--udp", "--rfc3164", "-t", "cam", "-p", "auth.warning", "hello over udp")
	run("--server", "127.0.0.1", "--port", port(tcp), "--tcp", "--rfc5424", "-t", "gw", "--msgid", "ID9",
		"--sd-id", "zoo@123", "--sd-param", `tiger="hungry"`, "-p", "daemon.err", "hello over tcp")
	run("--server", "127.0.0.1", "--port", port(tcp), "--tcp", "--octet-count", "--rfc5424", "-t", "plc", "hello octet counted")
	waitFor(t, "3 events", func() bool { return len(c.snapshot()) == 3 })
	got := byMessage(c.snapshot())
	u := got["hello over udp"]
	if u.Kind != "syslog" || u.Source != "syslog" || u.Action != "cam" || u.Severity != vigil.SeverityLow ||
		u.Fields["log.syslog.format"] != "rfc3164" || u.Fields["log.syslog.facility.name"] != "auth" ||
		u.Fields["log.syslog.severity.name"] != "warning" || u.Fields["network.transport"] != "udp" ||
		!strings.HasPrefix(u.Provenance, "syslog:127.0.0.1") || u.Fields["host.hostname"] == nil {
		t.Errorf("udp: %+v", u)
	}
	tc := got["hello over tcp"]
	if tc.Fields["log.syslog.format"] != "rfc5424" || tc.Fields["log.syslog.msgid"] != "ID9" || tc.Severity != vigil.SeverityMedium ||
		tc.Fields["log.syslog.structured_data.zoo@123.tiger"] != "hungry" || tc.Fields["process.name"] != "gw" ||
		tc.Fields["network.transport"] != "tcp" || tc.Time.IsZero() {
		t.Errorf("tcp: %+v", tc)
	}
	if o := got["hello octet counted"]; o.Fields["process.name"] != "plc" {
		t.Errorf("octet counted: %+v", o)
	}
}

// TestRsyslogForwards: rsyslog, a real relay, forwards what a program
// logs to its socket over TCP with octet counting in RFC 5424 and over UDP
// in RFC 3164. Skipped when rsyslogd is not installed (Debian: apt-get
// install rsyslog).
func TestRsyslogForwards(t *testing.T) {
	rsyslogd, err := exec.LookPath("rsyslogd")
	if err != nil {
		t.Skipf("rsyslogd is not installed: %v", err)
	}
	logger, err := exec.LookPath("logger")
	if err != nil {
		t.Skipf("logger (util-linux) is not installed: %v", err)
	}
	c := &collector{}
	s := start(t, Options{UDP: "127.0.0.1:0", TCP: "127.0.0.1:0", Publisher: c})
	udp, tcp, _ := s.Addrs()
	dir := t.TempDir()
	sock := filepath.Join(dir, "log.sock")
	conf := fmt.Sprintf(`global(workDirectory=%q)
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket=%q CreatePath="on")
action(type="omfwd" target="127.0.0.1" port=%q protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
action(type="omfwd" target="127.0.0.1" port=%q protocol="udp" template="RSYSLOG_ForwardFormat")
`, dir, sock, port(tcp), port(udp))
	if err := os.WriteFile(filepath.Join(dir, "rsyslog.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rsyslogd, "-n", "-f", filepath.Join(dir, "rsyslog.conf"), "-i", filepath.Join(dir, "rsyslogd.pid"))
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	waitFor(t, "rsyslogd's socket", func() bool { _, err := os.Stat(sock); return err == nil })
	if b, err := exec.Command(logger, "-u", sock, "-t", "modbusd", "-p", "local3.crit", "relay test").CombinedOutput(); err != nil {
		t.Fatalf("logger: %v %s", err, b)
	}
	waitFor(t, "the message over tcp and udp", func() bool { return len(c.snapshot()) == 2 })
	evs := c.snapshot()
	formats := map[string]vigil.Event{}
	for _, ev := range evs {
		formats[ev.Fields["log.syslog.format"].(string)] = ev
		// rsyslog's msg keeps the space after "modbusd:", and its RFC 5424
		// template puts one more before it: the MSG is " relay test".
		if strings.TrimSpace(ev.Fields["message"].(string)) != "relay test" || ev.Fields["process.name"] != "modbusd" ||
			ev.Fields["log.syslog.facility.name"] != "local3" || ev.Severity != vigil.SeverityHigh {
			t.Errorf("%+v\nrsyslogd: %s", ev, out)
		}
	}
	if formats["rfc5424"].Fields["network.transport"] != "tcp" || formats["rfc3164"].Fields["network.transport"] != "udp" {
		t.Errorf("%+v", evs)
	}
}

// TestTLS: a TLS 1.3 client sends octet-counted RFC 5424 messages
// (RFC 5425).
func TestTLS(t *testing.T) {
	cert := selfSigned(t)
	c := &collector{}
	s := start(t, Options{TLS: "127.0.0.1:0", TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, Publisher: c})
	_, _, addr := s.Addrs()
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	conn, err := tls.Dial("tcp", addr.String(), &tls.Config{RootCAs: pool, ServerName: "syslog.test"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		m := fmt.Sprintf("<38>1 2026-01-05T11:00:0%dZ gw-1 sshd 77 - - Accepted publickey %d", i, i)
		fmt.Fprintf(conn, "%d %s", len(m), m)
	}
	conn.Close()
	waitFor(t, "3 events", func() bool { return len(c.snapshot()) == 3 })
	for i, ev := range c.snapshot() {
		if ev.Fields["message"] != fmt.Sprintf("Accepted publickey %d", i) || ev.Fields["network.transport"] != "tls" || ev.Fields["process.pid"] != 77.0 {
			t.Errorf("%d: %+v", i, ev)
		}
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "syslog.test"}, DNSNames: []string{"syslog.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// TestBackPressure: while the bus pushes back, a TCP sender is no longer
// read once the small queue is full, and every message arrives, in order.
func TestBackPressure(t *testing.T) {
	c := &collector{pushBack: 8}
	s := start(t, Options{TCP: "127.0.0.1:0", Publisher: c, Queue: 16, Batch: 4})
	_, tcp, _ := s.Addrs()
	conn, err := net.Dial("tcp", tcp.String())
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "<13>1 - gw app - - - message %d\n", i)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	waitFor(t, "every message", func() bool { return len(c.snapshot()) == n })
	for i, ev := range c.snapshot() {
		if ev.Fields["message"] != fmt.Sprintf("message %d", i) {
			t.Fatalf("event %d: %v", i, ev.Fields["message"])
		}
	}
	if st := s.Stats(); st.Retries < 8 || st.Published != n || st.QueueFull != 0 {
		t.Errorf("%+v", st)
	}
}

// fixedClock is a clock that does not move: the rate limits refill no
// token.
type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// TestRateLimit: a UDP source over its rate (a burst of 5, no time
// passing) has the rest of its messages dropped and counted; a malformed
// RFC 5424 message is counted.
func TestRateLimit(t *testing.T) {
	c := &collector{}
	s := start(t, Options{UDP: "127.0.0.1:0", Publisher: c, Rate: 1, Burst: 5, Clock: fixedClock{now}})
	udp, _, _ := s.Addrs()
	conn, err := net.Dial("udp", udp.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "<13>1 yesterday h a - - - bad")
	for i := 0; i < 9; i++ {
		fmt.Fprintf(conn, "<13>Jan  5 11:00:00 h a: %d", i)
	}
	waitFor(t, "10 datagrams", func() bool { st := s.Stats(); return st.Received+st.RateLimited == 10 })
	st := s.Stats()
	if st.Received != 5 || st.RateLimited != 5 || st.Malformed != 1 {
		t.Errorf("%+v", st)
	}
	waitFor(t, "4 events", func() bool { return len(c.snapshot()) == 4 })
}
