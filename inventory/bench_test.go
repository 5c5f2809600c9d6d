package inventory_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/inventory"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/sqlite"
)

// BenchmarkHandle measures the stage on a sqlite store: batches of 1000
// events over 100 devices, one in ten a health sample, times moving on by
// one second per batch.
func BenchmarkHandle(b *testing.B) {
	st, err := openBenchStore(b)
	if err != nil {
		b.Fatal(err)
	}
	benchHandle(b, st)
}

// BenchmarkHandlePostgres is BenchmarkHandle on PostgreSQL
// (VIGIL_TEST_POSTGRES_URL).
func BenchmarkHandlePostgres(b *testing.B) {
	benchHandle(b, openPostgres(b))
}

func benchHandle(b *testing.B, st store.Store) {
	s, err := inventory.NewStage(nil, st, inventory.Options{})
	if err != nil {
		b.Fatal(err)
	}
	const batch, devices = 1000, 100
	events := make([]vigil.Event, batch)
	ctx := context.Background()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		at := t0.Add(time.Duration(n) * time.Second)
		for i := range events {
			dev := fmt.Sprintf("dev-%03d", i%devices)
			if i/devices == 0 {
				events[i] = health(fmt.Sprintf("h-%d-%d", n, i), dev, 0, float64(i))
				events[i].Time = at
			} else {
				events[i] = vigil.Event{ID: fmt.Sprintf("e-%d-%d", n, i), Time: at.Add(time.Duration(i) * time.Millisecond),
					DeviceID: dev, Source: "agent", Kind: vigil.KindAuth}
			}
		}
		if err := s.Handle(ctx, 0, events); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

func openBenchStore(b *testing.B) (*sqlite.Store, error) {
	st, err := sqlite.Open(filepath.Join(b.TempDir(), "vigil.db"), sqlite.Options{})
	if err == nil {
		b.Cleanup(func() { st.Close() })
	}
	return st, err
}
