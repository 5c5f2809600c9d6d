package catalog

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
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
	c, err := Open(dir, nil, ck, func(ins []feeds.Indicator) { last = ins; calls++ })
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

	// Reopen: everything is back.
	var reloaded []feeds.Indicator
	c2, err := Open(dir, nil, ck, func(ins []feeds.Indicator) { reloaded = ins })
	if err != nil {
		t.Fatal(err)
	}
	if len(reloaded) != len(last) || len(c2.List()) != 3 {
		t.Fatalf("reloaded %d indicators, %d feeds; want %d, 3", len(reloaded), len(c2.List()), len(last))
	}
	if err := c2.Remove("web"); err != nil {
		t.Fatal(err)
	}
	if err := c2.Remove("web"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("second remove: %v", err)
	}
	if _, err := os.Stat(dir + "/intel/web.json"); !os.IsNotExist(err) {
		t.Errorf("feed file left: %v", err)
	}
	if len(reloaded) != len(last)-1 {
		t.Errorf("after remove %d indicators", len(reloaded))
	}
}
