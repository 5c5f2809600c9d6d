package agent_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	vagent "github.com/vigil-iot/vigil/agent"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/enroll"
	"github.com/vigil-iot/vigil/pki"
	"github.com/vigil-iot/vigil/respond/connector/agent"
)

// sender adapts enroll.Handler to agent.CommandSender, as cmd/vigil does.
type sender struct{ h *enroll.Handler }

func (s sender) Send(ctx context.Context, dev, action string, p map[string]string) (string, error) {
	c, err := s.h.SendAs("action:"+agent.ActionID(ctx), dev, action, p, 0)
	return c.ID, err
}

// executor records what the real agent was asked to run.
type executor struct {
	mu   sync.Mutex
	runs []string
}

func (e *executor) Execute(_ context.Context, c command.Command) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.runs = append(e.runs, c.Action)
	return "done " + c.Action, nil
}

// channel starts the real server side of the command channel
// (enroll.Handler over TLS) and a real enrolled agent that long-polls,
// verifies signatures and applies its local policy (isolate and restore
// allowed). It returns the connector on it and the agent's device id.
func channel(t *testing.T) (*agent.Connector, string, *executor) {
	dir := t.TempDir()
	ca, err := pki.EnsureCA(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	serverCert, err := ca.EnsureServerCert(filepath.Join(dir, "pki"), nil)
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := enroll.OpenTokenStore(filepath.Join(dir, enroll.TokensFile), nil)
	revs, _ := enroll.OpenRevocations(filepath.Join(dir, enroll.RevokedFile), nil)
	key, err := enroll.EnsureCommandKey(filepath.Join(dir, enroll.CommandKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	var conn *agent.Connector
	h, err := enroll.New(enroll.Options{CA: ca, Tokens: toks, Revocations: revs, CommandKey: key, Commands: commandStore(t),
		OnResult: func(_ context.Context, r command.Result) {
			conn.HandleResult(agent.Ack{CommandID: r.CommandID, Status: r.Status, Reason: r.Reason, Output: r.Output, Error: r.Error, Finished: r.Finished})
		}})
	if err != nil {
		t.Fatal(err)
	}
	conn = agent.New(sender{h})
	srv := httptest.NewUnstartedServer(h.Front(http.NotFoundHandler()))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	plain, _, err := toks.Create("camera", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "agent")
	id, err := vagent.Enroll(context.Background(), vagent.EnrollOptions{Server: srv.URL, Token: plain, StateDir: state,
		CAFile: filepath.Join(dir, "pki", pki.CACertFile), Hostname: "cam-lobby"})
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(state, "policy.json")
	os.WriteFile(policy, []byte(`{"allow":["isolate","restore"]}`), 0o600)
	exec := &executor{}
	ag, err := vagent.New(vagent.Config{StateDir: state, Format: "json", Class: "camera", Disable: []string{"processes", "packages"},
		Commands: true, PolicyFile: policy, PollWait: vagent.Duration(5 * time.Second)}, vagent.Options{Executor: exec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ag.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { // the agent's poll loop
		for ctx.Err() == nil {
			ag.PollCommands(ctx)
		}
	}()
	return conn, id.DeviceID, exec
}

// TestEndToEnd sends commands through the real channel to the real agent.
func TestEndToEnd(t *testing.T) {
	conn, device, exec := channel(t)
	ctx := context.Background()

	run := func(typ string) (string, error) {
		t.Helper()
		actx, acancel := context.WithTimeout(ctx, 20*time.Second)
		defer acancel()
		res, err := conn.Execute(actx, vigil.Action{ID: vigil.NewID(), Type: typ, DeviceID: device})
		if err == nil || !errors.Is(err, context.DeadlineExceeded) {
			if res.Acknowledged.IsZero() {
				t.Fatalf("%s: no acknowledgement time (%v)", typ, err)
			}
		}
		return res.Output, err
	}
	if out, err := run("isolate"); err != nil || out != "done isolate" {
		t.Fatalf("isolate: %q %v", out, err)
	}
	if out, err := run("restore"); err != nil || out != "done restore" {
		t.Fatalf("restore: %q %v", out, err)
	}
	// Refused by the device's own policy: acknowledged, failed.
	if out, err := run("reboot"); err == nil || out != "refused: not_allowed" {
		t.Fatalf("reboot: %q %v", out, err)
	}
	if strings.Join(exec.runs, ",") != "isolate,restore" {
		t.Fatalf("the agent ran %v", exec.runs)
	}
}

// fast is a sender whose device answers before Send returns to the caller.
type fast struct {
	c      *agent.Connector
	status string
	got    []string
}

func (f *fast) Send(_ context.Context, dev, action string, p map[string]string) (string, error) {
	id := vigil.NewID()
	f.got = append(f.got, dev+" "+action+" "+p["addr"]+" "+p["timeout_s"])
	// The result races Execute's registration of its waiter: HandleResult
	// must find it either way.
	go f.c.HandleResult(agent.Ack{CommandID: id, Status: f.status, Output: "ok", Finished: time.Now()})
	return id, nil
}

func TestFastResultAndBlock(t *testing.T) {
	f := &fast{status: "succeeded"}
	f.c = agent.New(f)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := vigil.Action{ID: "a1", Type: "block", DeviceID: "cam-1", Params: map[string]string{"gateway": "gw-1", "addr": "203.0.113.7", "timeout": "30m"}}
	if _, err := f.c.Execute(ctx, a); err != nil {
		t.Fatal(err)
	}
	if f.got[0] != "gw-1 block 203.0.113.7 1800" {
		t.Fatalf("sent %q", f.got)
	}
	f.status = "failed"
	if res, err := f.c.Execute(ctx, vigil.Action{ID: "a2", Type: "unblock", DeviceID: "gw-1", Params: map[string]string{"addr": "10.0.0.0/8"}}); err == nil || res.Acknowledged.IsZero() {
		t.Fatalf("failed result: %+v %v", res, err)
	}
	f2 := func(a vigil.Action, want string) {
		t.Helper()
		_, _, _, err := agent.Command(a)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Command(%+v) = %v, want %q", a, err, want)
		}
	}
	f2(vigil.Action{Type: "block", DeviceID: "gw", Params: map[string]string{"addr": "nope"}}, "not an IP address")
	f2(vigil.Action{Type: "block", DeviceID: "gw", Params: map[string]string{"addr": "1.2.3.4", "timeout": "48h"}}, "not a duration in")
	f2(vigil.Action{Type: "quarantine_client", DeviceID: "gw"}, "cannot carry out")
	f2(vigil.Action{Type: "isolate"}, "no device")
}

// naming is a sender that records the action its ctx names.
type naming struct {
	c   *agent.Connector
	got string
}

func (n *naming) Send(ctx context.Context, dev, action string, p map[string]string) (string, error) {
	n.got = agent.ActionID(ctx)
	go n.c.HandleResult(agent.Ack{CommandID: "cmd-1", Status: "succeeded", Output: "ok"}) // waits for Send's lock
	return "cmd-1", nil
}

// TestSendNamesTheAction: the ctx of Send names the action carried out,
// so that the sender keeps it with the command (the device's command
// history links them); a ctx of nothing names none.
func TestSendNamesTheAction(t *testing.T) {
	n := &naming{}
	n.c = agent.New(n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.c.Execute(ctx, vigil.Action{ID: "act-42", Type: "isolate", DeviceID: "cam-1"}); err != nil {
		t.Fatal(err)
	}
	if n.got != "act-42" {
		t.Fatalf("ActionID in Send = %q, want act-42", n.got)
	}
	if id := agent.ActionID(context.Background()); id != "" {
		t.Fatalf("ActionID of a bare ctx = %q", id)
	}
}
