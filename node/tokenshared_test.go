package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/bus/natsbus/natstest"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web/api"
)

// TestServeTokensSharedOnPostgres runs two vigil serve nodes on one
// PostgreSQL schema (and one external NATS): a token created through node
// A works on node B; revoked through B, it is refused by A at its next
// request. B, starting on a database that has an admin, makes no
// bootstrap admin of its own.
func TestServeTokensSharedOnPostgres(t *testing.T) {
	pgURL := os.Getenv("VIGIL_TEST_POSTGRES_URL")
	if pgURL == "" {
		t.Skip("VIGIL_TEST_POSTGRES_URL is not set: no PostgreSQL to run on")
	}
	natsURL := natstest.URL(t)
	var err error
	var rnd [4]byte
	rand.Read(rnd[:])
	schema := "t_tokens_" + hex.EncodeToString(rnd[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, pgURL)
		if err != nil {
			t.Log(err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Log(err)
		}
	})
	secrets := testSecretsKey(t) // the nodes share their keys (the audit key too) through the store
	node := func() *Node {
		cfg := DefaultConfig()
		cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
		cfg.SecretsKeyFile = secrets
		cfg.SigmaDirs = []string{t.TempDir()}
		cfg.NATSURL, cfg.BusPrefix = natsURL, natstest.UniquePrefix(t, natsURL)
		cfg.Store = StoreConfig{Driver: "postgres", URL: pgURL, Schema: schema}
		return runTestApp(t, cfg)
	}
	a := node()
	b := node()
	if a.AdminToken() == "" || b.AdminToken() != "" {
		t.Fatalf("bootstrap admin tokens: A set %v, B set %v; want one, on A only", a.AdminToken() != "", b.AdminToken() != "")
	}
	clientOf := func(n *Node, token string) *client.Client {
		c, err := client.New(n.URL(), token, client.TLSConfig(n.ca.Pool()))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	created, err := clientOf(a, a.AdminToken()).CreateTokenWith(t.Context(), api.CreateTokenRequest{Name: "ops", Role: auth.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	onA, onB := clientOf(a, created.Secret), clientOf(b, created.Secret)
	if _, _, err := onB.ListDevices(t.Context(), store.DeviceFilter{}); err != nil {
		t.Fatalf("token created on A, used on B: %v", err)
	}
	if _, _, err := onA.ListDevices(t.Context(), store.DeviceFilter{}); err != nil {
		t.Fatalf("token used on A: %v", err)
	}
	// The bootstrap admin made by A is an admin of B as well.
	list, err := clientOf(b, a.AdminToken()).ListTokens(t.Context())
	if err != nil || len(list) != 2 {
		t.Fatalf("tokens listed on B = %+v, %v; want A's admin and ops", list, err)
	}
	if err := clientOf(b, a.AdminToken()).RevokeToken(t.Context(), "ops"); err != nil {
		t.Fatal(err)
	}
	_, _, err = onA.ListDevices(t.Context(), store.DeviceFilter{})
	if vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("token revoked on B, used on A: %v, want EUNAUTHORIZED", err)
	}
}

// TestServeImportsTokenFile starts vigil serve on a data dir of an older
// version, whose API tokens are in tokens.json: they are imported into the
// store and keep working, the file is renamed tokens.json.imported, and no
// bootstrap admin is made since an admin was imported.
func TestServeImportsTokenFile(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.SigmaDirs = []string{t.TempDir()}
	path := filepath.Join(cfg.DataDir, "tokens.json")
	old, err := auth.OpenFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := old.EnsureBootstrapAdmin()
	if err != nil {
		t.Fatal(err)
	}
	agent, _, err := old.CreateWith("cam", auth.RoleAgent, auth.CreateOptions{Devices: []string{"cam-1"}})
	if err != nil {
		t.Fatal(err)
	}
	a := runTestApp(t, cfg)
	if a.AdminToken() != "" {
		t.Fatal("a bootstrap admin was made although an admin was imported")
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("tokens.json still there: %v", err)
	}
	if _, err := os.Stat(path + auth.ImportedSuffix); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(a.URL(), admin, client.TLSConfig(a.ca.Pool()))
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.ListTokens(t.Context())
	if err != nil || len(list) != 2 || list[1].Name != "cam" || !list[1].MayPostFor("cam-1") || list[1].MayPostFor("cam-2") {
		t.Fatalf("imported tokens = %+v, %v", list, err)
	}
	if tok, err := a.tokens.Verify(agent); err != nil || tok.Role != auth.RoleAgent {
		t.Fatalf("imported agent token = %+v, %v", tok, err)
	}
}
