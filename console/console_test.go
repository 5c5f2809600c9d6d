package console

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/store/sqlite"
	"github.com/vigil-iot/vigil/web"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	h     http.Handler
	c     *Console
	st    *sqlite.Store
	clock *clock
	tok   map[auth.Role]string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)}
	toks, err := auth.OpenFileStore(filepath.Join(dir, "tokens.json"), auth.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, clock: clk, tok: map[auth.Role]string{}}
	for _, r := range auth.Roles() {
		p, _, err := toks.Create("t-"+string(r), r)
		if err != nil {
			t.Fatal(err)
		}
		e.tok[r] = p
	}
	srv, err := web.NewServer(web.Options{Store: st, Tokens: toks, Clock: clk, Extra: UserRoutes(st, clk)})
	if err != nil {
		t.Fatal(err)
	}
	e.c, err = New(Options{Store: st, API: srv, Tokens: toks, Clock: clk, Logger: slog.New(slog.NewTextHandler(tlog{t}, nil)), IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 8 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e.h = Mount(srv, e.c)
	return e
}

// tlog writes logs to the test's log.
type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(strings.TrimSpace(string(p))); return len(p), nil }

// browser keeps cookies between requests, as a browser does.
type browser struct {
	e       *env
	cookies map[string]*http.Cookie
	remote  string
}

func (e *env) browser() *browser {
	return &browser{e: e, cookies: map[string]*http.Cookie{}, remote: "192.0.2.10:5555"}
}

func (b *browser) do(method, target string, form url.Values) *httptest.ResponseRecorder {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequestWithContext(context.Background(), method, "https://vigil.test"+target, body)
	r.RemoteAddr = b.remote
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range b.cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	b.e.h.ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return w
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the page at target.
func (b *browser) csrf(target string) string {
	b.e.t.Helper()
	w := b.do("GET", target, nil)
	m := csrfField.FindStringSubmatch(w.Body.String())
	if m == nil {
		b.e.t.Fatalf("GET %s (%d): no csrf field", target, w.Code)
	}
	return m[1]
}

func (b *browser) login(form url.Values) *httptest.ResponseRecorder {
	b.e.t.Helper()
	form.Set("csrf", b.csrf("/login"))
	return b.do("POST", "/login", form)
}

func (e *env) loggedIn(role auth.Role) *browser {
	e.t.Helper()
	b := e.browser()
	if w := b.login(url.Values{"token": {e.tok[role]}}); w.Code != http.StatusSeeOther {
		e.t.Fatalf("login as %s: %d %s", role, w.Code, w.Body)
	}
	return b
}

func TestLoginWithTokenAndCookie(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	if w := b.do("GET", "/devices", nil); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login?next=%2Fdevices" {
		t.Fatalf("GET /devices logged out: %d %v, want a redirect to the login page", w.Code, w.Header())
	}
	w := b.login(url.Values{"token": {e.tok[auth.RoleAnalyst]}, "next": {"/devices"}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/devices" {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	ck := b.cookies[SessionCookie]
	if ck == nil || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
		t.Fatalf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict, Path=/", ck)
	}
	w = b.do("GET", "/devices", nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "t-analyst") {
		t.Fatalf("GET /devices: %d", w.Code)
	}
	csp := w.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP %q", csp)
	}
	// Agent tokens and wrong tokens cannot log in.
	for _, tok := range []string{e.tok[auth.RoleAgent], "vgl_nope"} {
		if w := e.browser().login(url.Values{"token": {tok}}); w.Code != http.StatusUnauthorized {
			t.Fatalf("login with %q: %d, want 401", tok[:6], w.Code)
		}
	}
	// A next that leaves the site is ignored.
	if w := e.browser().login(url.Values{"token": {e.tok[auth.RoleViewer]}, "next": {"//evil.example/x"}}); w.Header().Get("Location") != "/" {
		t.Fatalf("next=//evil: Location %q", w.Header().Get("Location"))
	}
	// Logout ends the session on the server.
	csrf := b.csrf("/")
	if w := b.do("POST", "/logout", url.Values{"csrf": {csrf}}); w.Code != http.StatusSeeOther {
		t.Fatalf("logout: %d", w.Code)
	}
	if _, err := e.st.GetSession(context.Background(), hashSecret(ck.Value)); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("session after logout: %v", err)
	}
	b.cookies[SessionCookie] = ck // a stolen cookie is worth nothing now
	if w := b.do("GET", "/", nil); w.Code != http.StatusSeeOther {
		t.Fatalf("old cookie after logout: %d", w.Code)
	}
}

