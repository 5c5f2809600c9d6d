package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-iot/vigil/agent"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/bus/natsbus/natstest"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/enroll"
	"github.com/vigil-iot/vigil/pki"
)

// testSecretsKey writes a new operator secrets key file (mode 0600) and
// returns its path.
func testSecretsKey(t *testing.T) string {
	t.Helper()
	var b [32]byte
	rand.Read(b[:])
	path := filepath.Join(t.TempDir(), "secrets.key")
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(b[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pgCluster gives the nodes of one test a PostgreSQL schema (dropped
// after it) and a NATS of their own namespace; skips without
// VIGIL_TEST_POSTGRES_URL.
type pgCluster struct {
	t       *testing.T
	pgURL   string
	natsURL string
	prefix  string
	schema  string
	secrets string
}

func newPGCluster(t *testing.T, name string) *pgCluster {
	pgURL := os.Getenv("VIGIL_TEST_POSTGRES_URL")
	if pgURL == "" {
		t.Skip("VIGIL_TEST_POSTGRES_URL is not set: no PostgreSQL to run on")
	}
	natsURL := natstest.URL(t)
	var rnd [4]byte
	rand.Read(rnd[:])
	c := &pgCluster{t: t, pgURL: pgURL, natsURL: natsURL, prefix: natstest.UniquePrefix(t, natsURL),
		schema: "t_" + name + "_" + hex.EncodeToString(rnd[:]), secrets: testSecretsKey(t)}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pgURL)
		if err != nil {
			t.Log(err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{c.schema}.Sanitize()+" CASCADE"); err != nil {
			t.Log(err)
		}
	})
	return c
}

// config is a node's config on the cluster, in a data dir of its own.
func (c *pgCluster) Config() Config {
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = c.t.TempDir(), "127.0.0.1:0", "warn"
	cfg.SigmaDirs = []string{c.t.TempDir()}
	cfg.NATSURL, cfg.BusPrefix = c.natsURL, c.prefix
	cfg.Store = StoreConfig{Driver: "postgres", URL: c.pgURL, Schema: c.schema}
	cfg.SecretsKeyFile = c.secrets
	return cfg
}

type execRecorder struct {
	mu   sync.Mutex
	runs []string
}

func (r *execRecorder) Execute(_ context.Context, c command.Command) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs = append(r.runs, c.ID)
	return "done " + c.Action, nil
}

// TestServeCommandQueuedOnOneNodeReachesAgentOnAnother runs two vigil
// serve nodes on one PostgreSQL: an agent enrolled through node B
// long-polls B; an isolate queued through node A's API reaches it in that
// same poll (B's poll is woken by PostgreSQL NOTIFY, not by its timeout,
// which is longer than the test waits), runs once although both nodes
// are polled, and its result, posted to B, is read through A's API.
func TestServeCommandQueuedOnOneNodeReachesAgentOnAnother(t *testing.T) {
	cl := newPGCluster(t, "cmds")
	a := runTestApp(t, cl.Config())
	b := runTestApp(t, cl.Config())

	admin, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.ca.Pool()))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateEnrollToken(t.Context(), "camera", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "agent")
	caFile := filepath.Join(b.cfg.DataDir, "pki", pki.CACertFile)
	id, err := agent.Enroll(t.Context(), agent.EnrollOptions{Server: b.URL(), Token: tok.Token, StateDir: state, CAFile: caFile, Hostname: "cam-lobby"})
	if err != nil {
		t.Fatalf("enroll through B: %v", err)
	}
	policy := filepath.Join(state, "policy.json")
	os.WriteFile(policy, []byte(`{"allow":["isolate"]}`), 0o600)
	agentOn := func(server string, wait time.Duration, rec *execRecorder) *agent.Agent {
		cfg := agent.Config{Server: server, StateDir: state, Format: "json", Class: "camera", Commands: true, PolicyFile: policy,
			PollWait: agent.Duration(wait), Disable: []string{"processes", "packages"}, BackfillInterval: agent.Duration(time.Millisecond)}
		ag, err := agent.New(cfg, agent.Options{Executor: rec})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ag.Close() })
		return ag
	}
	rec := &execRecorder{}
	// The poll on B waits up to the server's bound (60s): the command
	// must come in this poll, well before.
	onB := agentOn(b.URL(), time.Minute, rec)
	polled := make(chan error, 1)
	go func() { polled <- onB.PollCommands(t.Context()) }()

	// Queue through A's API, after B's poll has had time to start: were it
	// not yet waiting, it takes the command at once, which is fine too.
	time.Sleep(500 * time.Millisecond)
	body, _ := json.Marshal(enroll.CommandRequest{Action: command.ActionIsolate, TTL: "5m"})
	var queued enroll.CommandAnswer
	apiCall(t, a, "POST", "/api/v1/devices/"+id.DeviceID+"/commands", body, http.StatusCreated, &queued)

	select {
	case err := <-polled:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(50 * time.Second):
		t.Fatal("B's long poll did not return in 50s: the command queued on A did not wake it")
	}
	rec.mu.Lock()
	runs := strings.Join(rec.runs, ",")
	rec.mu.Unlock()
	if runs != queued.Command.ID {
		t.Fatalf("the agent ran %q in B's poll, want the command queued on A (%s)", runs, queued.Command.ID)
	}
	// Polled on A and B again, it does not come back.
	for _, n := range []*Node{a, b} {
		if err := agentOn(n.URL(), 10*time.Millisecond, rec).PollCommands(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	rec.mu.Lock()
	if len(rec.runs) != 1 {
		t.Fatalf("ran %v: a command ran twice", rec.runs)
	}
	rec.mu.Unlock()
	// The result the agent posted to B is read through A.
	var got enroll.CommandAnswer
	apiCall(t, a, "GET", "/api/v1/commands/"+queued.Command.ID, nil, http.StatusOK, &got)
	if got.Result == nil || got.Result.Status != command.StatusSucceeded || got.Result.Output != "done isolate" {
		t.Fatalf("result read through A: %+v", got.Result)
	}
}

// apiCall calls n's API as its bootstrap admin, or the first node's
// admin for a node started second (they share the token).
func apiCall(t *testing.T, n *Node, method, path string, body []byte, want int, out any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, n.URL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+n.AdminToken())
	req.Header.Set("Content-Type", "application/json")
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: client.TLSConfig(n.ca.Pool())}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
}

