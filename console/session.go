package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/store"
)

// Cookie names. The __Host- prefix makes browsers refuse the cookie
// unless it is Secure, host-only and for path /.
const (
	SessionCookie    = "__Host-vigil_session"
	loginCSRFCookie  = "__Host-vigil_login"
	touchResolution  = time.Minute // LastSeen is written at most this often
	maxLoginBodySize = 8 << 10
)

// session is the logged-in caller of a request.
type session struct {
	store.Session
	role auth.Role
}

// can reports whether the session's role holds perm.
func (s *session) can(p auth.Permission) bool { return s != nil && s.role.Can(p) }

// caller is the token the API sees for the session (web.WithCaller) and
// the actor of its audit records.
func (s *session) caller() (auth.Token, string) {
	if strings.HasPrefix(s.Subject, "user:") {
		return auth.Token{ID: s.Subject, Name: s.Subject, Role: s.role}, s.Subject
	}
	return auth.Token{ID: strings.TrimPrefix(s.Subject, "token:"), Name: s.Name, Role: s.role}, "token:" + s.Name
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("console: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// current returns the request's valid session, or nil. It ends a session
// that is idle or too old, whose user is gone, or whose token was
// revoked or expired; a user's role is read again on every request.
func (c *Console) current(r *http.Request) *session {
	ck, err := r.Cookie(SessionCookie)
	if err != nil || ck.Value == "" || len(ck.Value) > 100 {
		return nil
	}
	ctx := r.Context()
	id := hashSecret(ck.Value)
	st, err := c.opts.Store.GetSession(ctx, id)
	if err != nil {
		if vigil.ErrorCode(err) != vigil.ENOTFOUND {
			c.log.Error("cannot read session", "err", err)
		}
		return nil
	}
	now := c.clock.Now()
	end := func(why string) *session {
		c.log.Info("session ended", "subject", st.Subject, "why", why)
		if err := c.opts.Store.DeleteSession(ctx, id); err != nil {
			c.log.Error("cannot delete session", "err", err)
		}
		return nil
	}
	if now.Sub(st.Created) >= c.opts.AbsoluteTimeout {
		return end("absolute timeout")
	}
	if now.Sub(st.LastSeen) >= c.opts.IdleTimeout {
		return end("idle timeout")
	}
	role := auth.Role(st.Role)
	switch {
	case strings.HasPrefix(st.Subject, "user:"):
		u, err := c.opts.Store.GetUser(ctx, strings.TrimPrefix(st.Subject, "user:"))
		if err != nil {
			return end("user removed")
		}
		role = auth.Role(u.Role)
	case strings.HasPrefix(st.Subject, "token:"):
		if !c.tokenAlive(strings.TrimPrefix(st.Subject, "token:"), now) {
			return end("token revoked or expired")
		}
	default:
		return end("unknown subject")
	}
	if !role.Valid() || role == auth.RoleAgent {
		return end("role cannot use the console")
	}
	if now.Sub(st.LastSeen) >= touchResolution {
		if err := c.opts.Store.TouchSession(ctx, id, now); err != nil {
			c.log.Warn("cannot touch session", "err", err)
		}
	}
	return &session{Session: st, role: role}
}

func (c *Console) tokenAlive(id string, now time.Time) bool {
	t, err := c.opts.Tokens.Get(id)
	switch {
	case vigil.ErrorCode(err) == vigil.ENOTFOUND:
		return false
	case err != nil:
		c.log.Error("cannot read the session's token", "err", err)
		return false
	}
	return !t.Expired(now)
}

// authed serves a route to a logged-in caller whose role holds the
// route's permission; others go to the login page (pages) or get 401
// (the live stream). A POST must carry the session's CSRF token.
func (c *Console) authed(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := c.current(r)
		if s == nil {
			if r.Method == http.MethodGet && rt.Pattern != "/live" {
				http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.renderError(w, r, nil, vigil.Errorf(vigil.EUNAUTHORIZED, "not logged in, or the session ended: log in again"))
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
			if !sameString(r.PostFormValue("csrf"), s.CSRF) {
				c.renderError(w, r, s, vigil.Errorf(vigil.EFORBIDDEN, "the form's CSRF token is missing or wrong: reload the page and try again"))
				return
			}
		} else if !s.can(rt.Perm) {
			// Writes are refused by the API, which audits the attempt;
			// pages are refused here.
			c.renderError(w, r, s, vigil.Errorf(vigil.EFORBIDDEN, "role %s may not %s: this page needs the %s permission", s.role, rt.Perm, rt.Perm))
			return
		}
		if err := rt.handler(w, r, s); err != nil {
			c.renderError(w, r, s, err)
		}
	})
}

func sameString(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.current(r) != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	c.renderLogin(w, r, http.StatusOK, "")
}

func (c *Console) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	tok := randomString(24)
	setCookie(w, loginCSRFCookie, tok, 3600)
	w.Header().Set("Cache-Control", "no-store")
	c.render(w, r, status, "login", &view{Title: "Log in", CSRF: tok, Data: map[string]string{"Error": msg, "Next": safeNext(r.FormValue("next"))}})
}

// safeNext keeps a redirect after login on this site: a local path only.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}