func TestLoginFormNeedsItsCSRFCookie(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	csrf := b.csrf("/login")
	delete(b.cookies, loginCSRFCookie)
	if w := b.do("POST", "/login", url.Values{"csrf": {csrf}, "token": {e.tok[auth.RoleAdmin]}}); w.Code != http.StatusForbidden {
		t.Fatalf("login without the form's cookie: %d, want 403", w.Code)
	}
}

func TestSessionTimeouts(t *testing.T) {
	e := newEnv(t)
	b := e.loggedIn(auth.RoleViewer)
	e.clock.add(29 * time.Minute)
	if w := b.do("GET", "/", nil); w.Code != http.StatusOK {
		t.Fatalf("after 29 idle minutes: %d", w.Code)
	}
	e.clock.add(31 * time.Minute)
	if w := b.do("GET", "/", nil); w.Code != http.StatusSeeOther {
		t.Fatalf("after 31 idle minutes: %d, want the login page", w.Code)
	}
	// Absolute: active every 20 minutes, ended at 8 hours.
	b = e.loggedIn(auth.RoleViewer)
	for i := 0; i < 23; i++ {
		e.clock.add(20 * time.Minute)
		if w := b.do("GET", "/", nil); w.Code != http.StatusOK {
			t.Fatalf("active session at %d min: %d", (i+1)*20, w.Code)
		}
	}
	e.clock.add(20 * time.Minute)
	if w := b.do("GET", "/", nil); w.Code != http.StatusSeeOther {
		t.Fatalf("after 8 hours: %d, want the login page", w.Code)
	}
}

