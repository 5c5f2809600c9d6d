package web

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/pki"
	"github.com/vigil-iot/vigil/web/api"
)

func TestErrorTable(t *testing.T) {
	f := func(err error, status int, code, msg string) {
		t.Helper()
		rec := httptest.NewRecorder()
		WriteError(rec, httptest.NewRequest("GET", "/x", nil), nil, err)
		var eb api.ErrorBody
		if jerr := json.Unmarshal(rec.Body.Bytes(), &eb); jerr != nil {
			t.Fatalf("%v: body %s: %v", err, rec.Body, jerr)
		}
		if rec.Code != status || eb.Error.Code != code || eb.Error.Message != msg {
			t.Errorf("WriteError(%v) = %d %+v, want %d %s %q", err, rec.Code, eb.Error, status, code, msg)
		}
	}
	f(vigil.Errorf(vigil.EINVALID, "bad"), 400, vigil.EINVALID, "bad")
	f(vigil.Errorf(vigil.EUNAUTHORIZED, "who"), 401, vigil.EUNAUTHORIZED, "who")
	f(vigil.Errorf(vigil.EFORBIDDEN, "no"), 403, vigil.EFORBIDDEN, "no")
	f(vigil.Errorf(vigil.ENOTFOUND, "gone"), 404, vigil.ENOTFOUND, "gone")
	f(vigil.Errorf(vigil.ECONFLICT, "taken"), 409, vigil.ECONFLICT, "taken")
	f(vigil.Errorf(vigil.ETOOLARGE, "big"), 413, vigil.ETOOLARGE, "big")
	f(vigil.Errorf(vigil.EBUSY, "full"), 429, vigil.EBUSY, "full")
	f(fmt.Errorf("cannot list: %w", vigil.Errorf(vigil.ENOTFOUND, "wrapped")), 404, vigil.ENOTFOUND, "wrapped")
	// Internal errors never show their detail.
	f(errors.New("disk /var/lib/vigil is full"), 500, vigil.EINTERNAL, "internal error")
	f(vigil.Errorf(vigil.EINTERNAL, "secret detail"), 500, vigil.EINTERNAL, "internal error")
	f(vigil.Errorf("weird", "x"), 500, "weird", "internal error")

	rec := httptest.NewRecorder()
	WriteError(rec, httptest.NewRequest("GET", "/x", nil), nil, vigil.Errorf(vigil.EBUSY, "full"))
	if rec.Header().Get("Retry-After") != RetryAfterSeconds {
		t.Fatalf("429 without Retry-After: %v", rec.Header())
	}
	rec = httptest.NewRecorder()
	rec.Header().Set("Retry-After", "7")
	WriteError(rec, httptest.NewRequest("GET", "/x", nil), nil, vigil.Errorf(vigil.EBUSY, "full"))
	if rec.Header().Get("Retry-After") != "7" {
		t.Fatalf("Retry-After set by the handler was replaced: %v", rec.Header())
	}
}

func TestUnmatchedRoutesAnswerJSON(t *testing.T) {
	e := newEnv(t, nil)
	code, body, _ := e.do("GET", "/api/v1/nothing", "admin", "")
	if code != 404 || errorCode(t, body) != vigil.ENOTFOUND {
		t.Fatalf("unknown route = %d %s", code, body)
	}
	code, body, hdr := e.do("PUT", "/api/v1/devices", "admin", "")
	if code != 405 || errorCode(t, body) != vigil.EINVALID || !strings.Contains(hdr.Get("Allow"), "GET") {
		t.Fatalf("wrong method = %d %s %v", code, body, hdr)
	}
}

func TestHandlerPanicIsA500(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Extra = []Route{{Method: "GET", Pattern: "/api/v1/boom", Perm: auth.PermRead,
			Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("secret state") })}}
	})
	code, body, _ := e.do("GET", "/api/v1/boom", "viewer", "")
	if code != 500 || strings.Contains(string(body), "secret") || errorCode(t, body) != vigil.EINTERNAL {
		t.Fatalf("panic = %d %s", code, body)
	}
	if !strings.Contains(e.logs.String(), "secret state") {
		t.Fatal("the panic was not logged")
	}
}

