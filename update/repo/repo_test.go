package repo

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/internal/egress"
	"github.com/vigil-iot/vigil/internal/testfiles"
	"github.com/vigil-iot/vigil/store/sqlite"
)

type fixedClock struct{ t time.Time }

// auditLog records what a sync audits.
type auditLog []string

func (l *auditLog) RecordJSON(_ context.Context, actor, action, object string, detail any) (vigil.AuditRecord, error) {
	b, _ := json.Marshal(detail)
	*l = append(*l, actor+" "+action+" "+object+" "+string(b))
	return vigil.AuditRecord{}, nil
}

func (c fixedClock) Now() time.Time { return c.t }

// mirror is a real HTTP server on loopback serving an index at /index.json
// and files under /files/.
type mirror struct {
	srv   *httptest.Server
	files map[string][]byte
	index Index
	mu    sync.Mutex // guards gets and index against the server's goroutines
	gets  map[string]int
}

// got is how many times path was requested.
func (m *mirror) got(path string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets[path]
}

func newMirror(t *testing.T, addr string) *mirror {
	t.Helper()
	m := &mirror{files: map[string][]byte{}, gets: map[string]int{}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.gets[r.URL.Path]++
		if r.URL.Path == "/index.json" {
			_ = json.NewEncoder(w).Encode(m.index)
			return
		}
		b, ok := m.files[strings.TrimPrefix(r.URL.Path, "/files/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	})
	m.srv = httptest.NewUnstartedServer(h)
	if addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("cannot listen on %s: %v", addr, err)
		}
		m.srv.Listener.Close()
		m.srv.Listener = l
	}
	m.srv.Start()
	t.Cleanup(m.srv.Close)
	return m
}

// add serves data as file name and lists it in the index with the given
// sum and size (the true ones when empty or 0).
func (m *mirror) add(name, product, version string, data []byte, sum string, size int64) {
	m.files[name] = data
	if sum == "" {
		h := sha256.Sum256(data)
		sum = hex.EncodeToString(h[:])
	}
	if size == 0 {
		size = int64(len(data))
	}
	m.index.Artifacts = append(m.index.Artifacts, Entry{Name: name, Product: product, Version: version, Classes: []string{"camera"},
		URL: "files/" + name, SHA256: sum, Size: size})
}

func (m *mirror) url() string { return m.srv.URL + "/index.json" }

func newFetcher(t *testing.T, pol *egress.Policy, repos ...Repository) (*Fetcher, *sqlite.Store, ed25519.PublicKey) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Fetcher{Repositories: repos, Store: st, Key: key, HTTP: pol.Client(10 * time.Second),
		Clock: fixedClock{time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, MaxSize: 1 << 10,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}, st, pub
}

func TestSyncStoresVerifiesAndSkips(t *testing.T) {
	m := newMirror(t, "")
	fw := []byte("firmware 2.4.1 bytes")
	m.add("cam-2.4.1.bin", "acme-cam-fw", "2.4.1", fw, "", 0)
	m.add("bad-hash.bin", "acme-cam-fw", "2.4.2", []byte("tampered"), strings.Repeat("ab", 32), 0)
	m.add("big.bin", "acme-cam-fw", "3.0", make([]byte, 2<<10), "", 0)             // declared over MaxSize
	m.add("liar.bin", "acme-cam-fw", "3.1", []byte("longer than declared"), "", 4) // body over its size
	m.add("other.bin", "other-product", "1.0", []byte("not wanted"), "", 0)        // filtered out
	f, st, pub := newFetcher(t, egress.Loopback(), Repository{Name: "acme", URL: m.url(), Products: []string{"acme-cam-fw"}})
	ctx := t.Context()
	var audited auditLog
	f.Audit = &audited

	rs, err := f.Sync(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Error != "" || len(rs[0].Added) != 1 || len(rs[0].Refused) != 3 || rs[0].Filtered != 1 {
		t.Fatalf("first sync: %+v", rs)
	}
	for _, r := range rs[0].Refused {
		t.Logf("refused: %s", r.Reason)
	}
	reasons := fmt.Sprint(rs[0].Refused)
	for _, want := range []string{"sha256 mismatch", "over the 1024 bytes", "20 bytes, over 4", "entry 1 (acme-cam-fw 2.4.2)", "repository acme"} {
		if !strings.Contains(reasons, want) {
			t.Errorf("refusals do not say %q: %s", want, reasons)
		}
	}
	if m.got("/files/big.bin") != 0 || m.got("/files/other.bin") != 0 {
		t.Errorf("downloaded what it should not have: %v", m.gets)
	}

	as, err := st.ListArtifacts(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 {
		t.Fatalf("stored %d artifacts, want 1: %+v", len(as), as)
	}
	a := as[0]
	if a.Product != "acme-cam-fw" || a.Version != "2.4.1" || a.Name != "cam-2.4.1.bin" || a.CreatedBy != "repository:acme" || len(a.Classes) != 1 {
		t.Errorf("stored %+v", a)
	}
	data, err := st.ArtifactData(ctx, a.ID)
	if err != nil || string(data) != string(fw) {
		t.Fatalf("stored bytes %q %v", data, err)
	}
	// Signed with the update key: the agent's own check passes with its
	// public half, and fails with another key.
	if err := command.VerifyArtifact(pub, data, a.SHA256, a.Signature); err != nil {
		t.Errorf("signature does not verify with the update key: %v", err)
	}
	other, _, _ := ed25519.GenerateKey(nil)
	if err := command.VerifyArtifact(other, data, a.SHA256, a.Signature); err == nil {
		t.Error("signature verifies with another key")
	}

	if len(audited) != 4 || !strings.HasPrefix(audited[0], "repository:acme update_artifact.fetch artifact:"+a.ID) ||
		!strings.HasPrefix(audited[1], "repository:acme update_artifact.refuse repository:acme") || !strings.Contains(audited[1], "sha256 mismatch") {
		t.Errorf("audited %q", audited)
	}

	// Second sync: the stored one is present and not downloaded again.
	rs, err = f.Sync(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs[0].Added) != 0 || rs[0].Present != 1 || m.got("/files/cam-2.4.1.bin") != 1 {
		t.Errorf("second sync: %+v, gets %v", rs, m.gets)
	}
	if as, _ := st.ListArtifacts(ctx, ""); len(as) != 1 {
		t.Errorf("after the second sync %d artifacts", len(as))
	}
	if l := f.List(); len(l) != 1 || l[0].Last == nil || l[0].Last.Present != 1 || l[0].Every != "1h0m0s" {
		t.Errorf("list %+v", l)
	}
	if _, err := f.Sync(ctx, "nope"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("unknown repository: %v", err)
	}
}

func TestSyncHonoursEgress(t *testing.T) {
	m := newMirror(t, "")
	m.add("fw.bin", "p", "1", []byte("fw"), "", 0)
	// Nothing but public addresses: the loopback index is refused.
	f, st, _ := newFetcher(t, egress.MustNew(), Repository{Name: "local", URL: m.url()})
	rs, err := f.Sync(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rs[0].Error, egress.ErrDenied.Error()) || !strings.Contains(rs[0].Error, "repository local") || m.got("/index.json") != 0 {
		t.Errorf("want the index refused by the policy, got %+v (gets %v)", rs, m.gets)
	}

	// The index's host allowed, an artifact elsewhere (another loopback
	// address) not: the entry is refused, the dial never made.
	files := newMirror(t, "127.0.0.2:0")
	files.files["fw.bin"] = []byte("fw")
	m.index.Artifacts[0].URL = files.srv.URL + "/files/fw.bin"
	f.HTTP = egress.MustNew("127.0.0.1").Client(10 * time.Second)
	rs, err = f.Sync(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Error != "" || len(rs[0].Refused) != 1 || !strings.Contains(rs[0].Refused[0].Reason, egress.ErrDenied.Error()) || files.got("/files/fw.bin") != 0 {
		t.Errorf("want the entry refused by the policy, got %+v", rs)
	}
	if as, _ := st.ListArtifacts(t.Context(), ""); len(as) != 0 {
		t.Errorf("stored %+v", as)
	}
}

func TestParseIndexErrors(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		_, err := ParseIndex([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseIndex(%s): %v, want %q", in, err, want)
		}
	}
	ok := `"url": "f", "sha256": "` + strings.Repeat("0", 64) + `", "size": 1`
	f(`{"artifacts": [`, "unexpected EOF")
	f(`{"artifacts": {}}`, "field artifacts")
	f(`{"artifacts": [{"product": 1}]}`, "field artifacts.product at byte 28")
	f(`{"artifacts": [}`, "invalid JSON at byte 16")
	f(`{"artifacts": [{"product": "p", "version": "1", `+ok+`}, {"product": "p", "version": "2 0", `+ok+`}]}`, `entry 1 (p 2 0): version "2 0"`)
	f(`{"artifacts": [{"product": "p", "version": "1", "url": "f", "sha256": "x", "size": 1}]}`, "sha256")
	f(`{"artifacts": [{"product": "p", "version": "1", "url": "f", "sha256": "`+strings.Repeat("0", 64)+`", "size": 0}]}`, "size 0")
	f(`{"artifacts": [{"product": "p", "version": "1", "sha256": "`+strings.Repeat("0", 64)+`", "size": 1}]}`, "no url")
	f(`{"artifacts": []} {}`, "data after")
	f(strings.Repeat(" ", MaxIndexSize+1), "over")
	ix, err := ParseIndex(testfiles.Read(t, "testdata/index.json")[0])
	if err != nil || len(ix.Artifacts) != 2 || ix.Artifacts[0].Models[0] != "C200" {
		t.Errorf("testdata/index.json: %+v %v", ix, err)
	}
}

// FuzzParseIndex checks that ParseIndex never panics and that an index it
// accepts holds only entries an upload would accept (labels, a size
// within bounds, 64 hex digits of SHA-256, a URL).
func FuzzParseIndex(f *testing.F) {
	for _, b := range testfiles.Read(f, "testdata/*.json") {
		f.Add(b)
	}
	f.Add([]byte(`{"artifacts": null}`))
	f.Add([]byte(`{"artifacts": [{"product": "p", "version": "1", "url": "%zz", "sha256": "` + strings.Repeat("0", 64) + `", "size": 1}]}`))
	f.Add([]byte(`{"artifacts": [{"product": "p\u0000", "version": "1", "url": "f", "sha256": "` + strings.Repeat("A", 64) + `", "size": 67108864}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := ParseIndex(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "cannot read index") {
				t.Errorf("error does not say what failed: %v", err)
			}
			if len(ix.Artifacts) != 0 {
				t.Error("entries returned with an error")
			}
			return
		}
		for _, e := range ix.Artifacts {
			if err := e.check(); err != nil {
				t.Errorf("accepted entry fails its check: %v", err)
			}
			if b, err := hex.DecodeString(e.SHA256); err != nil || len(b) != 32 {
				t.Errorf("accepted sha256 %q", e.SHA256)
			}
			if e.Size < 1 || e.Size > 64<<20 || e.URL == "" {
				t.Errorf("accepted %+v", e)
			}
		}
	})
}

// TestRunRereadsEveryInterval: Run reads a repository at once and again
// at each interval, storing an artifact once and a later one when it is
// published, until its context ends.
func TestRunRereadsEveryInterval(t *testing.T) {
	m := newMirror(t, "")
	m.add("fw-1.bin", "p", "1", []byte("one"), "", 0)
	f, st, _ := newFetcher(t, egress.Loopback(), Repository{Name: "r", URL: m.url(), Interval: 20 * time.Millisecond})
	f.Clock = vigil.SystemClock{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	wait := func(what string, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("waited 30s for %s (index read %d times)", what, m.got("/index.json"))
			}
		}
	}
	stored := func(n int) func() bool {
		return func() bool { as, _ := st.ListArtifacts(t.Context(), "p"); return len(as) == n }
	}
	wait("the first artifact", stored(1))
	wait("three reads", func() bool { return m.got("/index.json") >= 3 })
	m.mu.Lock()
	m.files["fw-2.bin"] = []byte("two")
	h := sha256.Sum256([]byte("two"))
	m.index.Artifacts = append(m.index.Artifacts, Entry{Product: "p", Version: "2", URL: "files/fw-2.bin", SHA256: hex.EncodeToString(h[:]), Size: 3})
	m.mu.Unlock()
	wait("the second artifact", stored(2))
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
	if n := m.got("/files/fw-1.bin"); n != 1 {
		t.Errorf("fw-1.bin downloaded %d times", n)
	}
}

// TestListHidesURLPassword: the list readers see names a repository's
// URL without the password it may carry.
func TestListHidesURLPassword(t *testing.T) {
	f := &Fetcher{Repositories: []Repository{{Name: "r", URL: "https://mirror:s3cret@updates.example/index.json"}}}
	got := f.List()
	if len(got) != 1 || strings.Contains(got[0].URL, "s3cret") || !strings.Contains(got[0].URL, "updates.example") {
		t.Fatalf("listed %+v", got)
	}
	if f.Repositories[0].URL != "https://mirror:s3cret@updates.example/index.json" {
		t.Fatal("the fetcher's own URL was changed")
	}
}
