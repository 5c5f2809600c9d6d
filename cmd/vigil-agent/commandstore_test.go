package main

import (
	"path/filepath"
	"testing"

	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/sqlite"
)

// commandStore opens a SQLite store for an enroll.Handler's command queue
// (enroll.Options.Commands), closed after the test.
func commandStore(tb testing.TB) store.Commands {
	tb.Helper()
	st, err := sqlite.Open(filepath.Join(tb.TempDir(), "commands.db"), sqlite.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}
