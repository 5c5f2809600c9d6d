package node

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/postgres"
	"github.com/vigil-iot/vigil/store/sqlite"
)

// StoreConfig is the config key "store": which database holds events,
// devices, alerts, incidents, actions, the audit trail and the learned
// baselines.
type StoreConfig struct {
	// Driver is "sqlite" (default: the file vigil.db in the data dir) or
	// "postgres" (URL required), for several nodes sharing one database.
	Driver string `yaml:"driver"`
	// URL is the PostgreSQL connection URL (postgres://user@host/db?...);
	// ${VAR} references are expanded, so a password can come from the
	// environment. For sqlite, an optional path replacing
	// <data_dir>/vigil.db.
	URL string `yaml:"url"`
	// Schema is the PostgreSQL schema of Vigil's tables (default public),
	// so deployments can share one database.
	Schema string `yaml:"schema"`
}

// serverStore is what the server needs of a store: the store interfaces,
// the hunt segments, and whether writes of events fail (for /readyz).
type serverStore interface {
	store.Store
	store.Analytics
	// WriteErr is the error of the last write of events while it failed.
	WriteErr() error
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (c StoreConfig) validate() error {
	switch c.Driver {
	case "", "sqlite":
	case "postgres":
		if c.URL == "" {
			return fmt.Errorf("store.url: the postgres driver needs a connection URL")
		}
		if c.Schema != "" && !schemaName.MatchString(c.Schema) {
			return fmt.Errorf("store.schema: %q is not a lower-case SQL identifier", c.Schema)
		}
	default:
		return fmt.Errorf("store.driver: %q is not sqlite or postgres", c.Driver)
	}
	return nil
}

// Describe names the store for logs, without the URL's password.
func (c StoreConfig) Describe(dataDir string) string {
	if c.Driver == "postgres" {
		return "postgres " + redactURL(c.URL)
	}
	return "sqlite " + c.sqlitePath(dataDir)
}

func (c StoreConfig) sqlitePath(dataDir string) string {
	if c.URL != "" {
		return c.URL
	}
	return filepath.Join(dataDir, "vigil.db")
}

// openStore opens the configured store.
func openStore(ctx context.Context, c StoreConfig, dataDir string, auditKey []byte, log *slog.Logger, reg prometheus.Registerer) (serverStore, error) {
	if c.Driver == "postgres" {
		s, err := postgres.Open(ctx, c.URL, postgres.Options{Schema: c.Schema, Logger: log, Registerer: reg, AuditKey: auditKey, RetainWholeDays: true})
		if err != nil {
			return nil, fmt.Errorf("cannot open the postgres store: %w", err)
		}
		return s, nil
	}
	s, err := sqlite.Open(c.sqlitePath(dataDir), sqlite.Options{Logger: log, Registerer: reg, AuditKey: auditKey})
	if err != nil {
		return nil, err
	}
	return s, nil
}
