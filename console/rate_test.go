package console

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestIngestRateAndBusLag: the rate is the store counter's increase over
// the samples pages took (none with one sample); the lag is the slowest
// group's backlog summed over its partitions.
func TestIngestRateAndBusLag(t *testing.T) {
	reg := prometheus.NewRegistry()
	stored := prometheus.NewCounter(prometheus.CounterOpts{Name: storedMetric})
	lag := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: lagMetric}, []string{"group", "partition"})
	reg.MustRegister(stored, lag)
	clk := &clock{t: time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)}
	c := &Console{opts: Options{Gatherer: reg}, clock: clk, log: newEnvLogger()}
	if _, ok := c.ingestRate(clk.Now()); ok {
		t.Fatal("a rate from one sample")
	}
	stored.Add(500)
	clk.add(3 * time.Second) // too soon for a new sample
	if _, ok := c.ingestRate(clk.Now()); ok {
		t.Fatal("a sample 3 s after the last")
	}
	clk.add(7 * time.Second)
	if r, ok := c.ingestRate(clk.Now()); !ok || r != 50 {
		t.Fatalf("rate %v %v, want 50/s", r, ok)
	}
	lag.WithLabelValues("store", "0").Set(3)
	lag.WithLabelValues("store", "1").Set(4)
	lag.WithLabelValues("detect", "0").Set(5)
	if l, ok := c.busLag(); !ok || l != 7 {
		t.Fatalf("lag %v %v, want 7 (store: 3+4)", l, ok)
	}
}