func TestProbes(t *testing.T) {
	var readyErr error
	e := newEnv(t, func(o *Options) {
		o.Ready = func(context.Context) error { return readyErr }
	})
	if code, body, _ := e.do("GET", "/healthz", "", ""); code != 200 || string(body) != `{"status":"ok"}`+"\n" {
		t.Fatalf("healthz = %d %s", code, body)
	}
	if code, body, _ := e.do("GET", "/readyz", "", ""); code != 200 {
		t.Fatalf("readyz = %d %s", code, body)
	}
	readyErr = errors.New("bus: connection closed")
	code, body, _ := e.do("GET", "/readyz", "", "")
	if code != 503 || !strings.Contains(string(body), "bus: connection closed") {
		t.Fatalf("readyz not ready = %d %s", code, body)
	}
	if code, _, _ := e.do("GET", "/healthz", "", ""); code != 200 {
		t.Fatalf("healthz while not ready = %d, want 200 (the process is up)", code)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, nil)
	e.do("GET", "/api/v1/devices", "viewer", "")
	code, body, _ := e.do("GET", "/metrics", "", "")
	if code != 200 || !strings.Contains(string(body), `vigil_http_requests_total{code="200",route="GET /api/v1/devices"} 1`) {
		t.Fatalf("metrics = %d\n%s", code, body)
	}

	locked := newEnv(t, func(o *Options) { o.MetricsAuth = true })
	if code, _, _ := locked.do("GET", "/metrics", "", ""); code != 401 {
		t.Fatalf("metrics with MetricsAuth and no token = %d, want 401", code)
	}
	if code, _, _ := locked.do("GET", "/metrics", "agent", ""); code != 403 {
		t.Fatalf("metrics with MetricsAuth as agent = %d, want 403", code)
	}
	if code, _, _ := locked.do("GET", "/metrics", "viewer", ""); code != 200 {
		t.Fatalf("metrics with MetricsAuth as viewer = %d, want 200", code)
	}

	none := newEnv(t, func(o *Options) { o.Gatherer = nil; o.Registerer = nil })
	if code, _, _ := none.do("GET", "/metrics", "", ""); code != 404 {
		t.Fatalf("metrics without a gatherer = %d, want 404", code)
	}
}

func TestRequestLog(t *testing.T) {
	e := newEnv(t, nil)
	e.do("GET", "/api/v1/devices?class=camera", "analyst", "")
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "request" && m["route"] == "GET /api/v1/devices" {
			found = true
			if m["component"] != "web" || m["status"] != 200.0 || m["token"] != "test-analyst" || m["level"] != "INFO" {
				t.Fatalf("request log = %s", line)
			}
		}
	}
	if !found {
		t.Fatalf("no request log line in:\n%s", e.logs)
	}
	if strings.Contains(e.logs.String(), e.tok[auth.RoleAnalyst]) {
		t.Fatal("a token secret is in the log")
	}
}

func TestListenPlainHTTPOnlyOnLoopback(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") })
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0", "192.0.2.1:0", "example.org:0", "not-an-addr"} {
		if s, err := Listen(ListenConfig{Addr: addr, PlainHTTP: true}, h); err == nil {
			s.Shutdown(context.Background())
			t.Errorf("plain HTTP on %q was allowed", addr)
		} else if vigil.ErrorCode(err) != vigil.EINVALID {
			t.Errorf("plain HTTP on %q: err = %v, want EINVALID", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		s, err := Listen(ListenConfig{Addr: addr, PlainHTTP: true}, h)
		if err != nil {
			t.Fatalf("plain HTTP on %s: %v", addr, err)
		}
		if !strings.HasPrefix(s.URL(), "http://") {
			t.Fatalf("URL = %s", s.URL())
		}
		res, err := http.Get(s.URL() + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(b) != "hi" {
			t.Fatalf("got %q", b)
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Listen(ListenConfig{Addr: "127.0.0.1:0"}, h); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Fatalf("TLS without a certificate: err = %v, want EINVALID", err)
	}
}

// listenTLS serves a test server over TLS on loopback with a fresh CA's
// server certificate, shut down when the test ends, and returns it, the
// CA and the test environment.
func listenTLS(t *testing.T) (*HTTPServer, *pki.CA, *env) {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.EnsureCA(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.EnsureServerCert(filepath.Join(dir, "pki"), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, nil)
	s, err := Listen(ListenConfig{Addr: "127.0.0.1:0", Certificate: &cert}, e.srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s, ca, e
}

func TestListenTLS(t *testing.T) {
	s, ca, e := listenTLS(t)
	if !strings.HasPrefix(s.URL(), "https://127.0.0.1:") {
		t.Fatalf("URL = %s", s.URL())
	}
	get := func(tc *tls.Config) (*http.Response, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		defer c.CloseIdleConnections()
		req, _ := http.NewRequest("GET", s.URL()+"/api/v1/devices", nil)
		req.Header.Set("Authorization", "Bearer "+e.tok[auth.RoleViewer])
		return c.Do(req)
	}
	res, err := get(&tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatalf("HTTPS with the CA pool: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS == nil || res.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("HTTPS answer %d, TLS %+v", res.StatusCode, res.TLS)
	}
	if _, err := get(&tls.Config{}); err == nil {
		t.Fatal("a client without Vigil's CA accepted the server certificate")
	}
	if _, err := get(&tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("TLS 1.1 was accepted")
	}
	// Plain HTTP to the TLS port gets nothing useful.
	if res, err := http.Get("http://" + s.Addr().String() + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Fatal("plain HTTP answered 200 on the TLS port")
		}
	}
}

func TestListenAndServeStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ListenAndServe(ctx, ListenConfig{Addr: "127.0.0.1:0", PlainHTTP: true}, http.NotFoundHandler())
	}()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ListenAndServe after cancel = %v", err)
	}
	if err := ListenAndServe(context.Background(), ListenConfig{Addr: "0.0.0.0:0", PlainHTTP: true}, http.NotFoundHandler()); err == nil {
		t.Fatal("ListenAndServe allowed plain HTTP on all interfaces")
	}
}
