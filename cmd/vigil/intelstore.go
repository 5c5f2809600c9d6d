package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/catalog"
	"github.com/vigil-iot/vigil/store/sqlite"
)

// openDataDirIntel opens the intel catalog of a data dir with no server
// running on it, for `vigil intel import --data` and `vigil detect
// --intel`: the catalog of its SQLite store (vigil.db, created in a new
// dir), after the feed files of an older version are imported into it. A
// server on PostgreSQL keeps its catalog there: go through its API. The
// caller closes the store.
func openDataDirIntel(ctx context.Context, dataDir string, onChange func([]feeds.Indicator)) (*catalog.Catalog, *sqlite.Store, error) {
	st, err := openDataDirStore(dataDir)
	if err != nil {
		return nil, nil, err
	}
	cat, err := catalog.Open(ctx, st, dataDir, slog.New(slog.DiscardHandler), vigil.SystemClock{}, onChange)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return cat, st, nil
}

// openDataDirStore opens the SQLite store of a data dir (vigil.db, created
// in a new dir), for the commands that work on a data dir with no server
// running (`vigil intel|vuln import --data`).
func openDataDirStore(dataDir string) (*sqlite.Store, error) {
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("cannot create %s: %w", dataDir, err)
	}
	return sqlite.Open(filepath.Join(dataDir, "vigil.db"), sqlite.Options{})
}
