package agent

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/collect"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/enroll"
	"github.com/vigil-iot/vigil/ingest/httpin"
	"github.com/vigil-iot/vigil/pki"
	"github.com/vigil-iot/vigil/wire"
)

type sink struct {
	mu     sync.Mutex
	events []vigil.Event
	notify chan struct{}
}

func (s *sink) PublishEvents(_ context.Context, evs []vigil.Event) error {
	s.mu.Lock()
	s.events = append(s.events, evs...)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
	return nil
}

func (s *sink) find(kind, action string) []vigil.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []vigil.Event
	for _, e := range s.events {
		if e.Kind == kind && (action == "" || e.Action == action) {
			out = append(out, e)
		}
	}
	return out
}

// server is a real Vigil device endpoint (enroll + ingest) over mTLS.
type server struct {
	srv    *httptest.Server
	h      *enroll.Handler
	sink   *sink
	caFile string
	tls    *tls.Config
	toks   enroll.Tokens
	cmdKey ed25519.PrivateKey // signs commands
}

// newServer starts the device endpoint; mod changes the enroll options
// (an update key) before the handler is made.
func newServer(t *testing.T, mod ...func(*enroll.Options)) *server {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.EnsureServerCert(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := enroll.OpenTokenStore(filepath.Join(dir, enroll.TokensFile), nil)
	revs, _ := enroll.OpenRevocations(filepath.Join(dir, enroll.RevokedFile), nil)
	key, err := enroll.EnsureCommandKey(filepath.Join(dir, enroll.CommandKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	s := &server{sink: &sink{notify: make(chan struct{}, 1)}, caFile: filepath.Join(dir, pki.CACertFile), toks: toks, cmdKey: key}
	in, _ := httpin.NewHandler(httpin.Options{Publisher: s.sink})
	o := enroll.Options{CA: ca, Tokens: toks, Revocations: revs, CommandKey: key, Commands: commandStore(t), Report: in.Report()}
	for _, m := range mod {
		m(&o)
	}
	s.h, err = enroll.New(o)
	if err != nil {
		t.Fatal(err)
	}
	s.tls = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven}
	s.srv = newTLSServer(t, s.h, s.tls)
	return s
}

func newTLSServer(t *testing.T, h *enroll.Handler, cfg *tls.Config) *httptest.Server {
	srv := httptest.NewUnstartedServer(h.Front(http.NotFoundHandler()))
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func (s *server) enroll(t *testing.T) string {
	t.Helper()
	tok, _, _ := s.toks.Create("gateway", time.Hour)
	state := filepath.Join(t.TempDir(), "state")
	if _, err := Enroll(context.Background(), EnrollOptions{Server: s.srv.URL, Token: tok, StateDir: state, CAFile: s.caFile}); err != nil {
		t.Fatal(err)
	}
	return state
}

func TestLoadExampleConfig(t *testing.T) {
	c, err := LoadConfig("packaging/agent.example.json")
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.Interval) != time.Minute || c.Format != "json" || !c.Commands || len(c.FIMPaths) != 4 || c.ProcessEvents != "connector" {
		t.Fatalf("%+v", c)
	}
	if _, err := command.LoadPolicy("packaging/policy.example.json"); err != nil {
		t.Fatal(err)
	}
	f := func(body, want string) {
		t.Helper()
		p := filepath.Join(t.TempDir(), "c.json")
		writeFileAtomic(p, []byte(body), 0o600)
		_, err := LoadConfig(p)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", body, err, want)
		}
	}
	f(`{"intervall": "1s"}`, "intervall")
	f(`{"format": "yaml"}`, "yaml")
	f(`{"interval": "soon"}`, "duration")
	f(`{"server": "http://x"}`, "https")
	f(`{"disable": ["everything"]}`, "everything")
	f(`{"process_events": "audit"}`, "process_events")
	f(`{"flash_wear_level": 12}`, "flash_wear_level")
	f(`{"dos_thresholds": {"syn_recv": "many"}}`, "syn_recv")
	f(`{"update": {"installer": "yum"}}`, "unknown installer")
	f(`{"update": {"installer": "script", "script": "update.sh"}}`, "absolute path")
	f(`{"update": {"installer": "ab"}}`, "no command")
}

func TestBackoff(t *testing.T) {
	for n := range 12 {
		want := min(time.Second<<n, time.Minute)
		for range 50 {
			d := Backoff(n, time.Second, time.Minute)
			if d < want/2 || d >= want*3/2 {
				t.Fatalf("Backoff(%d) = %s, want in [%s, %s)", n, d, want/2, want*3/2)
			}
		}
	}
}

func TestRunReportsAndSpoolDropsAreReported(t *testing.T) {
	s := newServer(t)
	state := s.enroll(t)
	cfg := Config{StateDir: state, SpoolMaxBytes: 64 << 10, Disable: []string{"processes", "packages", "network"}}
	a, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The server is unreachable: reports pile up and the oldest are dropped.
	a.server = "https://127.0.0.1:1"
	big := strings.Repeat("x", 4000)
	for range 40 {
		r := a.Collect(context.Background(), nil)
		r.Events = []wire.SecurityEvent{{ID: newEventID(), Time: time.Now().UTC(), Kind: "file", Action: "changed", Fields: wire.Fields{"file.path": big}}}
		if err := a.Enqueue(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.SendPending(context.Background()); err == nil {
		t.Fatal("sent to an unreachable server")
	}
	dropped := a.Spool().Dropped()
	if dropped == 0 {
		t.Fatal("nothing dropped from a full spool")
	}
	a.Close()

	// The agent restarts against the real server and runs. It goes idle
	// (memory returned) once the backlog is sent.
	cfg.Interval, cfg.EventInterval = Duration(time.Hour), Duration(time.Hour)
	idle := make(chan int, 10)
	var spooled func() int
	a, err = New(cfg, Options{Idle: func() {
		select {
		case idle <- spooled():
		default:
		}
	}})
	spooled = a.Spool().Len
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	deadline := time.After(20 * time.Second)
	for len(s.sink.find("health", "")) == 0 || len(s.sink.find("system", "agent_spool_dropped")) == 0 {
		select {
		case <-s.sink.notify:
		case <-deadline:
			cancel()
			t.Fatalf("no health report or drop event; events: %d", len(s.sink.events))
		}
	}
	select {
	case n := <-idle:
		if n != 0 {
			t.Errorf("idle with %d reports still spooled", n)
		}
	case <-deadline:
		t.Error("the agent never went idle after sending")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ev := s.sink.find("system", "agent_spool_dropped")[0]
	if ev.Fields["agent.spool.dropped_reports"] != strconv.FormatUint(dropped, 10) {
		t.Fatalf("drop event %v, want %d", ev.Fields, dropped)
	}
	if a.Spool().Dropped() != 0 {
		t.Fatal("drop count not reset after it was reported")
	}
	if n := len(s.sink.find("file", "changed")); n != 40-int(dropped) {
		t.Fatalf("delivered %d spooled events, want %d", n, 40-int(dropped))
	}
}

type recorder struct {
	mu   sync.Mutex
	runs []string
}

func (r *recorder) Execute(_ context.Context, c command.Command) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs = append(r.runs, c.Action)
	return "", nil
}

func TestIsolationRestoredWhenServerNeverConfirms(t *testing.T) {
	s := newServer(t)
	state := s.enroll(t)
	policy := filepath.Join(state, "policy.json")
	writeFileAtomic(policy, []byte(`{"allow":["isolate"]}`), 0o600)
	now := time.Now()
	clock := func() time.Time { return now }
	rec := &recorder{}
	a, err := New(Config{StateDir: state, Commands: true, PolicyFile: policy, IsolateTimeout: Duration(10 * time.Minute)},
		Options{Executor: rec, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := s.h.Send(a.DeviceID(), command.ActionIsolate, nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := a.PollCommands(context.Background()); err != nil {
		t.Fatal(err)
	}
	now = now.Add(5 * time.Minute)
	a.checkIsolation(context.Background())
	if strings.Join(rec.runs, ",") != "isolate" {
		t.Fatalf("restored too early: %v", rec.runs)
	}
	now = now.Add(6 * time.Minute)
	a.checkIsolation(context.Background())
	if strings.Join(rec.runs, ",") != "isolate,restore" {
		t.Fatalf("not restored after the timeout: %v", rec.runs)
	}
	// A confirmed isolation (the server was reached since) stays.
	rec.runs = nil
	s.h.Send(a.DeviceID(), command.ActionIsolate, nil, time.Hour) // the agent's clock ran 11 minutes ahead
	if err := a.PollCommands(context.Background()); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	a.contact()
	now = now.Add(20 * time.Minute)
	a.checkIsolation(context.Background())
	if strings.Join(rec.runs, ",") != "isolate" {
		t.Fatalf("confirmed isolation undone: %v", rec.runs)
	}
}

func TestInventorySentWhenChanged(t *testing.T) {
	s := newServer(t)
	state := s.enroll(t)
	now := time.Now()
	a, err := New(Config{StateDir: state, Class: "gateway", Disable: []string{"processes", "authlog", "network", "health"}},
		Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	withInventory := func() bool {
		t.Helper()
		a.collectAndQueue(context.Background(), a.periodic, false)
		rec, err := a.Spool().Peek()
		if err != nil {
			t.Fatal(err)
		}
		a.Spool().Ack()
		var r wire.Report
		if err := json.Unmarshal(rec, &r); err != nil {
			t.Fatal(err)
		}
		return r.Inventory != nil
	}
	if !withInventory() {
		t.Fatal("first report without inventory")
	}
	if withInventory() {
		t.Fatal("unchanged inventory sent again at once")
	}
	a.periodic[0].(*collect.System).Class = "camera"
	if !withInventory() {
		t.Fatal("changed inventory not sent")
	}
	now = now.Add(InventoryEvery)
	if !withInventory() {
		t.Fatal("inventory not sent again after an hour")
	}
}

// TestUncleanStopReportedAfterReboot runs three agents on one state
// directory, each on a new boot id: the first dies without stopping, so
// the second reports an unexpected reboot; the second stops cleanly, so
// the third reports a clean boot.
func TestUncleanStopReportedAfterReboot(t *testing.T) {
	s := newServer(t)
	state := s.enroll(t)
	root := t.TempDir()
	bootID := filepath.Join(root, "proc/sys/kernel/random/boot_id")
	if err := os.MkdirAll(filepath.Dir(bootID), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(boot string) (*Agent, map[string]wire.SecurityEvent) {
		t.Helper()
		if err := os.WriteFile(bootID, []byte(boot+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := New(Config{StateDir: state, Root: root, Disable: []string{"processes", "authlog", "network", "health", "packages", "system", "dos"}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		r := a.Collect(context.Background(), a.periodic)
		evs := map[string]wire.SecurityEvent{}
		for _, e := range r.Events {
			evs[e.Kind+"/"+e.Action] = e
		}
		return a, evs
	}
	a, evs := run("boot-1")
	if len(evs) != 0 {
		t.Fatalf("first run: %v", evs)
	}
	a.spool.Close() // the device loses power: the agent never stops
	a, evs = run("boot-2")
	if e, ok := evs["hardware/unexpected_reboot"]; !ok || e.Fields["host.boot.previous_id"] != "boot-1" {
		t.Fatalf("after a run that never stopped: want hardware/unexpected_reboot from boot-1, got %v", evs)
	}
	a.Close()
	a, evs = run("boot-3")
	defer a.Close()
	if _, ok := evs["hardware/unexpected_reboot"]; ok || evs["system/boot"].Fields["host.boot.clean"] != "true" {
		t.Fatalf("after a clean stop: want a clean system/boot only, got %v", evs)
	}
}
