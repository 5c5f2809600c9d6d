package httpin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus/natsbus"
	"github.com/vigil-iot/vigil/ingest/httpin"
	"github.com/vigil-iot/vigil/wire"
)

// openBus opens an embedded bus in a temporary directory.
func openBus(t *testing.T, cfg natsbus.Config) *natsbus.Bus {
	t.Helper()
	cfg.DataDir = t.TempDir()
	b, err := natsbus.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cfg.URL != "" {
			// A shared server: leave nothing behind.
			if err := b.DeleteStreams(context.Background()); err != nil {
				t.Errorf("cannot delete the test streams: %v", err)
			}
		}
		b.Close()
	})
	return b
}

func post(t *testing.T, srv *httptest.Server, path, ct string, body []byte) (int, http.Header, wire.Response) {
	t.Helper()
	resp, err := srv.Client().Post(srv.URL+path, ct, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r wire.Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, r
}

// TestThroughBus posts a report and a bulk body over HTTP to the handlers
// in front of a real NATS JetStream bus, embedded and (when
// VIGIL_TEST_NATS_URL is set) external, and reads the events back.
func TestThroughBus(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		throughBus(t, natsbus.Config{Partitions: 2, Groups: []string{"test"}})
	})
	t.Run("external", func(t *testing.T) {
		url := os.Getenv("VIGIL_TEST_NATS_URL")
		if url == "" {
			t.Skip("VIGIL_TEST_NATS_URL is not set (e.g. nats://127.0.0.1:4222)")
		}
		prefix := "httpin" + vigil.NewID()[20:]
		throughBus(t, natsbus.Config{URL: url, Prefix: prefix, Partitions: 2, Groups: []string{"test"}})
	})
}

func throughBus(t *testing.T, cfg natsbus.Config) {
	b := openBus(t, cfg)
	h, err := httpin.NewHandler(httpin.Options{Publisher: b})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	report, err := os.ReadFile("../../wire/testdata/report.xml")
	if err != nil {
		t.Fatal(err)
	}
	if code, _, r := post(t, srv, httpin.PathReport, "application/xml", report); code != 200 || r.Accepted != 6 {
		t.Fatalf("report: %d %+v", code, r)
	}
	bulkBody := `{"time":"2026-11-22T03:14:00Z","device_id":"cam-0042","kind":"auth","user.name":"root","source.ip":"203.0.113.7"}` + "\n" +
		`{"time":"bad","kind":"auth"}` + "\n"
	if code, _, r := post(t, srv, httpin.PathEvents, "application/x-ndjson", []byte(bulkBody)); code != 200 || r.Accepted != 1 || r.RejectedCount != 1 {
		t.Fatalf("bulk: %d %+v", code, r)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var (
		mu  sync.Mutex
		got []vigil.Event
	)
	done := make(chan error, 1)
	go func() {
		done <- b.ConsumeEvents(ctx, "test", func(_ context.Context, _ int, evs []vigil.Event) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, evs...)
			if len(got) >= 7 {
				cancel()
			}
			return nil
		})
	}()
	<-ctx.Done()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 7 {
		t.Fatalf("consumed %d events, want 7", len(got))
	}
	var kinds []string
	for _, e := range got {
		kinds = append(kinds, e.Kind+"/"+e.Source)
		if e.DeviceID != "cam-0042" {
			t.Fatalf("event from the bus: %+v", e)
		}
		if e.Kind == "health" {
			if v, _ := e.FieldNumber("host.cpu.pct"); v != 37.5 {
				t.Fatalf("health event from the bus: %v", e.Fields)
			}
		}
	}
	sort.Strings(kinds)
	if s := strings.Join(kinds, " "); s != "auth/agent auth/bulk health/agent inventory/agent network/agent network/agent process/agent" {
		t.Fatalf("kinds: %s", s)
	}
}

// TestBackpressureFromFullStream fills a tiny stream that nobody consumes
// and expects 429 with Retry-After once JetStream refuses more.
func TestBackpressureFromFullStream(t *testing.T) {
	b := openBus(t, natsbus.Config{Partitions: 1, Groups: []string{"slow"}, MaxEventBytes: 64 << 10})
	h, err := httpin.NewHandler(httpin.Options{Publisher: b})
	if err != nil {
		t.Fatal(err)
	}
	var body strings.Builder
	for i := range 100 {
		fmt.Fprintf(&body, `{"time":"2026-11-22T03:14:00Z","device_id":"d","kind":"auth","n":%d,"pad":"%s"}`+"\n", i, strings.Repeat("x", 100))
	}
	for i := range 100 {
		req := httptest.NewRequest("POST", httpin.PathEvents, strings.NewReader(body.String()))
		req.Header.Set("Content-Type", "application/x-ndjson")
		rec := httptest.NewRecorder()
		h.Bulk().ServeHTTP(rec, req)
		switch rec.Code {
		case 200:
			continue
		case 429:
			if rec.Header().Get("Retry-After") != "1" || !strings.Contains(rec.Body.String(), `"code":"busy"`) {
				t.Fatalf("429 answer: %v %s", rec.Header(), rec.Body)
			}
			if i == 0 {
				t.Fatal("429 before anything was stored")
			}
			return
		default:
			t.Fatalf("post %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	t.Fatal("the stream never pushed back")
}
