package sqlite_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// benchEvents returns n events, with time-ordered ids, shaped like the demo fleet's: an auth or
// network event with a 5-tuple and a few Fields.
func benchEvents(n int) []vigil.Event {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	out := make([]vigil.Event, n)
	for i := range out {
		out[i] = vigil.Event{
			ID:       vigil.NewID(),
			Time:     base.Add(time.Duration(i) * time.Millisecond),
			Received: base.Add(time.Duration(i)*time.Millisecond + 40*time.Millisecond),
			DeviceID: fmt.Sprintf("dev-%03d", i%50),
			Source:   "agent",
			Kind:     vigil.KindAuth,
			Category: "authentication",
			Action:   "login",
			Outcome:  vigil.OutcomeFailure,
			Severity: vigil.SeverityLow,
			Network: &vigil.Network{
				Transport: "tcp",
				SrcIP:     netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}),
				SrcPort:   uint16(30000 + i%20000),
				DstIP:     netip.MustParseAddr("10.0.0.7"),
				DstPort:   22,
			},
			Fields: map[string]any{
				"user.name":    "root",
				"process.name": "sshd",
				"process.pid":  float64(1000 + i%5000),
				"source.geo":   "lan",
				"auth.method":  "password",
			},
		}
	}
	return out
}

// BenchmarkPutEvents stores batches of events into a growing table.
// Ids are time-ordered (vigil.NewID) unless ids=random: random ids (128
// random bits, as agents used to send) make every insert touch a random
// page of the id index, which gets slower as the table grows.
func BenchmarkPutEvents(b *testing.B) {
	for _, c := range []struct {
		batch  int
		random bool
	}{{100, false}, {1000, false}, {1000, true}} {
		name := fmt.Sprintf("batch=%d", c.batch)
		if c.random {
			name += ",ids=random"
		}
		b.Run(name, func(b *testing.B) {
			s := open(b)
			defer s.Close()
			events := benchEvents(b.N * c.batch)
			if c.random {
				for i := range events {
					var id [16]byte
					rand.Read(id[:])
					events[i].ID = hex.EncodeToString(id[:])
				}
			}
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := range b.N {
				if err := s.PutEvents(b.Context(), events[i*c.batch:(i+1)*c.batch]); err != nil {
					b.Fatal(err)
				}
			}
			reportRates(b, b.N*c.batch, cpu0)
		})
	}
}

// BenchmarkPutEventsConcurrent stores batches of 100 from 8 goroutines, as
// the event sink does with one handler per bus partition.
func BenchmarkPutEventsConcurrent(b *testing.B) {
	const batch, writers = 100, 8
	s := open(b)
	defer s.Close()
	events := benchEvents(b.N * batch)
	b.ResetTimer()
	cpu0 := cpuTime()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				if err := s.PutEvents(b.Context(), events[i*batch:(i+1)*batch]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	reportRates(b, b.N*batch, cpu0)
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRates reports events/s of wall time and the CPU time per event,
// which holds steadier than wall time on a machine shared with other work.
func reportRates(b *testing.B, events int, cpu0 time.Duration) {
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(events), "cpu-ns/event")
	b.ReportMetric(0, "ns/op")
}
