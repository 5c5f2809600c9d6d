package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// view is what every page template gets.
type view struct {
	Title string
	Nav   string // the menu entry to mark current
	CSRF  string
	User  string // who is logged in ("" on the login page)
	Role  auth.Role
	Can   map[string]bool
	Notice,
	Error string
	Now  time.Time
	Data any
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// parseTemplates parses each page with the layout: one template set per
// page, so that pages define the same blocks.
func parseTemplates() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"ago": ago,
		"ts":  func(t time.Time) string { return fmtTime(t) },
		"tsms": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05.000") + " UTC"
		},
		"sev":         func(s vigil.Severity) string { return s.String() },
		"prio":        func(p *vigil.Priority) string { return p.String() },
		"prioCls":     prioClass,
		"factor":      factorPoints,
		"withParam":   withParam,
		"join":        strings.Join,
		"pct":         func(f float64) string { return fmt.Sprintf("%.0f%%", f) },
		"query":       urlQueryEscape,
		"dur":         fmtDuration,
		"add":         func(a, b int) int { return a + b },
		"evidence":    evidenceCount,
		"short":       shortID,
		"contains":    func(l []string, s string) bool { return contains(l, s) },
		"first":       func(page int) int { return page*listLimit + 1 },
		"formatMatch": formatMatch,
		"pathEscape":  url.PathEscape,
		"avgMicros": func(nanos, n uint64) string {
			if n == 0 {
				return "—"
			}
			return fmt.Sprintf("%.1f", float64(nanos)/float64(n)/1000)
		},
		"severities":   func() []string { return []string{"informational", "low", "medium", "high", "critical"} },
		"actionStates": func() []vigil.ActionState { return actionStates },
		"dict": func(kv ...any) (map[string]any, error) {
			if len(kv)%2 != 0 {
				return nil, fmt.Errorf("dict wants pairs")
			}
			m := map[string]any{}
			for i := 0; i < len(kv); i += 2 {
				k, ok := kv[i].(string)
				if !ok {
					return nil, fmt.Errorf("dict key %v is not a string", kv[i])
				}
				m[k] = kv[i+1]
			}
			return m, nil
		},
		"json": func(v any) string {
			b, _ := json.MarshalIndent(v, "", "  ")
			return string(b)
		},
	}
	files, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", f)
		if err != nil {
			return nil, fmt.Errorf("cannot parse console template %s: %w", f, err)
		}
		out[name] = t
	}
	return out, nil
}

var actionStates = []vigil.ActionState{vigil.ActionPendingApproval, vigil.ActionApproved, vigil.ActionDenied, vigil.ActionSent,
	vigil.ActionAcknowledged, vigil.ActionSucceeded, vigil.ActionFailed, vigil.ActionTimedOut, vigil.ActionRolledBack}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// render writes a page. A template failure is an internal error, logged.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	t, ok := c.pages[page]
	if !ok {
		c.log.Error("no such console template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if v.Now.IsZero() {
		v.Now = c.clock.Now()
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		c.log.Error("cannot render console page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// page renders a page of a logged-in session.
func (c *Console) page(w http.ResponseWriter, r *http.Request, s *session, name, title, nav string, data any) error {
	v := c.viewOf(r, s)
	v.Title, v.Nav, v.Data = title, nav, data
	c.render(w, r, http.StatusOK, name, v)
	return nil
}

func (c *Console) viewOf(r *http.Request, s *session) *view {
	v := &view{Now: c.clock.Now(), Can: map[string]bool{}}
	if s != nil {
		v.CSRF, v.Role = s.CSRF, s.role
		v.User = s.Name
		if !strings.HasPrefix(s.Subject, "user:") {
			v.User = "token " + s.Name
		}
		for _, p := range auth.Permissions() {
			v.Can[string(p)] = s.can(p)
		}
	}
	if r != nil {
		v.Notice = noticeText[r.URL.Query().Get("done")]
	}
	return v
}

// noticeText is what a page says after a write redirected to it (?done=).
var noticeText = map[string]string{
	"approved": "Action approved.", "denied": "Action denied.", "resolved": "Incident closed.",
	"rules": "Rules updated.", "user": "User saved.", "userdel": "User removed.", "token": "Token revoked.",
	"enroll": "Enrollment token removed.", "normal": "Learned as normal.",
	"isolate":       "Isolation requested: it waits for approval under Response actions.",
	"falsepositive": "Incident closed as a false positive. Exceptions for its alerts are suggested below.",
	"exception":     "Exception added.", "exceptiondel": "Exception removed.",
	"saved": "Query saved.", "unsaved": "Saved query removed.",
}

// renderError answers an error as a page with the status of its code.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, s *session, err error) {
	code := vigil.ErrorCode(err)
	status := web.StatusOf(code)
	msg := vigil.ErrorMessage(err)
	if status >= 500 {
		c.log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error (see the server log)"
	}
	v := c.viewOf(r, s)
	v.Title, v.Error = http.StatusText(status), msg
	v.Data = status
	c.render(w, r, status, "error", v)
}

// callAPI calls the REST API in-process as the session's caller and
// decodes its JSON answer into out (when not nil). An error answer
// becomes a vigil error with the API's code and message.
func (c *Console) callAPI(r *http.Request, s *session, method, p string, body, out any) error {
	rec, err := c.apiRaw(r, s, method, p, body)
	if err != nil {
		return err
	}
	if out != nil && rec.body.Len() > 0 {
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return fmt.Errorf("cannot decode API answer of %s %s: %w", method, p, err)
		}
	}
	return nil
}

// apiRaw calls the REST API in-process as the session's caller and
// returns its answer as it is (an error answer as an error).
func (c *Console) apiRaw(r *http.Request, s *session, method, p string, body any) (*recorder, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	tok, actor := s.caller()
	req, err := http.NewRequestWithContext(web.WithCaller(r.Context(), tok, actor), method, p, rd)
	if err != nil {
		return nil, err
	}
	req.RemoteAddr = r.RemoteAddr
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := &recorder{h: http.Header{}}
	c.opts.API.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status >= 400 {
		var eb api.ErrorBody
		if json.Unmarshal(rec.body.Bytes(), &eb) == nil && eb.Error.Code != "" {
			return nil, vigil.Errorf(eb.Error.Code, "%s", eb.Error.Message)
		}
		return nil, vigil.Errorf(vigil.EINTERNAL, "API %s %s answered %d", method, p, rec.status)
	}
	return rec, nil
}

// recorder keeps an in-process API answer.
type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.h }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}

func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "—"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

// ago says how long ago t was, relative to now, in the largest unit.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in the future"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}
