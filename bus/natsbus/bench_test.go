package natsbus

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// benchBus opens a bus on an embedded, file-backed server in a temp dir.
func benchBus(b *testing.B, groups []string, dedup time.Duration) *Bus {
	b.Helper()
	bus, err := Open(context.Background(), Config{
		DataDir:       b.TempDir(),
		Groups:        groups,
		DedupWindow:   dedup,
		MaxEventBytes: 8 << 30,
		Logger:        slog.New(slog.NewTextHandler(b.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bus.Close() })
	return bus
}

// publishLoop publishes b.N batches of size events from publishers
// goroutines and returns the number of events published.
func publishLoop(b *testing.B, bus *Bus, size, publishers int) int64 {
	pool := benchEvents(20 * size)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				off := int(i%20) * size
				if err := bus.PublishEvents(context.Background(), pool[off:off+size]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return int64(b.N) * int64(size)
}

// BenchmarkPublishEvents measures PublishEvents alone on embedded file
// storage: one op is one call with a batch of events of about 500 bytes
// (JSON size; about 260 bytes encoded).
func BenchmarkPublishEvents(b *testing.B) {
	cases := []struct {
		size, pubs int
		dedup      time.Duration
	}{
		{100, 1, 0}, {100, 4, 0}, {1000, 1, 0}, {1000, 4, 0},
		// Agent reports: few events per call, many calls at once.
		{10, 4, 0}, {10, 16, 0},
		{100, 4, time.Minute},
	}
	for _, c := range cases {
		name := fmt.Sprintf("batch=%d/publishers=%d", c.size, c.pubs)
		if c.dedup > 0 {
			name += "/dedup"
		}
		b.Run(name, func(b *testing.B) {
			bus := benchBus(b, nil, c.dedup)
			b.ResetTimer()
			cpu := cpuTime()
			n := publishLoop(b, bus, c.size, c.pubs)
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(n), "cpu-ns/event")
		})
	}
}

// BenchmarkPublishConsume measures events published and consumed by one
// group (handler doing nothing) on embedded file storage, with interest
// retention so acknowledged events are deleted as in production.
func BenchmarkPublishConsume(b *testing.B) {
	for _, size := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d/publishers=4", size), func(b *testing.B) {
			bus := benchBus(b, []string{"bench"}, 0)
			var consumed atomic.Int64
			want := int64(b.N) * int64(size)
			done := make(chan struct{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ret := make(chan error, 1)
			b.ResetTimer()
			cpu := cpuTime()
			go func() {
				ret <- bus.ConsumeEvents(ctx, "bench", func(_ context.Context, _ int, events []vigil.Event) error {
					if consumed.Add(int64(len(events))) == want {
						close(done)
					}
					return nil
				})
			}()
			publishLoop(b, bus, size, 4)
			select {
			case <-done:
			case <-time.After(5 * time.Minute):
				b.Fatalf("consumed %d of %d events", consumed.Load(), want)
			}
			b.StopTimer()
			b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(want), "cpu-ns/event")
			cancel()
			if err := <-ret; err != nil {
				b.Error(err)
			}
		})
	}
}

// cpuTime returns the CPU time used by the process (user and system), the
// embedded NATS server included: a figure the other processes on a shared
// machine disturb less than throughput.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
