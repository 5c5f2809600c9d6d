package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus/natsbus"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/sqlite"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("cannot open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// flaky is the real store with its first PutEvents calls failing, as when
// the disk is full for a while.
type flaky struct {
	store.Events
	failures atomic.Int32
}

func (f *flaky) PutEvents(ctx context.Context, events []vigil.Event) error {
	if f.failures.Add(-1) >= 0 {
		return errors.New("disk full")
	}
	return f.Events.PutEvents(ctx, events)
}

// counting is the real store, closing all once want events were stored
// (the benchmark publishes no duplicates).
type counting struct {
	store.Events
	n, want int64
	all     chan struct{}
	mu      sync.Mutex
}

func (c *counting) PutEvents(ctx context.Context, events []vigil.Event) error {
	if err := c.Events.PutEvents(ctx, events); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += int64(len(events))
	if c.n == c.want {
		close(c.all)
	}
	return nil
}

func TestEventSink(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	b, err := natsbus.Open(ctx, natsbus.Config{
		DataDir:    filepath.Join(t.TempDir(), "nats"),
		Partitions: 4,
		Groups:     []string{store.SinkGroup},
		RetryDelay: 20 * time.Millisecond,
		FetchWait:  100 * time.Millisecond,
		Logger:     testLogger(t),
	})
	if err != nil {
		t.Fatalf("cannot open bus: %v", err)
	}
	defer b.Close()
	s := openStore(t)
	fs := &flaky{Events: s}
	fs.failures.Store(3)

	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var events []vigil.Event
	for i := range 600 {
		events = append(events, vigil.Event{
			ID: fmt.Sprintf("ev-%04d", i), Time: base.Add(time.Duration(i) * time.Millisecond),
			DeviceID: fmt.Sprintf("dev-%02d", i%20), Kind: vigil.KindAuth, Action: "login",
			Fields: map[string]any{"user.name": "root", "n": float64(i)},
		})
	}
	// Published before the sink runs: the group's consumers keep them.
	for i := 0; i < 300; i += 50 {
		if err := b.PublishEvents(ctx, events[i:i+50]); err != nil {
			t.Fatalf("PublishEvents: %v", err)
		}
	}
	sinkCtx, stopSink := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- store.RunEventSink(sinkCtx, b, fs, testLogger(t)) }()

	for i := 300; i < 600; i += 100 {
		if err := b.PublishEvents(ctx, events[i:i+100]); err != nil {
			t.Fatalf("PublishEvents: %v", err)
		}
	}
	// A retried publish (duplicates), and a batch with an event the store
	// rejects (no time): its neighbour is stored, the sink goes on.
	if err := b.PublishEvents(ctx, events[100:200]); err != nil {
		t.Fatalf("PublishEvents: %v", err)
	}
	bad := []vigil.Event{
		{ID: "ev-bad", DeviceID: "dev-00", Kind: vigil.KindAuth},
		{ID: "ev-good", Time: base, DeviceID: "dev-00", Kind: vigil.KindAuth},
	}
	if err := b.PublishEvents(ctx, bad); err != nil {
		t.Fatalf("PublishEvents: %v", err)
	}
	if err := b.PublishEvents(ctx, []vigil.Event{{ID: "ev-last", Time: base, DeviceID: "dev-00", Kind: vigil.KindAuth}}); err != nil {
		t.Fatalf("PublishEvents: %v", err)
	}

	want := int64(len(events) + 2)
	for {
		n, err := s.CountEvents(ctx)
		if err != nil {
			t.Fatalf("CountEvents: %v", err)
		}
		if n == want {
			break
		}
		if n > want {
			t.Fatalf("%d events stored, want %d", n, want)
		}
		select {
		case err := <-done:
			t.Fatalf("RunEventSink returned early: %v", err)
		case <-ctx.Done():
			t.Fatalf("%d events stored before the deadline, want %d", n, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
	stopSink()
	if err := <-done; err != nil {
		t.Fatalf("RunEventSink: %v", err)
	}
	if f := fs.failures.Load(); f >= 0 {
		t.Fatalf("the failing store was called %d times, want more than 3", 3-f)
	}
	for _, want := range []vigil.Event{events[0], events[377], events[599]} {
		got, err := s.GetEvent(ctx, want.ID)
		if err != nil {
			t.Fatalf("GetEvent(%s): %v", want.ID, err)
		}
		got.Time, got.Received = got.Time.UTC(), got.Received.UTC()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("stored %+v, want %+v", got, want)
		}
	}
	if _, err := s.GetEvent(ctx, "ev-bad"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("GetEvent of the invalid event: %v, want ENOTFOUND", err)
	}
}

func TestRunRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// In the bubble the clock is fake: it moves only when every
		// goroutine of the bubble waits. The store is opened in it, so
		// that its goroutines belong to the bubble too.
		s := openStore(t)
		now := time.Now()
		var events []vigil.Event
		for i, age := range []time.Duration{3 * time.Hour, 90 * time.Minute, 50 * time.Minute, 20 * time.Minute, 0} {
			events = append(events, vigil.Event{ID: fmt.Sprint("ev-", i), Time: now.Add(-age), Kind: vigil.KindHealth})
		}
		if err := s.PutEvents(t.Context(), events); err != nil {
			t.Fatal(err)
		}
		count := func(want int64) {
			t.Helper()
			synctest.Wait()
			n, err := s.CountEvents(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if n != want {
				t.Fatalf("after %s: %d events left, want %d", time.Since(now), n, want)
			}
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- store.RunRetention(ctx, s, time.Hour, 15*time.Minute, vigil.SystemClock{}, testLogger(t))
		}()
		count(3) // the first pass runs at once: 3h and 90m are gone
		time.Sleep(14 * time.Minute)
		count(3)
		time.Sleep(2 * time.Minute) // the pass at 15m removes what is older than -45m
		count(2)
		time.Sleep(45 * time.Minute) // passes at 30m, 45m, 60m: -20m goes at 45m
		count(1)
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("RunRetention: %v", err)
		}
	})
	err := store.RunRetention(t.Context(), nil, 0, time.Minute, nil, nil)
	if vigil.ErrorCode(err) != vigil.EINVALID {
		t.Fatalf("RunRetention with keep=0: %v, want EINVALID", err)
	}
}

