package web

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
)

var wildcard = regexp.MustCompile(`\{[^}]+\}`)

// TestEveryRouteEveryRole walks every route the server registered, with
// every role and with no token, and checks the answer against the role
// table: 401 without a valid token, 403 when the role lacks the route's
// permission, anything else when it holds it.
func TestEveryRouteEveryRole(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MetricsAuth = false })
	routes := e.srv.Routes()

	// The routes the API promises; a route missing here fails loudly,
	// a new route is walked below without being listed.
	var have []string
	for _, r := range routes {
		have = append(have, r.Method+" "+r.Pattern)
	}
	for _, want := range []string{
		"GET /api/v1/devices", "GET /api/v1/devices/{id}", "GET /api/v1/alerts", "GET /api/v1/alerts/{id}",
		"GET /api/v1/incidents", "GET /api/v1/incidents/{id}", "GET /api/v1/events", "GET /api/v1/events/{id}",
		"GET /api/v1/tokens", "POST /api/v1/tokens", "DELETE /api/v1/tokens/{id}",
		"POST /api/v1/agent/report", "POST /api/v1/events",
		"GET /metrics", "GET /healthz", "GET /readyz",
		"GET /api/v1/rules", "POST /api/v1/rules/reload", "POST /api/v1/rules/enable", "POST /api/v1/rules/disable",
	} {
		if !slices.Contains(have, want) {
			t.Errorf("route %s is not registered", want)
		}
	}

	callers := append([]string{""}, func() (rs []string) {
		for _, r := range auth.Roles() {
			rs = append(rs, string(r))
		}
		return
	}()...)
	checked := 0
	for _, rt := range routes {
		path := wildcard.ReplaceAllString(rt.Pattern, "no-such-id")
		for _, caller := range callers {
			code, body, hdr := e.do(rt.Method, path, caller, "")
			name := fmt.Sprintf("%s %s as %q", rt.Method, path, caller)
			switch {
			case rt.Public:
				if code == http.StatusUnauthorized || code == http.StatusForbidden {
					t.Errorf("%s: public route answered %d", name, code)
				}
			case caller == "":
				if code != http.StatusUnauthorized {
					t.Errorf("%s = %d, want 401", name, code)
				} else if errorCode(t, body) != vigil.EUNAUTHORIZED || hdr.Get("WWW-Authenticate") == "" {
					t.Errorf("%s: 401 without the unauthorized code or WWW-Authenticate: %s", name, body)
				}
			case auth.Role(caller).Can(rt.Perm):
				if code == http.StatusUnauthorized || code == http.StatusForbidden {
					t.Errorf("%s = %d %s, want access (role %s holds %s)", name, code, body, caller, rt.Perm)
				}
			default:
				if code != http.StatusForbidden {
					t.Errorf("%s = %d, want 403 (role %s lacks %s)", name, code, caller, rt.Perm)
				} else if errorCode(t, body) != vigil.EFORBIDDEN {
					t.Errorf("%s: 403 without the forbidden code: %s", name, body)
				}
			}
			checked++
		}
	}
	if checked < 16*5 {
		t.Fatalf("checked only %d route×caller pairs", checked)
	}
}

func TestBadCredentials(t *testing.T) {
	e := newEnv(t, nil)
	f := func(header string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "/api/v1/devices", nil)
		req.Header.Set("Authorization", header)
		rec := newRecorder()
		e.srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized || errorCode(t, rec.Body.Bytes()) != vigil.EUNAUTHORIZED {
			t.Errorf("Authorization %q: %d %s, want 401", header, rec.Code, rec.Body)
		}
	}
	f("Bearer vgl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f("Bearer ")
	f("Basic " + e.tok[auth.RoleAdmin])
	f(e.tok[auth.RoleAdmin])
	// A revoked token stops working at once.
	if err := e.tokens.Revoke("test-viewer"); err != nil {
		t.Fatal(err)
	}
	f("Bearer " + e.tok[auth.RoleViewer])
	// The scheme is case-insensitive.
	req, _ := http.NewRequest("GET", "/api/v1/devices", nil)
	req.Header.Set("Authorization", "bearer "+e.tok[auth.RoleAnalyst])
	rec := newRecorder()
	e.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("lower-case bearer: %d %s", rec.Code, rec.Body)
	}
}

func TestIngestGetsTheCaller(t *testing.T) {
	e := newEnv(t, nil)
	code, body, _ := e.do("POST", PathAgentReport, string(auth.RoleAgent), "{}")
	if code != http.StatusAccepted || string(body) != `{"kind":"report","token":"test-agent"}`+"\n" {
		t.Fatalf("agent report = %d %s", code, body)
	}
	code, body, _ = e.do("POST", PathBulkEvents, string(auth.RoleAdmin), "{}")
	if code != http.StatusAccepted || string(body) != `{"kind":"events","token":"test-admin"}`+"\n" {
		t.Fatalf("bulk events = %d %s", code, body)
	}
	// The agent role reads nothing.
	if code, _, _ := e.do("GET", "/api/v1/events", string(auth.RoleAgent), ""); code != http.StatusForbidden {
		t.Fatalf("agent GET /api/v1/events = %d, want 403", code)
	}
}

func TestRouteValidation(t *testing.T) {
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	f := func(rt Route, wantErr bool) {
		t.Helper()
		e := newEnv(t, nil)
		_, err := NewServer(Options{Store: e.store, Tokens: e.tokens, Extra: []Route{rt}})
		if (err != nil) != wantErr {
			t.Errorf("NewServer with %s %s (perm %q public %v): err = %v, want error %v", rt.Method, rt.Pattern, rt.Perm, rt.Public, err, wantErr)
		}
	}
	f(Route{Method: "GET", Pattern: "/api/v1/x", Handler: h}, true)                            // no permission
	f(Route{Method: "GET", Pattern: "/api/v1/x", Public: true, Handler: h}, true)              // public API route
	f(Route{Method: "GET", Pattern: "/api/v1/devices", Perm: auth.PermRead, Handler: h}, true) // taken
	f(Route{Method: "GET", Pattern: "/api/v1/x", Perm: "root", Handler: h}, true)              // unknown permission
	f(Route{Method: "GET", Pattern: "/api/v1/x", Perm: auth.PermWrite}, true)                  // no handler
	f(Route{Method: "POST", Pattern: "/api/v1/actions/{id}/approve", Perm: auth.PermWrite, Handler: h}, false)
	f(Route{Method: "GET", Pattern: "/ui/", Public: true, Handler: h}, false)
}

func TestExtraRouteIsAuthorized(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Extra = []Route{{Method: "POST", Pattern: "/api/v1/actions/{id}/approve", Perm: auth.PermWrite,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, http.StatusOK, map[string]string{"approved": r.PathValue("id")})
			})}}
	})
	if code, body, _ := e.do("POST", "/api/v1/actions/a1/approve", "analyst", ""); code != 200 || string(body) != `{"approved":"a1"}`+"\n" {
		t.Fatalf("analyst approve = %d %s", code, body)
	}
	if code, _, _ := e.do("POST", "/api/v1/actions/a1/approve", "viewer", ""); code != 403 {
		t.Fatalf("viewer approve = %d, want 403", code)
	}
}
