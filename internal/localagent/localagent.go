// Package localagent runs a real Vigil agent in the process of a node, for
// the demo and the tests: enrolled with a one-time token, polling the
// signed command channel with its client certificate, but with an executor
// that records commands and touches nothing on the host.
package localagent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	vagent "github.com/vigil-iot/vigil/agent"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/enroll"
)

// Server is the node an agent enrolls with (*node.Node is one).
type Server interface {
	// URL is the base URL of the node's API.
	URL() string
	// CAPool holds the CA that signed the node's server certificate.
	CAPool() *x509.CertPool
	// CreateEnrollToken makes a one-time enrollment token.
	CreateEnrollToken(class string, ttl time.Duration) (string, enroll.Token, error)
}

// RecordingExecutor is an agent executor that records the commands it is
// given and touches nothing on the host: the demo runs on users' machines
// and tests run unprivileged, so no firewall rule is ever written.
type RecordingExecutor struct {
	mu     sync.Mutex
	runs   []command.Command
	notify func(command.Command)
}

func (e *RecordingExecutor) Execute(_ context.Context, c command.Command) (string, error) {
	e.mu.Lock()
	e.runs = append(e.runs, c)
	notify := e.notify
	e.mu.Unlock()
	if notify != nil {
		notify(c)
	}
	return "recorded " + c.Action + " (dry executor: host untouched)", nil
}

// OnExecute makes fn called with each command after it is recorded.
func (e *RecordingExecutor) OnExecute(fn func(command.Command)) {
	e.mu.Lock()
	e.notify = fn
	e.mu.Unlock()
}

// Actions returns the actions run so far, in order.
func (e *RecordingExecutor) Actions() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, len(e.runs))
	for i, c := range e.runs {
		out[i] = c.Action
	}
	return out
}

// Agent is a real Vigil agent run in this process: enrolled with a
// one-time token over HTTPS, polling the signed command channel with its
// client certificate, verifying signatures and its local policy, and
// answering results, but with a recordingExecutor.
type Agent struct {
	DeviceID string
	Exec     *RecordingExecutor
	agent    *vagent.Agent
	cancel   context.CancelFunc
	done     chan struct{}

	// StateDir holds the agent's key and certificate (vagent.KeyFile,
	// vagent.CertFile).
	StateDir string
	// TLS is the client TLS configuration of the agent's certificate,
	// for what speaks for the device (the demo's reports of it).
	TLS *tls.Config
}

// Start enrolls a local agent of class on a (whose CA
// certificate is the file caFile) with host as its hostname hint, its
// state under dir, allowing the commands in allow, and
// starts its poll loop.
func Start(ctx context.Context, a Server, caFile, class, host, dir string, allow []string, log *slog.Logger) (*Agent, error) {
	token, _, err := a.CreateEnrollToken(class, 10*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("cannot create an enrollment token: %w", err)
	}
	state := filepath.Join(dir, "agent-"+host)
	id, err := vagent.Enroll(ctx, vagent.EnrollOptions{Server: a.URL(), Token: token, StateDir: state,
		CAFile: caFile, Hostname: host})
	if err != nil {
		return nil, fmt.Errorf("cannot enroll the agent: %w", err)
	}
	policy := filepath.Join(state, "policy.json")
	pol := `{"allow":[`
	for i, s := range allow {
		if i > 0 {
			pol += ","
		}
		pol += fmt.Sprintf("%q", s)
	}
	if err := os.WriteFile(policy, []byte(pol+`]}`), 0o600); err != nil {
		return nil, fmt.Errorf("cannot write the agent's policy: %w", err)
	}
	exec := &RecordingExecutor{}
	ag, err := vagent.New(vagent.Config{StateDir: state, Format: "json", Class: class,
		Disable:  []string{"system", "packages", "health", "network", "processes", "authlog", "fim", "metrics"},
		Commands: true, PolicyFile: policy, PollWait: vagent.Duration(5 * time.Second)},
		vagent.Options{Executor: exec, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("cannot start the agent: %w", err)
	}
	pctx, cancel := context.WithCancel(context.Background())
	l := &Agent{DeviceID: id.DeviceID, StateDir: state, TLS: id.TLSConfig(), Exec: exec, agent: ag, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for pctx.Err() == nil {
			if err := ag.PollCommands(pctx); err != nil && pctx.Err() == nil {
				select { // the server is away: do not spin
				case <-pctx.Done():
				case <-time.After(500 * time.Millisecond):
				}
			}
		}
	}()
	return l, nil
}

// EnrollClient enrolls an identity of class (a demo sensor) on a (whose CA
// certificate is the file caFile) with a
// one-time token, its key and certificate under dir, and returns an API
// client presenting its certificate and its device id.
func EnrollClient(ctx context.Context, a Server, caFile, class, host, dir string) (*client.Client, string, error) {
	token, _, err := a.CreateEnrollToken(class, 10*time.Minute)
	if err != nil {
		return nil, "", fmt.Errorf("cannot create an enrollment token: %w", err)
	}
	state := filepath.Join(dir, class+"-"+host)
	id, err := vagent.Enroll(ctx, vagent.EnrollOptions{Server: a.URL(), Token: token, StateDir: state,
		CAFile: caFile, Hostname: host})
	if err != nil {
		return nil, "", fmt.Errorf("cannot enroll the %s: %w", class, err)
	}
	c, err := EnrolledClient(a, state)
	return c, id.DeviceID, err
}

// EnrolledClient returns an API client of a's server that presents the
// client certificate enrolled into stateDir: what it posts is sent by that
// device (or sensor) itself, as a real agent's reports are.
func EnrolledClient(a Server, stateDir string) (*client.Client, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(stateDir, vagent.CertFile), filepath.Join(stateDir, vagent.KeyFile))
	if err != nil {
		return nil, fmt.Errorf("cannot load the enrolled certificate: %w", err)
	}
	tc := client.TLSConfig(a.CAPool())
	tc.Certificates = []tls.Certificate{cert}
	return client.New(a.URL(), "", tc)
}

// Stop ends the poll loop and closes the agent.
func (l *Agent) Stop() {
	l.cancel()
	<-l.done
	l.agent.Close()
}
