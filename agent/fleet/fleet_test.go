package fleet

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/enroll"
	"github.com/vigil-iot/vigil/ingest/httpin"
	"github.com/vigil-iot/vigil/pki"
)

type sink struct {
	mu      sync.Mutex
	devices map[string]int
}

func (s *sink) PublishEvents(_ context.Context, evs []vigil.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range evs {
		s.devices[e.DeviceID]++
	}
	return nil
}

func (s *sink) count() (devices, events int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.devices {
		events += n
	}
	return len(s.devices), events
}

func setup(t testing.TB) (*httptest.Server, *pki.CA, enroll.Tokens, *sink) {
	dir := t.TempDir()
	ca, err := pki.EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := ca.EnsureServerCert(dir, nil)
	files, err := enroll.OpenDir(filepath.Join(dir, "data"), nil)
	if err != nil {
		t.Fatal(err)
	}
	sk := &sink{devices: map[string]int{}}
	in, _ := httpin.NewHandler(httpin.Options{Publisher: sk})
	h, err := enroll.New(enroll.Options{CA: ca, Tokens: files.Tokens, Revocations: files.Revocations, CommandKey: files.CommandKey, Commands: commandStore(t), Report: in.Report()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h.Front(http.NotFoundHandler()))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, ca, files.Tokens, sk
}

func TestFleetEnrollsAndReports(t *testing.T) {
	srv, ca, toks, sk := setup(t)
	const n = 30
	f, err := Enroll(context.Background(), Options{Server: srv.URL, RootCAs: ca.Pool(), Count: n, Interval: 300 * time.Millisecond,
		Token: func(context.Context, int) (string, error) {
			p, _, err := toks.Create("camera", time.Hour)
			return p, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, a := range f.Agents() {
		ids[a.DeviceID] = true
	}
	if len(ids) != n {
		t.Fatalf("%d distinct device ids, want %d", len(ids), n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if d, _ := sk.count(); d == n {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			d, _ := sk.count()
			t.Fatalf("reports from %d devices of %d; stats %+v", d, n, f.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	if st := f.Stats(); st.Failures != 0 || st.Enrolled != n {
		t.Fatalf("stats %+v", st)
	}
}

// TestFleetScale enrolls VIGIL_FLEET_AGENTS agents (default 1000) and
// sends one report from each, logging the rates. Skipped with -short.
func TestFleetScale(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test skipped with -short")
	}
	n := 1000
	if s := os.Getenv("VIGIL_FLEET_AGENTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	srv, ca, toks, sk := setup(t)
	start := time.Now()
	f, err := Enroll(context.Background(), Options{Server: srv.URL, RootCAs: ca.Pool(), Count: n, Concurrency: 16,
		Token: func(context.Context, int) (string, error) {
			p, _, err := toks.Create("sensor", time.Hour)
			return p, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	enrolled := time.Since(start)
	start = time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, a := range f.Agents() {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f.Send(context.Background(), a, time.Now()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	sent := time.Since(start)
	d, _ := sk.count()
	t.Logf("%d agents: enrolled in %s (%.0f/s), one report each in %s (%.0f reports/s, new mTLS connection each); server saw %d devices",
		n, enrolled.Round(time.Millisecond), float64(n)/enrolled.Seconds(), sent.Round(time.Millisecond), float64(n)/sent.Seconds(), d)
	if d != n {
		t.Fatalf("server saw %d devices, want %d", d, n)
	}
}
