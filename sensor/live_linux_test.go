package sensor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vigil "github.com/vigil-iot/vigil"
	"golang.org/x/sys/unix"
)

// syncCollector is a Publisher safe to read while the sensor runs.
type syncCollector struct {
	mu     sync.Mutex
	events []vigil.Event
}

func (c *syncCollector) PublishEvents(_ context.Context, evs []vigil.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, evs...)
	return nil
}

func (c *syncCollector) find(kind, action, field string, value any) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.events {
		if e.Kind == kind && e.Action == action && e.Fields[field] == value {
			return true
		}
	}
	return false
}

// netnsPair creates two network namespaces joined by a veth pair,
// 10.213.7.1/30 (ifA, in nsA) and 10.213.7.2/30 (in nsB), removed when
// the test ends. It skips unless running as root with ip(8).
func netnsPair(t *testing.T) (nsA, nsB, ifA string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root for ip netns and AF_PACKET")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("needs ip(8): %v", err)
	}
	id := os.Getpid()%10000*10 + int(netnsSeq.Add(1)%10)
	nsA, nsB = fmt.Sprintf("vigil-a-%d", id), fmt.Sprintf("vigil-b-%d", id)
	ifA, ifB := fmt.Sprintf("vga%d", id), fmt.Sprintf("vgb%d", id)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	run("ip", "netns", "add", nsA)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", nsA).Run() })
	run("ip", "netns", "add", nsB)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", nsB).Run() })
	run("ip", "link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB)
	run("ip", "-n", nsA, "addr", "add", "10.213.7.1/30", "dev", ifA)
	run("ip", "-n", nsB, "addr", "add", "10.213.7.2/30", "dev", ifB)
	run("ip", "-n", nsA, "link", "set", ifA, "up")
	run("ip", "-n", nsB, "link", "set", ifB, "up")
	return nsA, nsB, ifA
}

var netnsSeq atomic.Int64

// TestLiveCaptureInNamespace captures with AF_PACKET on one end of a veth
// pair between two network namespaces it creates: mosquitto listens in
// one, mosquitto_pub publishes from the other. Nothing outside the two
// namespaces is touched.
func TestLiveCaptureInNamespace(t *testing.T) {
	for _, bin := range []string{"mosquitto", "mosquitto_pub"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("live capture test needs %s: %v", bin, err)
		}
	}
	nsA, nsB, ifA := netnsPair(t)

	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	os.WriteFile(conf, []byte("listener 1883 10.213.7.1\nallow_anonymous true\n"), 0o644)
	broker := exec.Command("ip", "netns", "exec", nsA, "mosquitto", "-c", conf)
	if err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Process.Kill(); broker.Wait() })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	col := &syncCollector{}
	type result struct {
		st  Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The capture socket is created in namespace A: this goroutine's
		// thread joins it and is never returned to the pool.
		runtime.LockOSThread()
		fd, err := unix.Open("/var/run/netns/"+nsA, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
		if err != nil {
			done <- result{err: fmt.Errorf("cannot enter %s: %w", nsA, err)}
			return
		}
		st, err := Run(ctx, Config{Iface: ifA, Publisher: col})
		done <- result{st, err}
	}()

	// Publish until the sensor has seen it (the capture socket and the
	// broker start asynchronously).
	deadline := time.Now().Add(20 * time.Second)
	for !col.find("mqtt", "publish", "mqtt.topic", "vigil/live") {
		if time.Now().After(deadline) {
			t.Fatal("no publish event captured within 20s")
		}
		exec.Command("ip", "netns", "exec", nsB, "mosquitto_pub", "-h", "10.213.7.1", "-i", "live-client",
			"-t", "vigil/live", "-m", "hello from the namespace").Run()
		select {
		case r := <-done:
			t.Fatalf("sensor stopped: %v %v", r.st, r.err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	cancel()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !col.find("mqtt", "connect", "mqtt.client_id", "live-client") || !col.find("mqtt", "connack", "mqtt.reason_code", 0.0) ||
		!col.find("flow", "flow", "flow.app_proto", "mqtt") {
		t.Fatalf("missing events; stats %v", r.st)
	}
	t.Logf("live: %v", r.st)
}
