package mqtt

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/agent"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/enroll"
	"github.com/vigil-iot/vigil/ingest/mqtt/mqtttest"
	"github.com/vigil-iot/vigil/pki"
)

// executed records the commands the agent ran.
type executed struct {
	mu   sync.Mutex
	runs []string
}

func (e *executed) Execute(_ context.Context, c command.Command) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.runs = append(e.runs, c.Action)
	return "done", nil
}

// TestRealAgentOverMutualTLS enrolls a real agent, runs it with
// transport mqtt against a Mosquitto requiring client certificates, and
// checks that its reports reach the publisher under its device id and that
// a signed command sent with SendCommand runs and its result comes back.
func TestRealAgentOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, err := pki.EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.EnsureServerCert(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	files, err := enroll.OpenDir(filepath.Join(dir, "data"), nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := enroll.New(enroll.Options{CA: ca, Tokens: files.Tokens, Revocations: files.Revocations, CommandKey: files.CommandKey, Commands: commandStore(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h.Front(http.NotFoundHandler()))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	defer srv.Close()
	tok, _, err := files.Tokens.Create("camera", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := agent.Enroll(ctx, agent.EnrollOptions{Server: srv.URL, Token: tok, StateDir: state, CAFile: filepath.Join(dir, pki.CACertFile)}); err != nil {
		t.Fatal(err)
	}

	addr, _ := mqtttest.StartTLSBroker(t, dir, "allow_anonymous true\n")
	certPEM, keyPEM := mqtttest.ClientCert(t, ca, "vigil-ingest")
	certFile, keyFile := filepath.Join(dir, "ingest.crt"), filepath.Join(dir, "ingest.key")
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)

	policy := filepath.Join(state, "policy.json")
	os.WriteFile(policy, []byte(`{"allow":["restore"]}`), 0o600)
	exec := &executed{}
	a, err := agent.New(agent.Config{StateDir: state, Transport: "mqtt", MQTTBroker: addr, Commands: true, PolicyFile: policy,
		Disable: []string{"processes", "packages"}}, agent.Options{Executor: exec, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	dev := a.DeviceID()

	rec := newRecorder(dev)
	results := make(chan command.Result, 10)
	s, err := New(Options{
		URL: "ssl://" + addr, ClientID: "vigil-ingest", CAFile: filepath.Join(dir, pki.CACertFile),
		CertFile: certFile, KeyFile: keyFile, Publisher: rec,
		OnResult: func(_ context.Context, r command.Result) { results <- r },
	})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	wg.Add(2)
	go func() { defer wg.Done(); s.Run(sctx) }()
	select {
	case <-s.Subscribed():
	case <-ctx.Done():
		t.Fatal("source did not subscribe")
	}
	go func() { defer wg.Done(); a.Run(sctx) }()

	for _, e := range rec.waitEvents(t) {
		if e.DeviceID != dev {
			t.Errorf("event device %q, want %q", e.DeviceID, dev)
		}
	}

	now := time.Now()
	signed, err := command.Sign(files.CommandKey, command.Command{ID: "c-restore", DeviceID: dev, Action: command.ActionRestore, Issued: now, Expires: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(signed)
	// The agent's subscription may not be in place yet (its session is
	// clean): send until answered. Results come in order, so the first one
	// is the first delivery's; a later delivery is refused as a replay.
	var res command.Result
	for res.CommandID != "c-restore" {
		if err := s.SendCommand(dev, b); err != nil {
			t.Fatal(err)
		}
		select {
		case res = <-results:
		case <-time.After(300 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("no command result came back")
		}
	}
	if res.Status != command.StatusSucceeded {
		t.Errorf("result %+v, want status %s", res, command.StatusSucceeded)
	}
	if res.DeviceID != dev {
		t.Errorf("result device %q, want %q", res.DeviceID, dev)
	}
	exec.mu.Lock()
	defer exec.mu.Unlock()
	if len(exec.runs) != 1 || exec.runs[0] != command.ActionRestore {
		t.Errorf("agent executed %v, want [restore]", exec.runs)
	}
}
