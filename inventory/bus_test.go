package inventory_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus/natsbus"
	"github.com/vigil-iot/vigil/inventory"
)

// openBus returns an embedded bus in a temporary directory, or one on the
// external NATS of VIGIL_TEST_NATS_URL when external is true.
func openBus(t *testing.T, external bool) *natsbus.Bus {
	t.Helper()
	cfg := natsbus.Config{DataDir: t.TempDir(), Partitions: 4, FetchWait: 100 * time.Millisecond}
	if external {
		url := os.Getenv("VIGIL_TEST_NATS_URL")
		if url == "" {
			t.Skip("VIGIL_TEST_NATS_URL is not set (e.g. nats://127.0.0.1:4222)")
		}
		cfg.URL = url
		cfg.Prefix = fmt.Sprintf("test_inventory_%d", time.Now().UnixNano())
	}
	b, err := natsbus.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if external {
			b.DeleteStreams(context.Background())
		}
		b.Close()
	})
	return b
}

func TestStageOnEmbeddedBus(t *testing.T)  { testStageOnBus(t, false) }
func TestStageOnExternalNATS(t *testing.T) { testStageOnBus(t, true) }

func testStageOnBus(t *testing.T, external bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := openBus(t, external)
	st := openStore(t, "")
	s, err := inventory.NewStage(b, st, inventory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const devices, reports = 20, 50
	var events []vigil.Event
	for r := range reports {
		for d := range devices {
			events = append(events, health(fmt.Sprintf("h-%d-%d", d, r), fmt.Sprintf("dev-%02d", d), r*10, float64(r)))
		}
	}
	if err := b.PublishEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	last := t0.Add(time.Duration(reports-1) * 10 * time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for d := 0; d < devices; {
		// The device is written before its health samples: wait for both.
		dev, err := st.GetDevice(ctx, fmt.Sprintf("dev-%02d", d))
		hist, _ := st.HealthHistory(ctx, dev.ID, t0, last.Add(time.Second))
		if err == nil && dev.Health != nil && dev.Health.Time.Equal(last) && len(hist) >= reports {
			d++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("dev-%02d not up to date after 30s: %+v, %v", d, dev, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for d := range devices {
		id := fmt.Sprintf("dev-%02d", d)
		hist, err := st.HealthHistory(ctx, id, t0, last.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != reports {
			t.Errorf("%s has %d health samples, want %d", id, len(hist), reports)
		}
		dev, _ := st.GetDevice(ctx, id)
		if !dev.FirstSeen.Equal(t0) || !dev.LastSeen.Equal(last) || dev.State != vigil.StateActive {
			t.Errorf("%s: first %v last %v state %s", id, dev.FirstSeen, dev.LastSeen, dev.State)
		}
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
}
