package taxii

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/internal/corpus"
	"github.com/vigil-iot/vigil/feeds/stix"
	"github.com/vigil-iot/vigil/internal/egress"
)

// server is a TAXII 2.1 server over fixed collections. Object i of a
// collection was added at base + i minutes.
type server struct {
	t     *testing.T
	cols  map[string][]json.RawMessage
	base  time.Time
	mu    sync.Mutex
	pages int
	seen  []string // query strings of object requests
}

func (s *server) auth(r *http.Request) bool {
	if r.Header.Get("Authorization") == "Bearer s3cret" {
		return true
	}
	u, p, ok := r.BasicAuth()
	return ok && u == "vigil" && p == "pw"
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.auth(r) {
		http.Error(w, `{"title": "unauthorized"}`, http.StatusUnauthorized)
		return
	}
	if r.Header.Get("Accept") != MediaType {
		http.Error(w, "bad accept", http.StatusNotAcceptable)
		return
	}
	w.Header().Set("Content-Type", MediaType)
	enc := json.NewEncoder(w)
	p := r.URL.Path
	switch {
	case p == "/taxii2/":
		enc.Encode(Discovery{Title: "test", Default: "/api1/", APIRoots: []string{"/api1/", "/api2/"}})
	case p == "/api1/":
		enc.Encode(APIRoot{Title: "api1", Versions: []string{MediaType}})
	case p == "/api1/collections/":
		enc.Encode(map[string]any{"collections": []Collection{
			{ID: "91a7b528-80eb-42ed-a74d-c6fbd5a26116", Title: "IoT indicators", CanRead: true},
			{ID: "52892447-4d7e-4f70-b94d-d7f22742ff63", Title: "ATT&CK ICS", CanRead: true},
			{ID: "64993447-4d7e-4f70-b94d-d7f22742ff63", Title: "write only", CanWrite: true},
		}})
	case strings.HasPrefix(p, "/api1/collections/") && strings.HasSuffix(p, "/objects/"):
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/api1/collections/"), "/objects/")
		objs, ok := s.cols[id]
		if !ok {
			http.Error(w, "no such collection", http.StatusNotFound)
			return
		}
		s.mu.Lock()
		s.pages++
		s.seen = append(s.seen, r.URL.RawQuery)
		s.mu.Unlock()
		q := r.URL.Query()
		start := 0
		if a := q.Get("added_after"); a != "" {
			at, err := time.Parse(time.RFC3339Nano, a)
			if err != nil {
				http.Error(w, "bad added_after", http.StatusBadRequest)
				return
			}
			for start < len(objs) && !s.base.Add(time.Duration(start)*time.Minute).After(at) {
				start++
			}
		}
		if n := q.Get("next"); n != "" {
			start, _ = strconv.Atoi(n)
		}
		limit := 3
		if l := q.Get("limit"); l != "" {
			limit, _ = strconv.Atoi(l)
		}
		end := min(start+limit, len(objs))
		env := Envelope{Objects: objs[start:end]}
		if end < len(objs) {
			env.More, env.Next = true, strconv.Itoa(end)
		}
		if end > start {
			w.Header().Set("X-TAXII-Date-Added-Last", s.base.Add(time.Duration(end-1)*time.Minute).Format(time.RFC3339Nano))
		}
		enc.Encode(env)
	default:
		http.NotFound(w, r)
	}
}

// loopback is the client of the tests: the servers they fetch from are on
// loopback, which the default outbound policy refuses.
var loopback = egress.Loopback().Client(0)

func newServer(t *testing.T) (*server, *httptest.Server) {
	raw, err := os.ReadFile("testdata/bundle21.json")
	if err != nil {
		t.Fatal(err)
	}
	var b stix.Bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, base: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), cols: map[string][]json.RawMessage{
		"91a7b528-80eb-42ed-a74d-c6fbd5a26116": b.Objects,
	}}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs
}

