package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
)

// TestWithCaller: a request served in-process with WithCaller acts as the
// caller's token without an Authorization header: its role is checked as
// a bearer token's is, and its audit record names the actor given.
func TestWithCaller(t *testing.T) {
	e := newEnv(t, nil)
	f := func(role auth.Role, want int) {
		t.Helper()
		ctx := WithCaller(context.Background(), auth.Token{ID: "user:alice", Name: "user:alice", Role: role}, "user:alice")
		r := httptest.NewRequestWithContext(ctx, "DELETE", "/api/v1/tokens/nope", nil)
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, r)
		if w.Code != want {
			t.Fatalf("as %s: %d %s, want %d", role, w.Code, w.Body, want)
		}
	}
	f(auth.RoleViewer, http.StatusForbidden)
	f(auth.RoleAdmin, http.StatusNotFound)
	recs, err := e.store.ListAudit(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Actor != "user:alice" || recs[0].Outcome != vigil.OutcomeDenied || recs[1].Outcome != vigil.OutcomeRefused {
		t.Fatalf("audit = %+v, want two records of user:alice, denied then refused", recs)
	}
	// Without the context, no token: 401.
	w := httptest.NewRecorder()
	e.srv.ServeHTTP(w, httptest.NewRequest("DELETE", "/api/v1/tokens/nope", nil))
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("without a caller: %d, want 401", w.Code)
	}
}
