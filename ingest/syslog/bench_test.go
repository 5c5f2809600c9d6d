package syslog

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus/natsbus"
)

// counter is a Publisher that counts the events and drops them.
type counter struct{ n atomic.Int64 }

func (c *counter) PublishEvents(_ context.Context, evs []vigil.Event) error {
	c.n.Add(int64(len(evs)))
	return nil
}

// cpuTime returns the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTCP sends RFC 5424 messages (octet counted, as rsyslog
// forwards them) and RFC 3164 lines over one TCP connection to a server
// that parses them into events and publishes them in batches to a
// publisher that counts them; the messages/cpu-s metric is per CPU
// second of the whole process (sender included) with -cpu 1.
// docs/benchmarks.md has the figure.
func BenchmarkTCP(b *testing.B) {
	c := &counter{}
	benchTCP(b, c, func() int64 { return c.n.Load() })
}

// BenchmarkTCPToBus is BenchmarkTCP publishing to Vigil's bus: an
// embedded NATS JetStream server in the process (file storage in a
// temporary directory), as vigil serve runs it.
func BenchmarkTCPToBus(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nb, err := natsbus.Open(ctx, natsbus.Config{DataDir: b.TempDir(), MaxEventBytes: 4 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer nb.Close()
	c := &countingBus{pub: nb}
	benchTCP(b, c, func() int64 { return c.n.Load() })
}

// countingBus counts what the bus took.
type countingBus struct {
	pub Publisher
	n   atomic.Int64
}

func (c *countingBus) PublishEvents(ctx context.Context, evs []vigil.Event) error {
	if err := c.pub.PublishEvents(ctx, evs); err != nil {
		return err
	}
	c.n.Add(int64(len(evs)))
	return nil
}

func benchTCP(b *testing.B, pub Publisher, published func() int64) {
	const perOp = 100_000
	var buf []byte
	for i := 0; i < perOp; i++ {
		var m string
		if i%2 == 0 {
			m = fmt.Sprintf("<38>1 2026-01-05T11:00:00.%06dZ gw-%d sshd %d - [meta@1 seq=\"%d\"] Accepted publickey for root from 10.0.%d.%d port %d", i%1000000, i%50, 1000+i%3000, i, i>>8&255, i&255, 30000+i%30000)
			buf = fmt.Appendf(buf, "%d %s", len(m), m)
		} else {
			buf = fmt.Appendf(buf, "<86>Jan  5 11:00:00 cam-%d dropbear[%d]: Bad password attempt for 'admin' from 10.0.%d.%d:%d\n", i%50, 100+i%900, i>>8&255, i&255, 30000+i%30000)
		}
	}
	s, err := New(Options{TCP: "127.0.0.1:0", Publisher: pub})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	_, tcp, _ := s.Addrs()
	conn, err := net.Dial("tcp", tcp.String())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	var cpu time.Duration
	sent := int64(0)
	for b.Loop() {
		cpu0 := cpuTime()
		if _, err := conn.Write(buf); err != nil {
			b.Fatal(err)
		}
		sent += perOp
		for published() < sent {
			time.Sleep(time.Millisecond)
		}
		cpu += cpuTime() - cpu0
	}
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "msgs/s")
	if cpu > 0 {
		b.ReportMetric(float64(sent)/cpu.Seconds(), "msgs/cpu-s")
	}
	conn.Close()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
