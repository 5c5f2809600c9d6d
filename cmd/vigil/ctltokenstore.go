package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/store/sqlite"
)

// dataDirTokens are the API tokens of a data dir's SQLite store, for
// `vigil ctl token ... --data-dir` on the server host.
type dataDirTokens struct {
	*auth.StoreTokens
	db *sqlite.Store
}

// Close closes the store.
func (d dataDirTokens) Close() error { return d.db.Close() }

// openTokenFile opens the API tokens of an existing Vigil data dir: those
// of its SQLite store (vigil.db), shared with the server running on it. A
// directory that is not one (no vigil.db) is refused rather than created:
// a token written there would never be accepted by any server. A server
// on PostgreSQL keeps its tokens there: manage them through its API. A
// tokens.json not yet imported by the server is imported first.
func openTokenFile(dataDir string) (dataDirTokens, error) {
	path := filepath.Join(dataDir, "vigil.db")
	if _, err := os.Stat(path); err != nil {
		return dataDirTokens{}, fmt.Errorf("cannot use --data-dir %s: it is not a Vigil data dir (no vigil.db); give the server's data dir, or leave --data-dir out to go through the API of $VIGIL_SERVER", dataDir)
	}
	db, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		return dataDirTokens{}, err
	}
	ts := auth.NewStoreTokens(db)
	if _, err := ts.ImportFile(filepath.Join(dataDir, "tokens.json")); err != nil {
		db.Close()
		return dataDirTokens{}, err
	}
	return dataDirTokens{StoreTokens: ts, db: db}, nil
}
