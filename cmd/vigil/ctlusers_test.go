package main

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/node"
)

// TestCtlHuntSaved: `vigil ctl hunt --save` and `vigil ctl hunt saved`
// save, list and delete a saved query through the API.
func TestCtlHuntSaved(t *testing.T) {
	a := startTestApp(t)
	conn := []string{"--server", a.URL(), "--token", a.AdminToken(), "--ca", filepath.Join(a.Config().DataDir, "pki", "ca.crt")}
	ctl := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		cmd := newRootCmd()
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append(append([]string{"ctl", "hunt"}, args...), conn...))
		if err := cmd.ExecuteContext(t.Context()); err != nil {
			t.Fatalf("ctl hunt %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	if out := ctl("--save", "roots", "--shared", "user.name=root"); !strings.Contains(out, `saved "user.name=root" as roots`) {
		t.Errorf("ctl hunt --save: %s", out)
	}
	if out := ctl("saved"); !strings.Contains(out, "roots") || !strings.Contains(out, "token:") || !strings.Contains(out, "user.name=root") || !strings.Contains(out, "true") {
		t.Errorf("ctl hunt saved: %s", out)
	}
	if out := ctl("saved", "--delete", "roots"); !strings.Contains(out, "deleted the saved query roots") {
		t.Errorf("ctl hunt saved --delete: %s", out)
	}
}

// consolePassword is the password of the console users of these tests.
const consolePassword = "correct horse battery"

// TestCtlUsers: vigil ctl users add, list and remove go through the API,
// and the user added logs in to the console.
func TestCtlUsers(t *testing.T) {
	a := startTestApp(t)
	conn := []string{"--server", a.URL(), "--token", a.AdminToken(), "--ca", filepath.Join(a.Config().DataDir, "pki", "ca.crt")}
	ctl := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		cmd := newRootCmd()
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetIn(strings.NewReader(stdin))
		cmd.SetArgs(append(append([]string{"ctl", "users"}, args...), conn...))
		err := cmd.ExecuteContext(t.Context())
		return out.String(), err
	}
	if out, err := ctl("short\n", "add", "alice", "--role", "analyst"); err == nil {
		t.Fatalf("a short password was taken: %s", out)
	}
	if out, err := ctl(consolePassword+"\n", "add", "alice", "--role", "analyst"); err != nil || !strings.Contains(out, "user alice saved with role analyst") {
		t.Fatalf("users add: %v %s", err, out)
	}
	if out, err := ctl("", "list"); err != nil || !strings.Contains(out, "alice") || !strings.Contains(out, "analyst") {
		t.Fatalf("users list: %v %s", err, out)
	}
	cl := newConsoleClient(t, a)
	cl.login("alice")
	if code, _ := cl.get("/"); code != http.StatusOK {
		t.Fatalf("alice's overview: %d", code)
	}
	if out, err := ctl("", "remove", "alice"); err != nil {
		t.Fatalf("users remove: %v %s", err, out)
	}
	if code, _ := cl.get("/"); code != http.StatusSeeOther {
		t.Fatalf("removed alice's session: %d, want a redirect to the login page", code)
	}
}

// consoleClient is a browser-like HTTP client of the console: cookies, TLS
// with the server's CA.
type consoleClient struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newConsoleClient(t *testing.T, a *node.Node) *consoleClient {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.CAPool()}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &consoleClient{t: t, base: a.URL(), hc: hc}
}

var csrfValue = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *consoleClient) get(p string) (int, string) {
	c.t.Helper()
	res, err := c.hc.Get(c.base + p)
	if err != nil {
		c.t.Fatalf("GET %s: %v", p, err)
	}
	defer res.Body.Close()
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		return res.StatusCode, ""
	}
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (c *consoleClient) post(p string, form url.Values) (int, string) {
	c.t.Helper()
	res, err := c.hc.PostForm(c.base+p, form)
	if err != nil {
		c.t.Fatalf("POST %s: %v", p, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (c *consoleClient) csrf(p string) string {
	c.t.Helper()
	_, body := c.get(p)
	m := csrfValue.FindStringSubmatch(body)
	if m == nil {
		c.t.Fatalf("no CSRF token on %s", p)
	}
	return m[1]
}

func (c *consoleClient) login(user string) {
	c.t.Helper()
	code, body := c.post("/login", url.Values{"csrf": {c.csrf("/login")}, "username": {user}, "password": {consolePassword}})
	if code != http.StatusSeeOther {
		c.t.Fatalf("login as %s: %d %s", user, code, body)
	}
}
