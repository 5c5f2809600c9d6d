package catalog

import (
	"context"
	"fmt"
	"github.com/vigil-iot/vigil/store/sqlite"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/internal/corpus"
	"github.com/vigil-iot/vigil/internal/egress"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func TestCatalog(t *testing.T) {
	dir := t.TempDir()
	ck := &clock{time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}
	var last []feeds.Indicator
	calls := 0
	c, err := Open(context.Background(), openStore(t, dir), "", nil, ck, func(ins []feeds.Indicator) { last = ins; calls++ })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := c.Import(ctx, feeds.Feed{Source: "testdata/bundle21.json", Confidence: 30})
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 5 || len(last) != 9 || c.List()[0].Feed.Name != "bundle21" || c.List()[0].Format != FormatSTIX {
		t.Fatalf("stix import: %+v, %d indicators, %+v", res, len(last), c.List())
	}

	// A list over HTTP with a bearer token, refreshed hourly.
	body := "192.0.2.1\n192.0.2.2\n"
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tk" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		w.Write([]byte(body))
	}))
	defer hs.Close()
	// the default outbound policy refuses loopback, and sends no token there
	if _, err := c.Import(ctx, feeds.Feed{Name: "web", Source: hs.URL + "/ips.txt", Token: "tk"}); !strings.Contains(fmt.Sprint(err), "refused by the outbound policy") {
		t.Fatalf("import from loopback by default: %v", err)
	}
	c.HTTP = egress.Loopback().Client(0)
	if _, err := c.Import(ctx, feeds.Feed{Name: "down", Source: "http://127.0.0.1:1/x"}); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Fatalf("import from a closed port: %v, want EINVALID (the source's fault, not the server's)", err)
	}
	if _, err := c.Import(ctx, feeds.Feed{Name: "web", Source: hs.URL + "/ips.txt"}); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Fatalf("import without token: %v", err)
	}
	res, err = c.Import(ctx, feeds.Feed{Name: "web", Source: hs.URL + "/ips.txt", Token: "tk", Refresh: time.Hour})
	if err != nil || res.Imported != 2 || len(last) != 11 {
		t.Fatalf("web import: %v %+v %d", err, res, len(last))
	}
	body = "192.0.2.3\n"
	ck.t = ck.t.Add(59 * time.Minute)
	if n := c.RefreshDue(ctx); n != 0 {
		t.Errorf("refreshed %d feeds before due", n)
	}
	ck.t = ck.t.Add(time.Minute)
	if n := c.RefreshDue(ctx); n != 1 || len(last) != 10 {
		t.Errorf("refresh: %d feeds, %d indicators", n, len(last))
	}

	if p := corpus.Path(t, "misp-event-sednit.json"); p != "" {
		res, err = c.Import(ctx, feeds.Feed{Name: "sednit", Source: p})
		if err != nil || res.Imported != 68 {
			t.Fatalf("misp import: %v %+v", err, res)
		}
	}
	if _, err := c.Import(ctx, feeds.Feed{Name: "../x", Source: "testdata/bundle21.json"}); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("bad name: %v", err)
	}
	if _, err := c.Import(ctx, feeds.Feed{Name: "gone", Source: "testdata/nope"}); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("missing file: %v", err)
	}

	// A second node on the same store sees everything.
	st := c.st
	var reloaded []feeds.Indicator
	c2, err := Open(ctx, st, "", nil, ck, func(ins []feeds.Indicator) { reloaded = ins })
	if err != nil {
		t.Fatal(err)
	}
	if len(reloaded) != len(last) || len(c2.List()) != 3 {
		t.Fatalf("reloaded %d indicators, %d feeds; want %d, 3", len(reloaded), len(c2.List()), len(last))
	}
	if err := c2.Remove(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := c2.Remove(ctx, "web"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("second remove: %v", err)
	}
	if len(reloaded) != len(last)-1 {
		t.Errorf("after remove %d indicators", len(reloaded))
	}
	// The first node picks the removal up at its next sync.
	before := len(last)
	if changed, err := c.Sync(ctx); err != nil || !changed {
		t.Fatalf("Sync after another node's removal = %v, %v", changed, err)
	}
	if len(last) != before-1 || len(c.List()) != 2 {
		t.Fatalf("after sync: %d indicators, %d feeds; want %d, 2", len(last), len(c.List()), before-1)
	}
	if changed, err := c.Sync(ctx); err != nil || changed {
		t.Fatalf("Sync without a change = %v, %v", changed, err)
	}
}

// TestRefreshOnce: of two nodes sharing a store, one refreshes a due feed.
func TestRefreshOnce(t *testing.T) {
	ctx := context.Background()
	ck := &clock{time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}
	fetches := 0
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches++
		w.Write([]byte("192.0.2.1\n"))
	}))
	defer hs.Close()
	st := openStore(t, t.TempDir())
	a, err := Open(ctx, st, "", nil, ck, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.HTTP = egress.Loopback().Client(0)
	b, err := Open(ctx, st, "", nil, ck, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.HTTP = a.HTTP
	if _, err := a.Import(ctx, feeds.Feed{Name: "web", Source: hs.URL, Refresh: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ck.t = ck.t.Add(2 * time.Hour)
	if n := a.RefreshDue(ctx) + b.RefreshDue(ctx); n != 1 || fetches != 2 {
		t.Fatalf("two nodes refreshed %d times (%d fetches), want once (2 fetches with the import)", n, fetches)
	}
}

// TestImportFiles: feeds an older version kept as files in the data dir
// are imported into the store once.
func TestImportFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "intel"), 0o750)
	raw := `{"info":{"feed":{"name":"old","source":"x"},"count":1,"format":"list"},"indicators":[{"id":"i1","type":"ipv4-addr","value":"192.0.2.9","feed":"old"}]}`
	if err := os.WriteFile(filepath.Join(dir, "intel", "old.json"), []byte(raw), 0o600); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, dir)
	var got []feeds.Indicator
	c, err := Open(ctx, st, dir, nil, nil, func(ins []feeds.Indicator) { got = ins })
	if err != nil {
		t.Fatal(err)
	}
	if len(c.List()) != 1 || len(got) != 1 || got[0].Value != "192.0.2.9" {
		t.Fatalf("after the import of the files: %+v, %+v", c.List(), got)
	}
	if _, err := os.Stat(filepath.Join(dir, "intel", "old.json.imported")); err != nil {
		t.Fatalf("file not marked imported: %v", err)
	}
	// Opened again (a restart), nothing is imported twice.
	v, _ := st.CatalogVersion(ctx, Kind)
	if _, err := Open(ctx, st, dir, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if v2, _ := st.CatalogVersion(ctx, Kind); v2 != v {
		t.Fatalf("catalog version %d after a restart, want %d", v2, v)
	}
}

// openStore opens a SQLite store in dir, closed with the test.
func openStore(t *testing.T, dir string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(dir, "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
