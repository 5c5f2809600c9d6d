package enroll

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/ingest/httpin"
	"github.com/vigil-iot/vigil/pki"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/wire"
)

// sink keeps what the ingest handler publishes.
type sink struct {
	mu     sync.Mutex
	events []vigil.Event
}

func (s *sink) PublishEvents(_ context.Context, evs []vigil.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, evs...)
	return nil
}

func (s *sink) take() []vigil.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.events
	s.events = nil
	return out
}

// recorder is an executor that records what it was asked to run.
type recorder struct {
	mu   sync.Mutex
	runs []string
}

func (r *recorder) Execute(_ context.Context, c command.Command) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs = append(r.runs, c.Action)
	return "done " + c.Action, nil
}

type fixture struct {
	dir     string
	ca      *pki.CA
	h       *Handler
	revs    *Revocations
	srv     *httptest.Server
	sink    *sink
	results chan command.Result
	caFile  string
	reg     *prometheus.Registry
}

func newFixture(t *testing.T, hook bool) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), sink: &sink{}, results: make(chan command.Result, 10)}
	var err error
	f.ca, err = pki.EnsureCA(filepath.Join(f.dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	f.caFile = filepath.Join(f.dir, "pki", pki.CACertFile)
	serverCert, err := f.ca.EnsureServerCert(filepath.Join(f.dir, "pki"), nil)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := OpenTokenStore(filepath.Join(f.dir, TokensFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.revs, err = OpenRevocations(filepath.Join(f.dir, RevokedFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := EnsureCommandKey(filepath.Join(f.dir, CommandKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	in, err := httpin.NewHandler(httpin.Options{Publisher: f.sink})
	if err != nil {
		t.Fatal(err)
	}
	f.reg = prometheus.NewPedanticRegistry()
	f.h, err = New(Options{CA: f.ca, Tokens: toks, Revocations: f.revs, CommandKey: key, Commands: openSQLite(t), Report: in.Report(), Registerer: f.reg,
		OnResult: func(_ context.Context, r command.Result) { f.results <- r }})
	if err != nil {
		t.Fatal(err)
	}
	fallback := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "not the device API", http.StatusTeapot) })
	f.srv = httptest.NewUnstartedServer(f.h.Front(fallback))
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: f.ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven}
	if hook {
		f.srv.TLS.VerifyPeerCertificate = f.revs.VerifyPeerCertificate
	}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) token(t *testing.T, class string) string {
	t.Helper()
	plain, _, err := f.h.opts.Tokens.Create(class, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

func (f *fixture) enroll(t *testing.T, state string) *agent.Identity {
	t.Helper()
	id, err := agent.Enroll(context.Background(), agent.EnrollOptions{Server: f.srv.URL, Token: f.token(t, "camera"),
		StateDir: state, CAFile: f.caFile, Hostname: "cam-lobby"})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func agentConfig(state, format string) agent.Config {
	return agent.Config{StateDir: state, Format: format, Class: "camera",
		Disable: []string{"processes", "packages"}, BackfillInterval: agent.Duration(time.Millisecond)}
}

func TestEnrollReportRenewRevoke(t *testing.T) {
	f := newFixture(t, false)
	state := filepath.Join(t.TempDir(), "agent")
	id := f.enroll(t, state)
	if !strings.HasPrefix(id.DeviceID, "camera-cam-lobby-") {
		t.Fatalf("device id %q", id.DeviceID)
	}
	for _, name := range []string{agent.KeyFile, agent.CertFile, agent.CAFile, agent.CommandKeyFile} {
		fi, err := os.Stat(filepath.Join(state, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v mode %v, want 0600", name, err, fi.Mode())
		}
	}
	if len(id.CommandKey) == 0 {
		t.Fatal("no command key stored")
	}

	// Reports in JSON then XML, gzip-compressed, over mTLS.
	for _, format := range []string{"json", "xml"} {
		a, err := agent.New(agentConfig(state, format), agent.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Once(context.Background()); err != nil {
			t.Fatalf("%s report: %v", format, err)
		}
		a.Close()
		evs := f.sink.take()
		kinds := map[string]int{}
		for _, e := range evs {
			if e.DeviceID != id.DeviceID {
				t.Fatalf("event of device %q, want %q", e.DeviceID, id.DeviceID)
			}
			kinds[e.Kind]++
		}
		if kinds["health"] != 1 || kinds["inventory"] != 1 {
			t.Fatalf("%s: events by kind %v", format, kinds)
		}
	}

	// Renewal: a new key and certificate, same device.
	a, err := agent.New(agentConfig(state, "json"), agent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	old := id.Certificate().Leaf.SerialNumber
	id2, _ := agent.LoadIdentity(state)
	c := newTestClient(id2)
	if err := id2.Renew(context.Background(), c, f.srv.URL); err != nil {
		t.Fatal(err)
	}
	if id2.Certificate().Leaf.SerialNumber.Cmp(old) == 0 || id2.Certificate().Leaf.Subject.CommonName != id.DeviceID {
		t.Fatal("renewal did not replace the certificate")
	}
	a.Close()
	a, err = agent.New(agentConfig(state, "json"), agent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Once(context.Background()); err != nil {
		t.Fatalf("report with the renewed certificate: %v", err)
	}
	f.sink.take()

	// Revoked: refused, and the report stays spooled.
	if err := f.revs.RevokeDevice(id.DeviceID); err != nil {
		t.Fatal(err)
	}
	err = a.Once(context.Background())
	var se *agent.StatusError
	if !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
		t.Fatalf("revoked device: got %v, want 401", err)
	}
	if a.Spool().Len() != 1 || len(f.sink.take()) != 0 {
		t.Fatalf("spooled %d after refusal", a.Spool().Len())
	}
}

func newTestClient(id *agent.Identity) *httpcClient { return &httpcClient{TLS: id.TLSConfig()} }

func TestRevokedRefusedInHandshake(t *testing.T) {
	f := newFixture(t, true)
	state := filepath.Join(t.TempDir(), "agent")
	id := f.enroll(t, state)
	a, err := agent.New(agentConfig(state, "json"), agent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.revs.RevokeDevice(id.DeviceID)
	a.Close() // a new connection, so a new handshake
	a, err = agent.New(agentConfig(state, "json"), agent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	err = a.Once(context.Background())
	if err == nil || !strings.Contains(err.Error(), "tls") && !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("revoked device: got %v, want a TLS refusal", err)
	}
}

func TestTokensSingleUseAndExpiry(t *testing.T) {
	f := newFixture(t, false)
	tok := f.token(t, "gateway")
	enroll := func(token string) error {
		_, err := agent.Enroll(context.Background(), agent.EnrollOptions{Server: f.srv.URL, Token: token,
			StateDir: filepath.Join(t.TempDir(), "s"), CAFile: f.caFile})
		return err
	}
	if err := enroll(tok); err != nil {
		t.Fatal(err)
	}
	var se *agent.StatusError
	if err := enroll(tok); !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
		t.Fatalf("second use: %v", err)
	}
	if err := enroll("vge_bogus"); !errors.As(err, &se) || se.Status != http.StatusUnauthorized {
		t.Fatalf("unknown token: %v", err)
	}
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "vigil_enroll_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetValue())
			}
			got[strings.Join(ls, "/")] = m.GetCounter().GetValue()
		}
	}
	if got["enroll/ok"] != 1 || got["enroll/refused"] != 2 {
		t.Fatalf("vigil_enroll_requests_total: %v, want enroll/ok 1 and enroll/refused 2", got)
	}
	// Expired.
	clock := &stepClock{t: time.Now()}
	toks, _ := OpenTokenStore(filepath.Join(f.dir, TokensFile), clock)
	plain, _, _ := toks.Create("camera", time.Minute)
	clock.add(2 * time.Minute)
	if _, err := toks.Redeem(plain, "x"); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("expired token: %v", err)
	}
	list, _ := toks.List()
	if len(list) != 2 || list[0].UsedBy == "" || !list[1].Used.IsZero() {
		t.Fatalf("tokens %+v", list)
	}
	if _, _, err := toks.Create("Bad Class", time.Hour); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Fatalf("bad class: %v", err)
	}
}

func TestDeviceEndpointsNeedCertificate(t *testing.T) {
	f := newFixture(t, false)
	c := f.srv.Client() // trusts the server, no client certificate
	resp, err := c.Get(f.srv.URL + "/api/v1/agent/commands")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("commands without certificate: %d", resp.StatusCode)
	}
	// A report without a certificate goes to the next handler (bearer tokens).
	resp, err = c.Post(f.srv.URL+"/api/v1/agent/report", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot {
		t.Fatalf("report without certificate: %d, want the fallback's 418", resp.StatusCode)
	}
}

func TestCommandsEndToEnd(t *testing.T) {
	f := newFixture(t, false)
	state := filepath.Join(t.TempDir(), "agent")
	id := f.enroll(t, state)
	policy := filepath.Join(state, "policy.json")
	os.WriteFile(policy, []byte(`{"allow":["isolate","restore"]}`), 0o600)
	cfg := agentConfig(state, "json")
	cfg.Commands, cfg.PolicyFile, cfg.PollWait = true, policy, agent.Duration(5*time.Second)
	rec := &recorder{}
	a, err := agent.New(cfg, agent.Options{Executor: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()

	expect := func(status, reason string) command.Result {
		t.Helper()
		select {
		case r := <-f.results:
			if r.Status != status || r.Reason != reason || r.DeviceID != id.DeviceID {
				t.Fatalf("result %+v, want %s %s", r, status, reason)
			}
			return r
		case <-time.After(10 * time.Second):
			t.Fatalf("no result, want %s %s", status, reason)
		}
		return command.Result{}
	}

	// Allowed: runs, and the result is stored on the server.
	c, err := f.h.Send(id.DeviceID, command.ActionIsolate, nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.PollCommands(ctx); err != nil {
		t.Fatal(err)
	}
	expect(command.StatusSucceeded, "")
	if _, res, done := f.h.Result(c.ID); !done || res.Output != "done isolate" {
		t.Fatalf("stored result %+v", res)
	}

	// Disallowed by the local policy: refused, reported.
	if _, err := f.h.Send(id.DeviceID, command.ActionReboot, nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	a.PollCommands(ctx)
	expect(command.StatusRefused, command.ReasonNotAllowed)

	// Replayed: the same signed command again.
	c2, _ := f.h.Send(id.DeviceID, command.ActionRestore, nil, time.Minute)
	q, err := f.h.opts.Commands.GetCommand(ctx, c2.ID)
	if err != nil {
		t.Fatal(err)
	}
	a.PollCommands(ctx)
	expect(command.StatusSucceeded, "")
	q.ID, q.Queued = "again-"+c2.ID, time.Now()
	if _, err := f.h.opts.Commands.EnqueueCommand(ctx, q, 0, 0); err != nil {
		t.Fatal(err)
	}
	a.PollCommands(ctx)
	expect(command.StatusRefused, command.ReasonReplayed)

	// Wrong device: a command signed for another device.
	other, _ := command.Sign(f.h.opts.CommandKey, command.Command{ID: "x1", DeviceID: "camera-other", Action: command.ActionIsolate,
		Issued: time.Now(), Expires: time.Now().Add(time.Minute)})
	ob, _ := json.Marshal(other)
	if _, err := f.h.opts.Commands.EnqueueCommand(ctx, store.QueuedCommand{ID: "x1", DeviceID: id.DeviceID, Queued: time.Now(), Expires: time.Now().Add(time.Minute), Signed: ob}, 0, 0); err != nil {
		t.Fatal(err)
	}
	a.PollCommands(ctx)
	expect(command.StatusRefused, command.ReasonWrongDevice)

	if strings.Join(rec.runs, ",") != "isolate,restore" {
		t.Fatalf("executed %v", rec.runs)
	}

	// A long poll returns as soon as a command is queued.
	done := make(chan error, 1)
	go func() { done <- a.PollCommands(ctx) }()
	time.Sleep(100 * time.Millisecond)
	f.h.Send(id.DeviceID, command.ActionIsolate, nil, time.Minute)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	expect(command.StatusSucceeded, "")
}

func TestStoreAndForwardAcrossOutage(t *testing.T) {
	f := newFixture(t, false)
	state := filepath.Join(t.TempDir(), "agent")
	f.enroll(t, state)
	cfg := agentConfig(state, "json")
	a, err := agent.New(cfg, agent.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	f.srv.Close() // the server goes away
	ctx := context.Background()
	var ids []string
	for i := range 5 {
		r := a.Collect(ctx, nil)
		r.Events = append(r.Events, wire.SecurityEvent{ID: "ev-" + string(rune('a'+i)), Time: time.Now().UTC(), Kind: "auth",
			Category: "authentication", Action: "login", Outcome: "failure"})
		ids = append(ids, r.Events[0].ID)
		if err := a.Enqueue(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.SendPending(ctx); err == nil {
		t.Fatal("send succeeded with the server down")
	}
	if a.Spool().Len() != 5 {
		t.Fatalf("spooled %d, want 5", a.Spool().Len())
	}
	// The server comes back on the same address.
	f2 := restart(t, f)
	n, err := a.SendPending(ctx)
	if err != nil || n != 5 {
		t.Fatalf("backfill sent %d: %v", n, err)
	}
	var got []string
	for _, e := range f2.sink.take() {
		if id, ok := e.Fields["agent.event_id"].(string); ok {
			got = append(got, id)
		}
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("delivered %v, want %v in order", got, ids)
	}
}

// restart starts the same handler on the address of the closed server.
func restart(t *testing.T, f *fixture) *fixture {
	t.Helper()
	addr := f.srv.Listener.Addr().String()
	l, err := netListen(addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(f.h.Front(http.NotFoundHandler()))
	srv.Listener.Close()
	srv.Listener = l
	srv.TLS = f.srv.TLS
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.srv = srv
	return f
}

func TestOpenDirAndCommandKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	a, err := OpenDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !a.CommandKey.Equal(b.CommandKey) {
		t.Fatal("the command key changed on reopening")
	}
	if fi, _ := os.Stat(filepath.Join(dir, CommandKeyFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("command key mode %v", fi.Mode())
	}
	os.Chmod(filepath.Join(dir, CommandKeyFile), 0o644)
	if _, err := OpenDir(dir, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key: %v", err)
	}
	// A token created by one store (vigil ctl) is redeemable through another (the server).
	plain, _, err := a.Tokens.Create("camera", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Tokens.Redeem(plain, "camera-1"); err != nil {
		t.Fatal(err)
	}
}

func TestTokenLogSharedAndCompacted(t *testing.T) {
	path := filepath.Join(t.TempDir(), TokensFile)
	a, _ := OpenTokenStore(path, nil)
	b, _ := OpenTokenStore(path, nil) // another process, e.g. vigil ctl
	var ids []string
	for range 600 {
		_, tok, err := a.Create("sensor", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tok.ID)
	}
	keep, _, _ := b.Create("camera", time.Hour)
	for _, id := range ids {
		if err := b.Revoke(id); err != nil {
			t.Fatal(err)
		}
	}
	// 1201 changes; compacted once past 1000 lines to the 201 live tokens,
	// then 200 more revocations.
	data, _ := os.ReadFile(path)
	if n := strings.Count(string(data), "\n"); n != 401 {
		t.Fatalf("log holds %d lines, want 401 after compaction", n)
	}
	if _, err := a.Redeem(keep, "camera-1"); err != nil {
		t.Fatalf("the other store's token after compaction: %v", err)
	}
	if _, err := b.Redeem(keep, "camera-2"); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("used twice across stores: %v", err)
	}
	// A torn last line (crash during a write) is ignored.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"op":"create","rec`)
	f.Close()
	c, err := OpenTokenStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.List()
	if err != nil || len(list) != 1 || list[0].UsedBy != "camera-1" {
		t.Fatalf("%v %+v", err, list)
	}
}

func TestAdminRoutes(t *testing.T) {
	f := newFixture(t, false)
	mux := http.NewServeMux()
	for _, rt := range f.h.AdminRoutes() {
		if rt.Public || rt.Perm == "" {
			t.Fatalf("admin route %s %s is not protected", rt.Method, rt.Pattern)
		}
		mux.Handle(rt.Method+" "+rt.Pattern, rt.Handler)
	}
	call := func(method, path, body string, want int) map[string]any {
		t.Helper()
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
		if rec.Code != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, rec.Code, rec.Body, want)
		}
		var out map[string]any
		json.Unmarshal(rec.Body.Bytes(), &out)
		return out
	}
	tok := call("POST", PathTokens, `{"class":"camera","ttl":"30m"}`, 201)
	if !strings.HasPrefix(tok["token"].(string), TokenPrefix) || tok["class"] != "camera" {
		t.Fatalf("token answer %v", tok)
	}
	call("POST", PathTokens, `{"class":"camera","tll":"30m"}`, 400)
	call("POST", PathTokens, `{"class":"camera","ttl":"90d"}`, 400)
	if list := call("GET", PathTokens, "", 200)["tokens"].([]any); len(list) != 1 {
		t.Fatalf("tokens %v", list)
	}
	cmd := call("POST", "/api/v1/devices/camera-1/commands", `{"action":"isolate","ttl":"2m"}`, 201)["command"].(map[string]any)
	call("POST", "/api/v1/devices/camera-1/commands", `{"action":"format_disk"}`, 400)
	got := call("GET", "/api/v1/commands/"+cmd["id"].(string), "", 200)
	if got["result"] != nil || got["command"].(map[string]any)["action"] != "isolate" {
		t.Fatalf("command answer %v", got)
	}
	call("GET", "/api/v1/commands/nope", "", 404)
	call("POST", "/api/v1/devices/camera-1/revoke", "", 204)
	call("DELETE", "/api/v1/enroll-tokens/"+tok["id"].(string), "", 204)
	call("DELETE", "/api/v1/enroll-tokens/"+tok["id"].(string), "", 404)
}
