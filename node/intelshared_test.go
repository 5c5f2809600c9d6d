package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-iot/vigil/bus/natsbus/natstest"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/web"
)

// TestServeIntelSharedOnPostgres runs two vigil serve nodes on one
// PostgreSQL schema: an intel feed and a vulnerability source imported
// through node A reach node B (at its next sync, every 5 s), and a feed
// removed through B leaves A.
func TestServeIntelSharedOnPostgres(t *testing.T) {
	pgURL := os.Getenv("VIGIL_TEST_POSTGRES_URL")
	if pgURL == "" {
		t.Skip("VIGIL_TEST_POSTGRES_URL is not set: no PostgreSQL to run on")
	}
	natsURL := natstest.URL(t)
	var rnd [4]byte
	rand.Read(rnd[:])
	schema := "t_intel_" + hex.EncodeToString(rnd[:])
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
	secrets := testSecretsKey(t) // the nodes share their keys through the store
	node := func() *Node {
		cfg := DefaultConfig()
		cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
		cfg.SigmaDirs = []string{t.TempDir()}
		cfg.NATSURL, cfg.BusPrefix = natsURL, natstest.UniquePrefix(t, natsURL)
		cfg.Store = StoreConfig{Driver: "postgres", URL: pgURL, Schema: schema}
		cfg.SecretsKeyFile = secrets
		return runTestApp(t, cfg)
	}
	a := node()
	b := node()
	clientOf := func(n *Node) *client.Client {
		c, err := client.New(n.URL(), a.AdminToken(), client.TLSConfig(n.ca.Pool()))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	onA, onB := clientOf(a), clientOf(b)
	res, err := onA.ImportIntel(t.Context(), web.IntelImport{Feed: feeds.Feed{Name: "bad", Format: "list"}, Content: "192.0.2.66\n198.51.100.7\n"})
	if err != nil || res.Imported != 2 {
		t.Fatalf("ImportIntel on A = %+v, %v", res, err)
	}
	csaf, err := os.ReadFile("../feeds/csaf/testdata/acme-sa-2024-001.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onA.ImportVuln(t.Context(), web.VulnImport{Name: "acme", Content: string(csaf)}); err != nil {
		t.Fatalf("ImportVuln on A: %v", err)
	}
	// eventually polls generously: B syncs every 5 s, on a busy machine.
	eventually := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); !ok(); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 2 minutes", what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	eventually("the feed imported on A listed on B", func() bool {
		fs, err := onB.ListIntel(t.Context())
		return err == nil && len(fs) == 1 && fs[0].Feed.Name == "bad" && fs[0].Count == 2
	})
	eventually("the vulnerability source imported on A listed on B", func() bool {
		ss, err := onB.ListVulnSources(t.Context())
		return err == nil && len(ss) == 1 && ss[0].Name == "acme"
	})
	if err := onB.RemoveIntel(t.Context(), "bad"); err != nil {
		t.Fatal(err)
	}
	eventually("the feed removed on B gone from A", func() bool {
		fs, err := onA.ListIntel(t.Context())
		return err == nil && len(fs) == 0
	})
}