func TestUsersAndRoles(t *testing.T) {
	e := newEnv(t)
	admin := e.loggedIn(auth.RoleAdmin)
	csrf := admin.csrf("/settings")
	if w := admin.do("POST", "/settings/users", url.Values{"csrf": {csrf}, "name": {"vera"}, "role": {"viewer"}, "password": {"short"}}); w.Code != http.StatusBadRequest {
		t.Fatalf("short password: %d", w.Code)
	}
	if w := admin.do("POST", "/settings/users", url.Values{"name": {"vera"}, "role": {"viewer"}, "password": {"a long password"}}); w.Code != http.StatusForbidden {
		t.Fatalf("no csrf: %d, want 403", w.Code)
	}
	if w := admin.do("POST", "/settings/users", url.Values{"csrf": {csrf}, "name": {"vera"}, "role": {"viewer"}, "password": {"a long password"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("create user: %d %s", w.Code, w.Body)
	}
	u, err := e.st.GetUser(context.Background(), "vera")
	if err != nil || !strings.HasPrefix(u.PasswordHash, "$argon2id$") || u.Role != "viewer" {
		t.Fatalf("stored user %+v %v", u, err)
	}
	vera := e.browser()
	if w := vera.login(url.Values{"username": {"vera"}, "password": {"a long passwore"}}); w.Code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", w.Code)
	}
	if w := vera.login(url.Values{"username": {"vera"}, "password": {"a long password"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("user login: %d %s", w.Code, w.Body)
	}
	// A viewer: no admin pages, and writes are refused by the API (and audited).
	if w := vera.do("GET", "/settings", nil); w.Code != http.StatusForbidden {
		t.Fatalf("viewer GET /settings: %d", w.Code)
	}
	vcsrf := vera.csrf("/")
	if w := vera.do("POST", "/settings/users", url.Values{"csrf": {vcsrf}, "name": {"eve"}, "role": {"admin"}, "password": {"a long password"}}); w.Code != http.StatusForbidden {
		t.Fatalf("viewer creating a user: %d", w.Code)
	}
	recs, _ := e.st.ListAudit(context.Background(), 0, 0)
	last := recs[len(recs)-1]
	if last.Actor != "user:vera" || last.Action != "user.put" || last.Outcome != vigil.OutcomeDenied {
		t.Fatalf("last audit record %+v: want user:vera denied user.put", last)
	}
	// Promoted: the role applies at once, to the open session.
	if w := admin.do("POST", "/settings/users", url.Values{"csrf": {csrf}, "name": {"vera"}, "role": {"admin"}, "password": {"a long password"}}); w.Code != http.StatusSeeOther {
		t.Fatalf("update user: %d", w.Code)
	}
	if w := vera.do("GET", "/settings", nil); w.Code != http.StatusOK {
		t.Fatalf("promoted GET /settings: %d", w.Code)
	}
	// Removed: the session ends.
	if w := admin.do("POST", "/settings/users/vera/delete", url.Values{"csrf": {csrf}}); w.Code != http.StatusSeeOther {
		t.Fatalf("delete user: %d", w.Code)
	}
	if w := vera.do("GET", "/", nil); w.Code != http.StatusSeeOther {
		t.Fatalf("removed user: %d", w.Code)
	}
}

func TestLoginThrottle(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for i := 0; i < maxFails; i++ {
		if w := b.login(url.Values{"username": {"nobody"}, "password": {"x"}}); w.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, w.Code)
		}
	}
	if w := b.login(url.Values{"token": {e.tok[auth.RoleAdmin]}}); w.Code != http.StatusTooManyRequests {
		t.Fatalf("after %d failures: %d, want 429", maxFails, w.Code)
	}
	other := e.browser()
	other.remote = "198.51.100.7:1"
	if w := other.login(url.Values{"token": {e.tok[auth.RoleAdmin]}}); w.Code != http.StatusSeeOther {
		t.Fatalf("another address: %d", w.Code)
	}
	e.clock.add(failWindow)
	if w := b.login(url.Values{"token": {e.tok[auth.RoleAdmin]}}); w.Code != http.StatusSeeOther {
		t.Fatalf("after the window: %d", w.Code)
	}
}

func TestRevokedTokenEndsSession(t *testing.T) {
	e := newEnv(t)
	admin := e.loggedIn(auth.RoleAdmin)
	b := e.loggedIn(auth.RoleAnalyst)
	var id string
	toks, _ := e.c.opts.Tokens.List()
	for _, tk := range toks {
		if tk.Name == "t-analyst" {
			id = tk.ID
		}
	}
	if w := admin.do("POST", "/settings/tokens/"+id+"/revoke", url.Values{"csrf": {admin.csrf("/settings")}}); w.Code != http.StatusSeeOther {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if w := b.do("GET", "/", nil); w.Code != http.StatusSeeOther {
		t.Fatalf("session of a revoked token: %d", w.Code)
	}
}

func TestStaticAndNotFound(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for _, p := range []string{"/static/app.js", "/static/style.css"} {
		if w := b.do("GET", p, nil); w.Code != http.StatusOK || w.Header().Get("Content-Security-Policy") == "" {
			t.Fatalf("GET %s: %d", p, w.Code)
		}
	}
	if w := b.do("GET", "/static/", nil); w.Code != http.StatusNotFound {
		t.Fatalf("static listing: %d", w.Code)
	}
	if w := b.do("GET", "/api/v1/nothing", nil); w.Code != http.StatusUnauthorized && w.Code != http.StatusNotFound {
		t.Fatalf("API path: %d", w.Code)
	} else if !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("API path answered by the console: %s", w.Header().Get("Content-Type"))
	}
	if w := e.loggedIn(auth.RoleViewer).do("GET", "/nothing", nil); w.Code != http.StatusNotFound {
		t.Fatalf("unknown page: %d", w.Code)
	}
}

// TestJavaScriptBudget: the console's script stays small (the issue's
// bound is 60 KB).
func TestJavaScriptBudget(t *testing.T) {
	total := 0
	entries, _ := assets.ReadDir("static")
	for _, en := range entries {
		if strings.HasSuffix(en.Name(), ".js") {
			b, _ := assets.ReadFile("static/" + en.Name())
			total += len(b)
		}
	}
	if total == 0 || total > 60<<10 {
		t.Fatalf("JavaScript: %d bytes, want 1 to %d", total, 60<<10)
	}
}

// TestNoInlineScriptOrStyle: no template holds inline script, an event
// handler attribute or a style attribute (the CSP would block them).
func TestNoInlineScriptOrStyle(t *testing.T) {
	bad := regexp.MustCompile(`(?i)<script>|<script [^>]*>[^<]|\son[a-z]+=|\sstyle=|<style`)
	entries, _ := assets.ReadDir("templates")
	for _, en := range entries {
		b, _ := assets.ReadFile("templates/" + en.Name())
		if m := bad.Find(b); m != nil {
			t.Errorf("%s: %q", en.Name(), m)
		}
	}
}

func newEnvLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