// loginSubmit logs in with an API token or a user name and password. The
// form carries the token of the login cookie (CSRF on the login form).
func (c *Console) loginSubmit(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBodySize)
	ck, err := r.Cookie(loginCSRFCookie)
	if err != nil || !sameString(r.PostFormValue("csrf"), ck.Value) {
		c.renderLogin(w, r, http.StatusForbidden, "The login form expired: try again.")
		return
	}
	key := clientKey(r.RemoteAddr)
	now := c.clock.Now()
	if wait := c.login.wait(key, now); wait > 0 {
		c.renderLogin(w, r, http.StatusTooManyRequests, "Too many failed logins from this address: wait "+wait.Round(time.Second).String()+".")
		return
	}
	var st store.Session
	token := strings.TrimSpace(r.PostFormValue("token"))
	name := strings.TrimSpace(r.PostFormValue("username"))
	switch {
	case token != "":
		t, err := c.opts.Tokens.Verify(token)
		if err != nil || t.Role == auth.RoleAgent {
			c.login.fail(key, now)
			c.auditLogin(r, "token", "failed", "")
			c.renderLogin(w, r, http.StatusUnauthorized, "Unknown, revoked or expired token (agent tokens cannot log in).")
			return
		}
		st = store.Session{Subject: "token:" + t.ID, Name: t.Name, Role: string(t.Role)}
	case name != "":
		u, err := c.opts.Store.GetUser(r.Context(), name)
		pw := r.PostFormValue("password")
		if err != nil {
			// Spend the same time as a real check: no user enumeration.
			auth.VerifyPassword(dummyHash, pw)
		}
		if err != nil || !auth.VerifyPassword(u.PasswordHash, pw) {
			c.login.fail(key, now)
			c.auditLogin(r, "user:"+name, "failed", "")
			c.renderLogin(w, r, http.StatusUnauthorized, "Wrong user name or password.")
			return
		}
		st = store.Session{Subject: "user:" + u.Name, Name: u.Name, Role: u.Role}
	default:
		c.renderLogin(w, r, http.StatusBadRequest, "Give an API token, or a user name and password.")
		return
	}
	secret := randomString(32)
	st.ID, st.CSRF, st.Created, st.LastSeen = hashSecret(secret), randomString(24), now, now
	if err := c.opts.Store.PutSession(r.Context(), st); err != nil {
		c.log.Error("cannot store session", "err", err)
		c.renderLogin(w, r, http.StatusInternalServerError, "Cannot log in now: the store failed.")
		return
	}
	if _, err := c.opts.Store.DeleteSessionsBefore(r.Context(), now.Add(-c.opts.AbsoluteTimeout), now.Add(-c.opts.IdleTimeout)); err != nil {
		c.log.Warn("cannot remove expired sessions", "err", err)
	}
	setCookie(w, loginCSRFCookie, "", -1)
	setCookie(w, SessionCookie, secret, int(c.opts.AbsoluteTimeout/time.Second))
	subject := st.Subject
	if strings.HasPrefix(subject, "token:") {
		subject = "token:" + st.Name
	}
	c.auditLogin(r, subject, vigil.OutcomeOK, "role="+st.Role)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// dummyHash is checked against when the user does not exist.
var dummyHash, _ = auth.HashPassword(randomString(16))

func (c *Console) auditLogin(r *http.Request, actor, outcome, detail string) {
	rec := vigil.AuditRecord{Time: c.clock.Now().UTC(), Actor: actor, Action: "console.login", Object: "console", Detail: detail, Outcome: outcome}
	if outcome == "failed" {
		rec.Outcome = vigil.OutcomeDenied
		rec.Detail = "from " + r.RemoteAddr
	}
	if _, err := c.opts.Store.AppendAudit(r.Context(), rec); err != nil {
		c.log.Error("cannot audit login", "err", err)
	}
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	s := c.current(r)
	if s != nil {
		if !sameString(r.PostFormValue("csrf"), s.CSRF) {
			c.renderError(w, r, s, vigil.Errorf(vigil.EFORBIDDEN, "the form's CSRF token is missing or wrong"))
			return
		}
		if err := c.opts.Store.DeleteSession(r.Context(), s.ID); err != nil {
			c.log.Error("cannot delete session", "err", err)
		}
		actor := s.Subject
		if !strings.HasPrefix(actor, "user:") {
			actor = "token:" + s.Name
		}
		if _, err := c.opts.Store.AppendAudit(r.Context(), vigil.AuditRecord{Time: c.clock.Now().UTC(), Actor: actor,
			Action: "console.logout", Object: "console", Outcome: vigil.OutcomeOK}); err != nil {
			c.log.Error("cannot audit logout", "err", err)
		}
	}
	setCookie(w, SessionCookie, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// loginLimiter slows password and token guessing: after maxFails failed
// logins from one address (a /24 or /64) within failWindow, further
// attempts wait until the window has passed.
type loginLimiter struct {
	mu    sync.Mutex
	fails map[netip.Prefix][]time.Time
}

const (
	maxFails   = 5
	failWindow = time.Minute
)

func newLoginLimiter() *loginLimiter { return &loginLimiter{fails: map[netip.Prefix][]time.Time{}} }

func (l *loginLimiter) recent(k netip.Prefix, now time.Time) []time.Time {
	ts := l.fails[k]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= failWindow {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.fails, k)
	} else {
		l.fails[k] = ts
	}
	return ts
}

func (l *loginLimiter) wait(k netip.Prefix, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.recent(k, now)
	if len(ts) < maxFails {
		return 0
	}
	return failWindow - now.Sub(ts[0])
}

func (l *loginLimiter) fail(k netip.Prefix, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fails) > 100000 { // bounded memory under a spray of addresses
		clear(l.fails)
	}
	l.fails[k] = append(l.recent(k, now), now)
}

func clientKey(remote string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Prefix{}
	}
	a := ap.Addr().Unmap()
	bits := 24
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}
