package threshold_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus/natsbus"
	"github.com/vigil-iot/vigil/detect"
	"github.com/vigil-iot/vigil/detect/threshold"
)

// TestStageOnEmbeddedBus replays the demo's scripted attack through the
// detection stage on the embedded NATS bus with the shipped rules, and
// checks the alerts that come out of the bus and the latency metric.
func TestStageOnEmbeddedBus(t *testing.T) { testStageOnBus(t, false) }

// TestStageOnExternalBus does the same on the NATS server of
// VIGIL_TEST_NATS_URL.
func TestStageOnExternalBus(t *testing.T) { testStageOnBus(t, true) }

func testStageOnBus(t *testing.T, external bool) {
	cfg := natsbus.Config{DataDir: t.TempDir(), Partitions: 4, FetchWait: 100 * time.Millisecond,
		Groups: []string{detect.DefaultGroup, "test"}}
	if external {
		url := os.Getenv("VIGIL_TEST_NATS_URL")
		if url == "" {
			t.Skip("VIGIL_TEST_NATS_URL is not set (e.g. nats://127.0.0.1:4222)")
		}
		cfg.URL = url
		cfg.Prefix = fmt.Sprintf("test_detect_%d", time.Now().UnixNano())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := natsbus.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	rules, errs := threshold.LoadDir("../../rules/threshold")
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	reg := prometheus.NewRegistry()
	st := detect.NewStage(b, []detect.Detector{threshold.New(rules, threshold.Options{Registerer: reg})},
		detect.StageOptions{Registerer: reg})

	events := readEvents(t, "testdata/default_rules/events.jsonl")
	now := time.Now()
	for i := range events {
		events[i].Received = now
	}
	if err := b.PublishEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()

	want := []string{
		"vigil-auth-bruteforce", "vigil-auth-default-account", "vigil-health-cpu-sustained",
		"vigil-health-disk-full", "vigil-health-temperature-high", "vigil-net-telnet-listener",
		"vigil-net-unexpected-listener",
	}
	var (
		mu  sync.Mutex
		got []string
	)
	all := make(chan struct{})
	cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
	defer ccancel()
	go func() {
		_ = b.ConsumeAlerts(cctx, "test", func(_ context.Context, alerts []vigil.Alert) error {
			mu.Lock()
			defer mu.Unlock()
			for _, a := range alerts {
				if a.ID == "" || a.Created.IsZero() || a.Detector != threshold.Name {
					t.Errorf("alert without stage defaults: %+v", a)
				}
				got = append(got, a.RuleID)
			}
			if len(got) == len(want) {
				close(all)
			}
			return nil
		})
	}()
	select {
	case <-all:
	case <-cctx.Done():
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	mu.Lock()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("alerts from the bus %v, want %v", got, want)
	}
	mu.Unlock()
	if n := histogramCount(t, reg, "vigil_detect_latency_seconds"); n != uint64(len(want)) {
		t.Errorf("latency observed %d times, want %d", n, len(want))
	}
	if v := counterValue(t, reg, "vigil_detect_alerts_total", "detector", threshold.Name); v != float64(len(want)) {
		t.Errorf("vigil_detect_alerts_total %v, want %d", v, len(want))
	}
}

func histogramCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}
