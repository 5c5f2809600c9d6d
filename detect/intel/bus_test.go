package intel_test

import (
	"context"
	"github.com/vigil-iot/vigil/store/sqlite"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus/natsbus"
	"github.com/vigil-iot/vigil/detect"
	"github.com/vigil-iot/vigil/detect/intel"
	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/catalog"
)

// TestPipeline imports real feeds into a catalog wired to the detector, runs
// the detection stage on the embedded NATS bus, and checks the IOC alerts
// that come out of it.
func TestPipeline(t *testing.T) {
	tf := filepath.Join("..", "..", "..", "shared", "corpus", "intel", "threatfox-ips.txt")
	sednit := filepath.Join("..", "..", "..", "shared", "corpus", "intel", "misp-event-sednit.json")
	for _, p := range []string{tf, sednit} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("corpus file %s absent: %v", p, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	det := intel.New(nil, nil)
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cat, err := catalog.Open(ctx, db, "", nil, nil, det.Load)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []feeds.Feed{
		{Name: "threatfox", Source: tf, Confidence: 75},
		{Name: "sednit", Source: sednit},
		{Name: "cti", Source: "../../feeds/stix/testdata/bundle21.json"},
	} {
		if _, err := cat.Import(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	b, err := natsbus.Open(ctx, natsbus.Config{DataDir: t.TempDir(), Partitions: 2, FetchWait: 100 * time.Millisecond,
		Groups: []string{detect.DefaultGroup, "test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st := detect.NewStage(b, []detect.Detector{det}, detect.StageOptions{})

	now := time.Now()
	net := func(dst string) *vigil.Network {
		return &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.0.5"), SrcPort: 40000, DstIP: netip.MustParseAddr(dst), DstPort: 443}
	}
	events := []vigil.Event{
		{ID: "e1", Time: now, Received: now, DeviceID: "cam-1", Source: "sensor", Kind: "network", Network: net("1.7.147.211")},
		{ID: "e2", Time: now, Received: now, DeviceID: "cam-1", Source: "sensor", Kind: "dns", Fields: map[string]any{"dns.question.name": "www.movieultimate.com"}},
		{ID: "e3", Time: now, Received: now, DeviceID: "gw-1", Source: "sensor", Kind: "tls", Network: net("192.0.2.200"), Fields: map[string]any{"tls.client.server_name": "example.org"}},
		{ID: "e4", Time: now, Received: now, DeviceID: "gw-1", Source: "agent", Kind: "file", Fields: map[string]any{"file.path": "/tmp/mozi.a", "file.hash.sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}},
	}
	if err := b.PublishEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	want := []string{"e1 threatfox destination.ip", "e2 sednit dns.question.name", "e4 cti file.hash.sha256"}
	var (
		mu  sync.Mutex
		got []string
	)
	all := make(chan struct{})
	cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
	defer ccancel()
	go func() {
		_ = b.ConsumeAlerts(cctx, "test", func(_ context.Context, alerts []vigil.Alert) error {
			mu.Lock()
			defer mu.Unlock()
			for _, a := range alerts {
				if a.ID == "" || a.Created.IsZero() || a.Detector != intel.Name {
					t.Errorf("alert without stage defaults: %+v", a)
				}
				got = append(got, a.EventIDs[0]+" "+a.Fields["intel.feed"].(string)+" "+a.Fields["intel.matched.field"].(string))
			}
			if len(got) >= len(want) {
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
	defer mu.Unlock()
	sort.Strings(got)
	if len(got) != len(want) {
		t.Fatalf("alerts %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("alert %d: %s, want %s", i, got[i], want[i])
		}
	}
}
