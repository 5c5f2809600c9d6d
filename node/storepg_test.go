package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-iot/vigil/bus/natsbus/natstest"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/store"
)

// TestServeOnPostgres runs vigil serve on PostgreSQL (store.driver
// postgres, a schema of its own) and an external NATS JetStream under a
// bus prefix of its own, the shape of a node of a larger deployment: a
// brute force posted through the API is stored in PostgreSQL, raises its
// alert and opens an incident there, and /readyz is ready.
func TestServeOnPostgres(t *testing.T) {
	pgURL := os.Getenv("VIGIL_TEST_POSTGRES_URL")
	if pgURL == "" {
		t.Skip("VIGIL_TEST_POSTGRES_URL is not set: no PostgreSQL to run on")
	}
	natsURL := natstest.URL(t)
	var rnd [4]byte
	rand.Read(rnd[:])
	suffix := hex.EncodeToString(rnd[:])
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.SigmaDirs = []string{t.TempDir()}
	cfg.NATSURL, cfg.BusPrefix = natsURL, natstest.UniquePrefix(t, natsURL)
	cfg.Store = StoreConfig{Driver: "postgres", URL: pgURL, Schema: "t_serve_" + suffix}
	cfg.SecretsKeyFile = testSecretsKey(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, pgURL)
		if err != nil {
			t.Log(err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{cfg.Store.Schema}.Sanitize()+" CASCADE"); err != nil {
			t.Log(err)
		}
	})
	a := runTestApp(t, cfg)
	if !strings.HasPrefix(cfg.Store.Describe(cfg.DataDir), "postgres ") {
		t.Fatalf("store %s", cfg.Store.Describe(cfg.DataDir))
	}
	c, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.ca.Pool()))
	if err != nil {
		t.Fatal(err)
	}
	bruteForce(t, c, "pg-cam-1", 1)
	waitFor(t, "the brute force's alert and incident in PostgreSQL", func() (bool, string) {
		al, _, err := a.store.ListAlerts(t.Context(), store.AlertFilter{DeviceID: "pg-cam-1", Page: store.Page{Limit: 10}})
		if err != nil {
			return false, err.Error()
		}
		if len(al) == 0 || al[0].IncidentID == "" {
			return false, "no alert with an incident yet"
		}
		if _, err := a.store.GetIncident(t.Context(), al[0].IncidentID); err != nil {
			return false, err.Error()
		}
		n, err := a.store.CountEvents(t.Context())
		if err != nil || n < 6 {
			return false, "events stored: " + err.Error()
		}
		return true, ""
	})
	if err := a.ready(t.Context()); err != nil {
		t.Fatalf("not ready on PostgreSQL: %v", err)
	}
}

func TestStoreConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		c    StoreConfig
		want string
	}{
		{StoreConfig{}, ""},
		{StoreConfig{Driver: "sqlite"}, ""},
		{StoreConfig{Driver: "postgres", URL: "postgres://u@h/db"}, ""},
		{StoreConfig{Driver: "postgres"}, "store.url"},
		{StoreConfig{Driver: "postgres", URL: "postgres://u@h/db", Schema: "x; drop"}, "store.schema"},
		{StoreConfig{Driver: "mysql"}, "store.driver"},
	} {
		err := tc.c.validate()
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
	if got := (StoreConfig{Driver: "postgres", URL: "postgres://vigil:hunter2@db:5432/v"}).Describe(""); strings.Contains(got, "hunter2") {
		t.Errorf("describe shows the password: %s", got)
	}
}
