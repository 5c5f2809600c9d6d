package export

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vigil-iot/vigil/bus/natsbus"
)

// waitFor polls cond until it holds or 20 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestSIEMDownLosesNothing runs an exporter on a real (embedded) bus
// while the collector is busy: the alerts wait in the bus and all arrive
// once it accepts; alerts published while the exporter is stopped arrive
// when it starts again, and none is sent twice.
func TestSIEMDownLosesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	open := func() *natsbus.Bus {
		b, err := natsbus.Open(ctx, natsbus.Config{DataDir: dir, Partitions: 1, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	srv := &hecServer{busy: 1 << 30}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	run := func(b *natsbus.Bus) (stop func()) {
		sink, err := NewHEC(HECOptions{URL: ts.URL, Token: "tok-123", Client: ts.Client()})
		if err != nil {
			t.Fatal(err)
		}
		e, _ := New(sink, Options{Name: "splunk", Attempts: 1, Sleep: (&noSleep{}).sleep})
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- e.Run(rctx, b) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	count := func(f func() bool) func() bool {
		return func() bool { srv.mu.Lock(); defer srv.mu.Unlock(); return f() }
	}

	b := open()
	alerts := testAlerts("a", "b", "c", "d", "e")
	if err := b.PublishAlerts(ctx, alerts[:3]); err != nil {
		t.Fatal(err)
	}
	stop := run(b)
	// The collector refuses a few times (the bus redelivers), then accepts.
	waitFor(t, "refusals", count(func() bool { return srv.busy < 1<<30-3 }))
	srv.mu.Lock()
	if len(srv.indexed) != 0 {
		t.Fatalf("indexed %v while busy", srv.indexed)
	}
	srv.busy = 0
	srv.mu.Unlock()
	waitFor(t, "3 alerts", count(func() bool { return len(srv.indexed) == 3 }))
	stop()
	if err := b.PublishAlerts(ctx, alerts[3:]); err != nil {
		t.Fatal(err)
	}
	b.Close()

	b = open()
	defer b.Close()
	stop = run(b)
	defer stop()
	waitFor(t, "5 alerts", count(func() bool { return len(srv.indexed) == 5 }))
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if fmt.Sprint(srv.indexed) != "[al-0 al-1 al-2 al-3 al-4]" {
		t.Errorf("indexed %v", srv.indexed)
	}
}

func TestNATSSink(t *testing.T) {
	url := os.Getenv("VIGIL_TEST_NATS_URL")
	if url == "" {
		t.Skip("VIGIL_TEST_NATS_URL is not set (e.g. nats://127.0.0.1:4222)")
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	subject := fmt.Sprintf("vigiltest.export.%d", time.Now().UnixNano())
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush()
	sink, err := NewNATS(NATSOptions{URL: url, Subject: subject})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	e, _ := New(sink, Options{Name: "nats", Encoder: OCSF})
	if err := e.Handle(context.Background(), testAlerts("a", "b")); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if id := m.Header.Get(nats.MsgIdHdr); id != fmt.Sprintf("al-%d", i) {
			t.Errorf("message %d has id %q", i, id)
		}
	}
	if _, err := NewNATS(NATSOptions{}); err == nil {
		t.Error("NewNATS accepted no URL")
	}
}
