package web

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/store/sqlite"
	"github.com/vigil-iot/vigil/web/api"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// now is the test's wall clock.
var now = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

type env struct {
	t      testing.TB
	srv    *Server
	store  *sqlite.Store
	tokens *auth.FileStore
	// token of each role
	tok  map[auth.Role]string
	logs *syncBuffer
	reg  *prometheus.Registry
}

// newEnv builds a server on a real SQLite store and token file, with one
// token per role. mod may change the options before the server is built.
func newEnv(t testing.TB, mod func(*Options)) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	toks, err := auth.OpenFileStore(filepath.Join(dir, "tokens.json"), auth.WithClock(fixedClock(now)))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, store: st, tokens: toks, tok: map[auth.Role]string{}, logs: &syncBuffer{}, reg: prometheus.NewRegistry()}
	for _, r := range auth.Roles() {
		p, _, err := toks.Create("test-"+string(r), r)
		if err != nil {
			t.Fatal(err)
		}
		e.tok[r] = p
	}
	ingest := func(kind string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, ok := auth.FromContext(r.Context())
			if !ok {
				http.Error(w, "no token in context", http.StatusInternalServerError)
				return
			}
			writeJSON(w, http.StatusAccepted, map[string]string{"kind": kind, "token": tok.Name})
		})
	}
	opts := Options{
		Store:       st,
		Tokens:      toks,
		AgentReport: ingest("report"),
		BulkEvents:  ingest("events"),
		Gatherer:    e.reg,
		Registerer:  e.reg,
		Logger:      slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Clock:       fixedClock(now),
		Rules:       testRules(t),
	}
	if mod != nil {
		mod(&opts)
	}
	e.srv, err = NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// do sends a request with the token of role ("" for none) and returns the
// status and body.
func (e *env) do(method, target, role string, body string) (int, []byte, http.Header) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequestWithContext(context.Background(), method, target, rd)
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+e.tok[auth.Role(role)])
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes(), rec.Header()
}

// get sends a GET as an analyst, requires want, and decodes the body into v.
func (e *env) get(target string, want int, v any) {
	e.t.Helper()
	code, body, _ := e.do("GET", target, string(auth.RoleAnalyst), "")
	if code != want {
		e.t.Fatalf("GET %s = %d %s, want %d", target, code, body, want)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			e.t.Fatalf("GET %s: cannot decode %s: %v", target, body, err)
		}
	}
}

// errorCode decodes an error body and returns its code.
func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var eb api.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code == "" {
		t.Fatalf("not an error body: %s (%v)", body, err)
	}
	return eb.Error.Code
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