func TestFetchPagesAndAuth(t *testing.T) {
	s, hs := newServer(t)
	ctx := context.Background()
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	f := &feeds.Feed{Name: "taxii", Source: hs.URL + "/taxii2/", Collection: "IoT indicators"}

	// No credentials: refused.
	c := &Client{HTTP: loopback, PageSize: 4}
	if _, _, _, err := c.Fetch(ctx, f, time.Time{}, now); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("fetch without auth: %v", err)
	}
	// Bearer token: all ten objects in three pages.
	c.Token = "s3cret"
	ins, res, last, err := c.Fetch(ctx, f, time.Time{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Imported != 5 || res.Rejected != 3 || res.Skipped != 2 || len(ins) != 9 {
		t.Fatalf("result %+v, %d indicators", res, len(ins))
	}
	if s.pages != 3 {
		t.Errorf("%d pages, want 3 (10 objects, limit 4)", s.pages)
	}
	if want := s.base.Add(9 * time.Minute); !last.Equal(want) {
		t.Errorf("date added last %v, want %v", last, want)
	}
	// Basic auth, incremental: only objects added after the 6th.
	c = &Client{HTTP: loopback, User: "vigil", Password: "pw"}
	s.pages, s.seen = 0, nil
	_, res, _, err = c.Fetch(ctx, f, s.base.Add(6*time.Minute), now)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Imported + res.Rejected + res.Skipped; got != 3 {
		t.Errorf("incremental fetch saw %d objects, want 3 (%+v)", got, res)
	}
	if len(s.seen) != 1 || !strings.Contains(s.seen[0], "added_after=2025-01-01T00%3A06%3A00Z") {
		t.Errorf("queries %q", s.seen)
	}
	// Wrong password.
	c.Password = "no"
	if _, _, _, err := c.Fetch(ctx, f, time.Time{}, now); err == nil {
		t.Error("wrong password accepted")
	}
	// Unknown collection: the error lists the readable ones.
	c.Password = "pw"
	f.Collection = "nope"
	if _, _, _, err := c.Fetch(ctx, f, time.Time{}, now); err == nil || !strings.Contains(err.Error(), "52892447") {
		t.Errorf("unknown collection: %v", err)
	}
}

func TestFetchATTACK(t *testing.T) {
	raw, err := os.ReadFile(corpus.Path(t, "ics-attack.json"))
	if err != nil {
		t.Fatal(err)
	}
	var b stix.Bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	s, hs := newServer(t)
	s.cols["52892447-4d7e-4f70-b94d-d7f22742ff63"] = b.Objects
	c := &Client{HTTP: loopback, Token: "s3cret", PageSize: 500}
	f := &feeds.Feed{Name: "attack", Source: hs.URL + "/taxii2/", Collection: "52892447-4d7e-4f70-b94d-d7f22742ff63"}
	_, res, _, err := c.Fetch(context.Background(), f, time.Time{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 1825 || s.pages != 4 {
		t.Errorf("result %+v over %d pages; want 1825 skipped over 4 pages", res, s.pages)
	}
}

// TestFetchMaxTotal checks that a collection walk stops, with an error
// that says so, once its pages add up to more than MaxTotal bytes: a
// server cannot make an import read without end one page at a time.
func TestFetchMaxTotal(t *testing.T) {
	s, hs := newServer(t)
	f := &feeds.Feed{Name: "taxii", Source: hs.URL + "/taxii2/", Collection: "IoT indicators"}
	now := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	c := &Client{HTTP: loopback, Token: "s3cret", PageSize: 1, MaxTotal: 1500}
	_, _, _, err := c.Fetch(context.Background(), f, time.Time{}, now)
	if err == nil || !strings.Contains(err.Error(), "more than 1500 bytes in all") {
		t.Fatalf("fetch over MaxTotal: %v", err)
	}
	pages := s.pages
	c.MaxTotal = 0 // the default: the whole collection
	if _, _, _, err := c.Fetch(context.Background(), f, time.Time{}, now); err != nil {
		t.Fatal(err)
	}
	if s.pages-pages <= pages {
		t.Fatalf("the bounded walk read %d pages, the whole one %d", pages, s.pages-pages)
	}
}