// TestServeKeysSharedOnPostgres checks the keys nodes share through the
// store: two nodes have the same CA, command, update and audit keys, none
// of them in clear in the database; a node with another secrets key, or
// none, refuses to start and says why.
func TestServeKeysSharedOnPostgres(t *testing.T) {
	cl := newPGCluster(t, "keys")
	a := runTestApp(t, cl.Config())
	b := runTestApp(t, cl.Config())
	if !a.ca.Cert.Equal(b.ca.Cert) || !a.enrollFiles.CommandKey.Equal(b.enrollFiles.CommandKey) || !a.updateKey.Equal(b.updateKey) || !bytes.Equal(a.auditKey, b.auditKey) {
		t.Fatal("the two nodes have different keys")
	}
	for _, f := range []string{pki.CAKeyFile, "audit.key", enroll.UpdateKeyFile} {
		if _, err := os.Stat(filepath.Join(b.cfg.DataDir, "pki", f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is in the data dir of a node sharing its keys: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(b.cfg.DataDir, "pki", pki.CACertFile)); err != nil {
		t.Errorf("no ca.crt for the clients of node B: %v", err)
	}
	// The database holds them sealed: no key material in clear.
	conn, err := pgx.Connect(t.Context(), cl.pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	rows, err := conn.Query(t.Context(), "SELECT name, sealed FROM "+pgx.Identifier{cl.schema, "secrets"}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var name string
		var sealed []byte
		if err := rows.Scan(&name, &sealed); err != nil {
			t.Fatal(err)
		}
		n++
		if bytes.Contains(sealed, []byte("PRIVATE KEY")) || bytes.Contains(sealed, a.auditKey) {
			t.Errorf("secret %s is stored in clear", name)
		}
	}
	if n != 4 {
		t.Fatalf("%d secrets stored, want 4", n)
	}

	wrong := cl.Config()
	wrong.SecretsKeyFile = testSecretsKey(t)
	if _, err := Open(t.Context(), wrong, newLogger(io.Discard, "warn")); err == nil || !strings.Contains(err.Error(), "secrets key") || !errors.Is(err, pki.ErrWrongSecretsKey) {
		t.Fatalf("a node with another secrets key: %v", err)
	}
	none := cl.Config()
	none.SecretsKeyFile = ""
	t.Setenv(SecretsKeyEnv, "")
	if _, err := Open(t.Context(), none, newLogger(io.Discard, "warn")); err == nil || !strings.Contains(err.Error(), "secrets_key_file") {
		t.Fatalf("a postgres node without a secrets key: %v", err)
	}
	// Through the environment, the key works.
	t.Setenv(SecretsKeyEnv, cl.secrets)
	c := runTestApp(t, none)
	if !c.ca.Cert.Equal(a.ca.Cert) {
		t.Fatal("a node given the key by $VIGIL_SECRETS_KEY_FILE has another CA")
	}
}

// TestServeSharesTheDataDirKeysOnUpgrade starts the first node of a
// postgres cluster on a data dir that already has keys (a node that ran
// before keys were shared): its CA, command, update and audit keys become
// the cluster's, so the devices it enrolled keep working; a second node
// loads them.
func TestServeSharesTheDataDirKeysOnUpgrade(t *testing.T) {
	cl := newPGCluster(t, "upgrade")
	cfg := cl.Config()
	pkiDir := filepath.Join(cfg.DataDir, "pki")
	ca, err := pki.EnsureCA(pkiDir)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(cfg.DataDir, "enroll"), 0o700)
	cmdKey, err := enroll.EnsureCommandKey(filepath.Join(cfg.DataDir, "enroll", enroll.CommandKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	updKey, err := enroll.EnsureUpdateKey(filepath.Join(pkiDir, enroll.UpdateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	auditKey, err := audit.EnsureKey(filepath.Join(pkiDir, audit.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	a := runTestApp(t, cfg)
	b := runTestApp(t, cl.Config())
	for _, n := range []*Node{a, b} {
		if !n.ca.Cert.Equal(ca.Cert) || !n.enrollFiles.CommandKey.Equal(cmdKey) || !n.updateKey.Equal(updKey) || !bytes.Equal(n.auditKey, auditKey) {
			t.Fatalf("node %s does not have the upgraded data dir's keys", n.cfg.DataDir)
		}
	}
}