// BenchmarkEventSink measures the stage alone: events already on an
// embedded bus (8 partitions) are consumed and stored in SQLite.
func BenchmarkEventSink(b *testing.B) {
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	bs, err := natsbus.Open(ctx, natsbus.Config{
		DataDir:       filepath.Join(b.TempDir(), "nats"),
		Partitions:    8,
		Groups:        []string{store.SinkGroup},
		MaxEventBytes: 4 << 30,
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	s, err := sqlite.Open(filepath.Join(b.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	base := time.Now()
	n := b.N * 1000
	for i := 0; i < n; i += 1000 {
		batch := make([]vigil.Event, 1000)
		for j := range batch {
			k := i + j
			batch[j] = vigil.Event{
				ID: fmt.Sprintf("ev-%09d", k), Time: base.Add(time.Duration(k) * time.Microsecond),
				DeviceID: fmt.Sprintf("dev-%03d", k%50), Source: "agent", Kind: vigil.KindAuth,
				Action: "login", Outcome: vigil.OutcomeFailure,
				Fields: map[string]any{"user.name": "root", "process.pid": float64(k % 5000)},
			}
		}
		if err := bs.PublishEvents(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	cs := &counting{Events: s, all: make(chan struct{}), want: int64(n)}
	done := make(chan error, 1)
	go func() { done <- store.RunEventSink(ctx, bs, cs, nil) }()
	<-cs.all
	b.StopTimer()
	if c, err := s.CountEvents(ctx); err != nil || c != int64(n) {
		b.Fatalf("CountEvents = %d, %v; want %d", c, err, n)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
	cancel()
	<-done
}
