package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/bus/natsbus"
	"github.com/vigil-iot/vigil/ingest/httpin"
	"github.com/vigil-iot/vigil/pki"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/sqlite"
	"github.com/vigil-iot/vigil/web"
)

// stack is a real server: TLS with Vigil's CA, SQLite store, token file,
// embedded NATS bus behind the ingest handlers.
type stack struct {
	url    string
	ca     *pki.CA
	store  *sqlite.Store
	tokens *auth.FileStore
	tok    map[auth.Role]string
}

func newStack(t *testing.T, maxEventBytes int64) *stack {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.EnsureCA(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.EnsureServerCert(filepath.Join(dir, "pki"), nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(dir, "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	toks, err := auth.OpenFileStore(filepath.Join(dir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{ca: ca, store: st, tokens: toks, tok: map[auth.Role]string{}}
	for _, r := range auth.Roles() {
		if s.tok[r], _, err = toks.Create("test-"+string(r), r); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := natsbus.Open(ctx, natsbus.Config{
		DataDir:       filepath.Join(dir, "nats"),
		Groups:        []string{"never-consumes"}, // events stay, so a tiny stream fills up
		MaxEventBytes: maxEventBytes,
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	in, err := httpin.NewHandler(httpin.Options{Publisher: b})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := web.NewServer(web.Options{Store: st, Tokens: toks, AgentReport: in.Report(), BulkEvents: in.Bulk()})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := web.Listen(web.ListenConfig{Addr: "127.0.0.1:0", Certificate: &cert}, srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hs.Shutdown(context.Background()) })
	s.url = hs.URL()
	return s
}

func (s *stack) client(t *testing.T, role auth.Role, opts ...Option) *Client {
	t.Helper()
	c, err := New(s.url, s.tok[role], TLSConfig(s.ca.Pool()), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

var t0 = time.Now().UTC().Truncate(time.Second)

func seed(t *testing.T, st store.Store) {
	t.Helper()
	ctx := context.Background()
	for i, c := range []string{vigil.ClassCamera, vigil.ClassThermostat, vigil.ClassCamera} {
		d := vigil.Device{ID: fmt.Sprintf("dev-%d", i), Class: c, State: vigil.StateActive, LastSeen: t0}
		if err := st.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AddHealth(ctx, []vigil.Health{{DeviceID: "dev-0", Time: t0.Add(-time.Minute), CPU: 42}}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutEvents(ctx, []vigil.Event{
		{ID: "e1", Time: t0.Add(-3 * time.Minute), DeviceID: "dev-0", Kind: vigil.KindAuth, Outcome: vigil.OutcomeFailure, Fields: map[string]any{"user.name": "root"}},
		{ID: "e2", Time: t0.Add(-2 * time.Minute), DeviceID: "dev-0", Kind: vigil.KindAuth, Outcome: vigil.OutcomeFailure, Fields: map[string]any{"user.name": "admin"}},
		{ID: "e3", Time: t0.Add(-1 * time.Minute), DeviceID: "dev-1", Kind: vigil.KindProcess},
	}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []vigil.Alert{
		{ID: "a1", RuleID: "brute", Severity: vigil.SeverityHigh, DeviceID: "dev-0", Created: t0.Add(-90 * time.Second), Count: 1},
		{ID: "a2", RuleID: "proc", Severity: vigil.SeverityLow, DeviceID: "dev-1", Created: t0.Add(-30 * time.Second), Count: 1},
	} {
		if err := st.PutAlert(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.PutIncident(ctx, vigil.Incident{ID: "i1", Status: vigil.IncidentOpen, DeviceIDs: []string{"dev-0"},
		FirstEventTime: t0.Add(-3 * time.Minute), Detected: t0.Add(-3*time.Minute + 750*time.Millisecond), Updated: t0}); err != nil {
		t.Fatal(err)
	}
}

func TestReadAPI(t *testing.T) {
	s := newStack(t, 0)
	seed(t, s.store)
	c := s.client(t, auth.RoleViewer)
	ctx := context.Background()

	devs, next, err := c.ListDevices(ctx, store.DeviceFilter{Class: vigil.ClassCamera, Page: store.Page{Limit: 1}})
	if err != nil || len(devs) != 1 || devs[0].ID != "dev-0" || next == "" {
		t.Fatalf("ListDevices page 1 = %v %q %v", devs, next, err)
	}
	devs, next, err = c.ListDevices(ctx, store.DeviceFilter{Class: vigil.ClassCamera, Page: store.Page{Limit: 1, Cursor: next}})
	if err != nil || len(devs) != 1 || devs[0].ID != "dev-2" {
		t.Fatalf("ListDevices page 2 = %v %q %v", devs, next, err)
	}
	d, err := c.GetDevice(ctx, "dev-0")
	if err != nil || d.ID != "dev-0" || len(d.HealthHistory) != 1 || d.HealthHistory[0].CPU != 42 {
		t.Fatalf("GetDevice = %+v, %v", d, err)
	}
	d, err = c.GetDeviceHistory(ctx, "dev-0", t0.Add(-30*time.Second), time.Time{})
	if err != nil || len(d.HealthHistory) != 0 {
		t.Fatalf("GetDeviceHistory(since -30s) = %+v, %v", d.HealthHistory, err)
	}

	alerts, _, err := c.ListAlerts(ctx, store.AlertFilter{MinSeverity: vigil.SeverityMedium})
	if err != nil || len(alerts) != 1 || alerts[0].ID != "a1" {
		t.Fatalf("ListAlerts(min medium) = %v, %v", alerts, err)
	}
	alerts, _, err = c.ListAlerts(ctx, store.AlertFilter{Since: t0.Add(-time.Minute)})
	if err != nil || len(alerts) != 1 || alerts[0].ID != "a2" {
		t.Fatalf("ListAlerts(since) = %v, %v", alerts, err)
	}
	if a, err := c.GetAlert(ctx, "a1"); err != nil || a.RuleID != "brute" {
		t.Fatalf("GetAlert = %+v, %v", a, err)
	}

	incs, _, err := c.ListIncidents(ctx, store.IncidentFilter{Status: vigil.IncidentOpen, DeviceID: "dev-0"})
	if err != nil || len(incs) != 1 || incs[0].TimeToDetect != "750ms" {
		t.Fatalf("ListIncidents = %+v, %v", incs, err)
	}
	inc, err := c.GetIncident(ctx, "i1")
	if ttd, _ := inc.Durations(); err != nil || ttd != 750*time.Millisecond || inc.TimeToDetectSeconds != 0.75 {
		t.Fatalf("GetIncident = %+v, %v", inc, err)
	}

	evs, _, err := c.ListEvents(ctx, store.EventFilter{DeviceID: "dev-0", Kind: vigil.KindAuth, Fields: map[string]string{"user.name": "root"}})
	if err != nil || len(evs) != 1 || evs[0].ID != "e1" {
		t.Fatalf("ListEvents = %v, %v", evs, err)
	}
	evs, _, err = c.ListEvents(ctx, store.EventFilter{Since: t0.Add(-150 * time.Second), Until: t0.Add(-30 * time.Second)})
	if err != nil || !slices.Equal([]string{evs[0].ID, evs[1].ID}, []string{"e3", "e2"}) || len(evs) != 2 {
		t.Fatalf("ListEvents(time range) = %v, %v", evs, err)
	}
	if e, err := c.GetEvent(ctx, "e2"); err != nil || e.Fields["user.name"] != "admin" {
		t.Fatalf("GetEvent = %+v, %v", e, err)
	}

	_, err = c.GetIncident(ctx, "nope")
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != vigil.ENOTFOUND || vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("GetIncident(nope) err = %#v", err)
	}
	if _, _, err := c.ListEvents(ctx, store.EventFilter{Page: store.Page{Cursor: "garbage"}}); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Fatalf("bad cursor err = %v, want invalid", err)
	}
}

func TestAuthErrorsAndTokens(t *testing.T) {
	s := newStack(t, 0)
	ctx := context.Background()

	bad, err := New(s.url, "vgl_nope", TLSConfig(s.ca.Pool()))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = bad.ListDevices(ctx, store.DeviceFilter{})
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Code != vigil.EUNAUTHORIZED {
		t.Fatalf("bad token err = %v", err)
	}
	if _, err := s.client(t, auth.RoleViewer).CreateToken(ctx, "x", auth.RoleViewer); vigil.ErrorCode(err) != vigil.EFORBIDDEN {
		t.Fatalf("viewer CreateToken err = %v, want forbidden", err)
	}

	admin := s.client(t, auth.RoleAdmin)
	ct, err := admin.CreateToken(ctx, "ci-runner", auth.RoleAnalyst)
	if err != nil || ct.Role != auth.RoleAnalyst || !strings.HasPrefix(ct.Secret, auth.TokenPrefix) {
		t.Fatalf("CreateToken = %+v, %v", ct, err)
	}
	fresh, err := New(s.url, ct.Secret, TLSConfig(s.ca.Pool()))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if _, _, err := fresh.ListAlerts(ctx, store.AlertFilter{}); err != nil {
		t.Fatalf("new token cannot read: %v", err)
	}
	toks, err := admin.ListTokens(ctx)
	if err != nil || !slices.ContainsFunc(toks, func(t auth.Token) bool { return t.Name == "ci-runner" }) {
		t.Fatalf("ListTokens = %v, %v", toks, err)
	}
	if err := admin.RevokeToken(ctx, "ci-runner"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fresh.ListAlerts(ctx, store.AlertFilter{}); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("revoked token err = %v", err)
	}
	if err := admin.Healthz(ctx); err != nil {
		t.Fatal(err)
	}
	if err := admin.Ready(ctx); err != nil {
		t.Fatal(err)
	}

	// A client that does not trust Vigil's CA fails the handshake.
	stranger, err := New(s.url, s.tok[auth.RoleAdmin], nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := stranger.Healthz(ctx); err == nil {
		t.Fatal("a client without Vigil's CA connected")
	}
}

const goodReport = `{"version":"1","device_id":"cam-9","time":"2026-11-22T03:15:00Z",
"health":{"cpu_pct":12,"memory_pct":30,"disk_pct":40},
"events":[{"kind":"auth","time":"2026-11-22T03:14:59Z","action":"login","outcome":"failure"}]}`

func TestIngest(t *testing.T) {
	s := newStack(t, 0)
	ctx := context.Background()
	agent := s.client(t, auth.RoleAgent)

	resp, err := agent.PostReport(ctx, "application/json", []byte(goodReport))
	if err != nil || resp.Accepted < 2 || resp.RejectedCount != 0 {
		t.Fatalf("PostReport = %+v, %v", resp, err)
	}

	// Bulk with one bad line: the rest goes through, the bad one is named.
	ndjson := `{"time":"2026-11-22T03:15:00Z","kind":"auth","device_id":"gw-1"}
{"time":"2026-11-22T03:15:01Z","device_id":"gw-1"}
{"time":"2026-11-22T03:15:02Z","kind":"network","device_id":"gw-1"}
`
	resp, err = agent.PostEvents(ctx, []byte(ndjson))
	if err != nil || resp.Accepted != 2 || resp.RejectedCount != 1 || len(resp.Rejected) != 1 || resp.Rejected[0].Line != 2 {
		t.Fatalf("PostEvents = %+v, %v", resp, err)
	}

	// A report that cannot be accepted at all: a 400 with the reasons.
	_, err = agent.PostReport(ctx, "application/json", []byte(`{"version":"1","time":"2026-11-22T03:15:00Z","health":{"cpu_pct":1,"memory_pct":2,"disk_pct":3}}`))
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != vigil.EINVALID || ae.Ingest == nil || !strings.Contains(ae.Message, "device_id") {
		t.Fatalf("invalid report err = %#v", err)
	}
	if _, err := agent.PostReport(ctx, "text/plain", []byte("x")); !errors.As(err, &ae) || ae.Status != 415 {
		t.Fatalf("text/plain report err = %v, want 415", err)
	}

	// A viewer may not ingest.
	if _, err := s.client(t, auth.RoleViewer).PostEvents(ctx, []byte(ndjson)); vigil.ErrorCode(err) != vigil.EFORBIDDEN {
		t.Fatalf("viewer PostEvents err = %v", err)
	}
}

func TestBusyIsRecognizable(t *testing.T) {
	s := newStack(t, 16<<10) // a 16 KiB stream that nobody drains
	ctx := context.Background()
	agent := s.client(t, auth.RoleAgent)
	var line strings.Builder
	for i := range 20 {
		fmt.Fprintf(&line, `{"time":"2026-11-22T03:15:00Z","kind":"system","device_id":"d-%d","fields":{"pad":"%s"}}`+"\n", i, strings.Repeat("x", 200))
	}
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatal("100 posts to a 16 KiB stream never got a 429")
		}
		_, err := agent.PostEvents(ctx, []byte(line.String()))
		if err == nil {
			continue
		}
		d, busy := IsBusy(err)
		if !busy {
			t.Fatalf("post %d: err = %v, want a 429", i, err)
		}
		if d != time.Second || vigil.ErrorCode(err) != vigil.EBUSY {
			t.Fatalf("429: Retry-After %s, code %s; want 1s and busy", d, vigil.ErrorCode(err))
		}
		break
	}
}

// TestConnectionPool checks that many goroutines share at most MaxConns
// HTTP/1.1 connections, kept alive between requests.
func TestConnectionPool(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.EnsureServerCert(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var conns, http2 atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 1 {
			http2.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"accepted":1}`)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.EnableHTTP2 = true
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()

	c, err := New(srv.URL, "vgl_x", TLSConfig(ca.Pool()), WithMaxConns(4))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if r, err := c.PostEvents(context.Background(), []byte("{}\n")); err != nil || r.Accepted != 1 {
					t.Error(r, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := conns.Load(); n < 1 || n > 4 {
		t.Fatalf("320 requests from 16 goroutines opened %d connections, want 1 to 4", n)
	}
	if http2.Load() != 0 {
		t.Fatal("the client spoke HTTP/2")
	}
}

func TestNewAndRetryAfter(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "127.0.0.1:8443", "https://", "https://h/?a=1"} {
		if _, err := New(u, "t", nil); vigil.ErrorCode(err) != vigil.EINVALID {
			t.Errorf("New(%q): err = %v, want invalid", u, err)
		}
	}
	c, err := New("https://h:1/", "t", nil)
	if err != nil || c.BaseURL() != "https://h:1" {
		t.Fatalf("New = %v, %v", c, err)
	}
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	f := func(h string, want time.Duration) {
		t.Helper()
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", h, got, want)
		}
	}
	f("", 0)
	f("3", 3*time.Second)
	f(" 0 ", 0)
	f("-1", 0)
	f(now.Add(90*time.Second).Format(http.TimeFormat), 90*time.Second)
	f("soon", 0)
}
