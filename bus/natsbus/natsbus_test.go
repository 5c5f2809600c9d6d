package natsbus_test

import (
	"context"
	"errors"
	"github.com/vigil-iot/vigil/bus/natsbus/natstest"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
	"github.com/vigil-iot/vigil/bus/bustest"
	"github.com/vigil-iot/vigil/bus/natsbus"
)

// testConfig is the configuration the tests start from: short delays so
// that redeliveries and stops are quick.
func testConfig(t testing.TB) natsbus.Config {
	return natsbus.Config{
		RetryDelay: 50 * time.Millisecond,
		FetchWait:  250 * time.Millisecond,
		Logger:     slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

func tiny(cfg natsbus.Config, c bustest.Config) natsbus.Config {
	cfg.Groups = c.Groups
	if c.Tiny {
		cfg.MaxEventBytes = 64 << 10
	}
	return cfg
}

func open(t *testing.T, cfg natsbus.Config) *natsbus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := natsbus.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestEmbedded(t *testing.T) {
	var mu sync.Mutex
	dirs := map[string]string{} // test and bus name → data dir
	bustest.Run(t, func(t *testing.T, c bustest.Config) bus.Bus {
		mu.Lock()
		key := t.Name() + "/" + c.Name
		dir, ok := dirs[key]
		if !ok {
			dir = filepath.Join(t.TempDir(), "nats")
			dirs[key] = dir
		}
		mu.Unlock()
		cfg := tiny(testConfig(t), c)
		cfg.DataDir = dir
		return open(t, cfg)
	})
}

// externalURL returns the external server's URL or skips the test.
func externalURL(t testing.TB) string { return natstest.URL(t) }

// uniquePrefix returns a prefix no other test run uses, and deletes its
// streams when t ends.
func uniquePrefix(t *testing.T, url string) string { return natstest.UniquePrefix(t, url) }

func TestExternal(t *testing.T) {
	url := externalURL(t)
	var mu sync.Mutex
	prefixes := map[string]string{} // test and bus name → prefix
	bustest.Run(t, func(t *testing.T, c bustest.Config) bus.Bus {
		mu.Lock()
		key := t.Name() + "/" + c.Name
		prefix, ok := prefixes[key]
		if !ok {
			prefix = uniquePrefix(t, url)
			prefixes[key] = prefix
		}
		mu.Unlock()
		cfg := tiny(testConfig(t), c)
		cfg.URL = url
		cfg.Prefix = prefix
		return open(t, cfg)
	})
}

func TestOpenInvalid(t *testing.T) {
	f := func(name string, cfg natsbus.Config) {
		t.Helper()
		_, err := natsbus.Open(context.Background(), cfg)
		if vigil.ErrorCode(err) != vigil.EINVALID {
			t.Errorf("%s: %v, want an EINVALID error", name, err)
		}
	}
	f("no data dir", natsbus.Config{})
	f("bad prefix", natsbus.Config{DataDir: t.TempDir(), Prefix: "a.b"})
	f("bad group", natsbus.Config{DataDir: t.TempDir(), Groups: []string{"a b"}})
	f("too many partitions", natsbus.Config{DataDir: t.TempDir(), Partitions: 5000})
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(t)
	cfg.DataDir = t.TempDir()
	cfg.Registerer = reg
	cfg.Groups = []string{"g"}
	cfg.Partitions = 2
	b := open(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := bustest.Events("metrics", 0, 500, 10)
	if err := b.PublishEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	// Lag before consuming comes from the periodic sample; consume, then
	// the lag of each partition is 0.
	got := make(chan int, 100)
	done := make(chan error, 1)
	go func() {
		done <- b.ConsumeEvents(ctx, "g", func(_ context.Context, _ int, evs []vigil.Event) error {
			got <- len(evs)
			return nil
		})
	}()
	for n := 0; n < len(events); {
		n += <-got
	}
	// The consumed counter is bumped after the acknowledgement.
	deadline := time.Now().Add(30 * time.Second)
	for metricSum(t, reg, "vigil_bus_consumed_total", "") < float64(len(events)) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if v := metricSum(t, reg, "vigil_bus_published_total", ""); v != float64(len(events)) {
		t.Errorf("vigil_bus_published_total = %v, want %d", v, len(events))
	}
	if v := metricSum(t, reg, "vigil_bus_consumed_total", ""); v != float64(len(events)) {
		t.Errorf("vigil_bus_consumed_total = %v, want %d", v, len(events))
	}
	if n := metricSeries(t, reg, "vigil_bus_lag"); n != 2 {
		t.Errorf("vigil_bus_lag has %d series, want one per partition", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ConsumeEvents: %v", err)
	}
	if n := metricSeries(t, reg, "vigil_bus_lag"); n != 0 {
		t.Errorf("vigil_bus_lag has %d series after the consumer stopped, want 0", n)
	}
	// Back-pressure is counted as such.
	cfg2 := testConfig(t)
	cfg2.DataDir = t.TempDir()
	cfg2.Registerer = reg
	cfg2.MaxEventBytes = 16 << 10
	b2 := open(t, cfg2)
	for i := 0; i < 100; i++ {
		err := b2.PublishEvents(context.Background(), bustest.Events("full", i*100, 100, 10))
		if errors.Is(err, bus.ErrBackpressure) {
			break
		}
		if err != nil {
			t.Fatalf("PublishEvents on a full bus: %v", err)
		}
	}
	if n := metricSum(t, reg, "vigil_bus_publish_errors_total", "backpressure"); n < 1 {
		t.Errorf("vigil_bus_publish_errors_total{reason=backpressure} = %v, want ≥ 1", n)
	}
}

// metricSum sums the series of a metric, those with a label of value
// labelValue when it is not empty.
func metricSum(t *testing.T, reg *prometheus.Registry, name, labelValue string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := labelValue == ""
			for _, l := range m.GetLabel() {
				if l.GetValue() == labelValue {
					match = true
				}
			}
			if !match {
				continue
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// metricSeries counts the series of a metric.
func metricSeries(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// TestListen connects a second bus, as an external client, to an embedded
// server that listens: what one publishes the other consumes.
func TestListen(t *testing.T) {
	cfg := testConfig(t)
	cfg.DataDir = t.TempDir()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.Groups = []string{"g"}
	embedded := open(t, cfg)
	url := embedded.ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("ClientURL() = %q", url)
	}
	cfg2 := testConfig(t)
	cfg2.URL = url
	cfg2.Groups = []string{"g"}
	client := open(t, cfg2)
	if got := client.ClientURL(); got != url {
		t.Errorf("external ClientURL() = %q, want %q", got, url)
	}
	events := bustest.Events("listen", 0, 200, 5)
	if err := client.PublishEvents(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan int, 100)
	done := make(chan error, 1)
	go func() {
		done <- embedded.ConsumeEvents(ctx, "g", func(_ context.Context, _ int, evs []vigil.Event) error {
			got <- len(evs)
			return nil
		})
	}()
	for n := 0; n < len(events); {
		select {
		case k := <-got:
			n += k
		case <-time.After(30 * time.Second):
			t.Fatalf("received %d of %d events", n, len(events))
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// TestCloseStopsConsumers checks that consumers return an error, not nil,
// when the bus is closed under them.
func TestCloseStopsConsumers(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.DataDir = t.TempDir()
	b := open(t, cfg)
	done := make(chan error, 2)
	go func() {
		done <- b.ConsumeEvents(context.Background(), "g", func(context.Context, int, []vigil.Event) error { return nil })
	}()
	go func() {
		done <- b.ConsumeAlerts(context.Background(), "g", func(context.Context, []vigil.Alert) error { return nil })
	}()
	time.Sleep(100 * time.Millisecond) // let them start fetching; the test holds without it
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case err := <-done:
			if err == nil {
				t.Error("a consumer returned nil after Close, want an error")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a consumer still runs 30s after Close")
		}
	}
}

// TestServerRestart stops the server under a connected client bus and
// starts it again on the same data dir and port: the client's consumer
// resumes and what is published after the restart arrives.
func TestServerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a reconnection")
	}
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	scfg := testConfig(t)
	scfg.DataDir = t.TempDir()
	scfg.ListenAddr = addr
	scfg.Groups = []string{"g"}
	server := open(t, scfg)

	ccfg := testConfig(t)
	ccfg.URL = "nats://" + addr
	ccfg.Groups = []string{"g"}
	client := open(t, ccfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	seen := map[string]bool{}
	done := make(chan error, 1)
	go func() {
		done <- client.ConsumeEvents(ctx, "g", func(_ context.Context, _ int, evs []vigil.Event) error {
			mu.Lock()
			defer mu.Unlock()
			for _, e := range evs {
				seen[e.ID] = true
			}
			return nil
		})
	}()
	waitSeen := func(events []vigil.Event) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			mu.Lock()
			n := 0
			for _, e := range events {
				if seen[e.ID] {
					n++
				}
			}
			mu.Unlock()
			if n == len(events) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("received %d of %d events", n, len(events))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	before := bustest.Events("restart", 0, 100, 5)
	if err := client.PublishEvents(ctx, before); err != nil {
		t.Fatal(err)
	}
	waitSeen(before)

	if err := server.Close(); err != nil {
		t.Fatal(err)
	}
	open(t, scfg) // the same data dir and port
	after := bustest.Events("restart", 100, 100, 5)
	deadline := time.Now().Add(60 * time.Second)
	for {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		err := client.PublishEvents(pctx, after)
		pcancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publishing after the restart: %v", err)
		}
	}
	waitSeen(after)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ConsumeEvents: %v", err)
	}
}

// TestSlowHandler runs a handler slower than AckWait: the batch it holds
// and the messages queued behind it must not be redelivered meanwhile.
func TestSlowHandler(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for several AckWaits")
	}
	t.Parallel()
	cfg := testConfig(t)
	cfg.DataDir = t.TempDir()
	cfg.Groups = []string{"g"}
	cfg.Partitions = 1
	cfg.AckWait = 500 * time.Millisecond
	cfg.Linger = -1
	// A fetch open longer than the slow call: what the server would
	// redeliver meanwhile would arrive in it.
	cfg.FetchWait = 3 * time.Second
	b := open(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := bustest.Events("slow", 0, 200, 4)
	for i := 0; i < len(events); i += 10 {
		if err := b.PublishEvents(ctx, events[i:i+10]); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	count := map[string]int{}
	total := 0
	calls := 0
	all := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- b.ConsumeEvents(ctx, "g", func(_ context.Context, _ int, evs []vigil.Event) error {
			mu.Lock()
			calls++
			first := calls == 1
			mu.Unlock()
			if first {
				time.Sleep(4 * cfg.AckWait)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, e := range evs {
				if count[e.ID] == 0 {
					total++
				}
				count[e.ID]++
			}
			if total == len(events) {
				close(all)
				total++ // close once
			}
			return nil
		})
	}()
	select {
	case <-all:
	case <-time.After(60 * time.Second):
		t.Fatal("not every event was delivered")
	}
	// Anything redelivered would come right behind; give it the time.
	time.Sleep(2 * cfg.AckWait)
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, n := range count {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
}
