package web

import (
	"context"
	"net/http"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
)

// TestWriteRoutesAudited: every request to a write route with a valid
// token leaves one record with the token's name, the route's action, the
// object the handler named, and the outcome; reads, ingest and requests
// without a valid token leave none.
func TestWriteRoutesAudited(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Extra = []Route{
			{Method: "POST", Pattern: "/api/v1/things/{id}/zap", Perm: auth.PermWrite, Action: "thing.zap",
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.PathValue("id") == "missing" {
						WriteError(w, r, nil, vigil.Errorf(vigil.ENOTFOUND, "no thing"))
						return
					}
					if r.PathValue("id") == "boom" {
						panic("boom")
					}
					Audit(r, "thing:"+r.PathValue("id"), "zapped")
					w.WriteHeader(http.StatusNoContent)
				})},
			{Method: "DELETE", Pattern: "/api/v1/things/{id}", Perm: auth.PermAdmin,
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })},
		}
	})
	f := func(method, path, role string, want int) {
		t.Helper()
		if code, body, _ := e.do(method, path, role, ""); code != want {
			t.Fatalf("%s %s as %q = %d %s, want %d", method, path, role, code, body, want)
		}
	}
	f("POST", "/api/v1/things/t1/zap", "analyst", 204)
	f("POST", "/api/v1/things/missing/zap", "analyst", 404)
	f("POST", "/api/v1/things/t1/zap", "viewer", 403)
	f("POST", "/api/v1/things/t1/zap", "", 401) // no record: no valid token
	f("DELETE", "/api/v1/things/t2", "admin", 204)
	f("POST", "/api/v1/things/boom/zap", "admin", 500)
	f("GET", "/api/v1/devices", "analyst", 200) // a read: no record
	f("POST", PathBulkEvents, "agent", 202)     // the data path: no record
	f("POST", "/api/v1/tokens", "admin", 400)   // a built-in route, refused

	recs, err := e.store.ListAudit(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct{ actor, action, object, detail, outcome string }
	want := []rec{
		{"token:test-analyst", "thing.zap", "thing:t1", "zapped", vigil.OutcomeOK},
		{"token:test-analyst", "thing.zap", "/api/v1/things/missing/zap", "", vigil.OutcomeRefused},
		{"token:test-viewer", "thing.zap", "/api/v1/things/t1/zap", "", vigil.OutcomeDenied},
		{"token:test-admin", "DELETE /api/v1/things/{id}", "/api/v1/things/t2", "", vigil.OutcomeOK},
		{"token:test-admin", "thing.zap", "/api/v1/things/boom/zap", "", vigil.OutcomeFailed},
		{"token:test-admin", "token.create", "/api/v1/tokens", "", vigil.OutcomeRefused},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(recs), len(want), recs)
	}
	for i, r := range recs {
		if got := (rec{r.Actor, r.Action, r.Object, r.Detail, r.Outcome}); got != want[i] {
			t.Errorf("record %d = %+v, want %+v", i+1, got, want[i])
		}
	}
}
