package respond_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/respond"
	"github.com/vigil-iot/vigil/web/api"
)

func TestRoutes(t *testing.T) {
	e := newEnv(t, respond.Options{}, approvalPB)
	id := e.alert("al-1", "cam-1", "")[0].ID
	id2 := e.alert("al-2", "cam-2", "")[0].ID
	mux := http.NewServeMux()
	for _, rt := range e.eng.Routes() {
		mux.Handle(rt.Method+" "+rt.Pattern, rt.Handler)
	}
	do := func(method, path, user, body string, wantStatus int, out any) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if user != "" {
			req = req.WithContext(auth.NewContext(context.Background(), auth.Token{Name: user, Role: auth.RoleAnalyst}))
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != wantStatus {
			t.Fatalf("%s %s: %d %s, want %d", method, path, w.Code, w.Body, wantStatus)
		}
		if out != nil {
			if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
				t.Fatal(err)
			}
		}
	}
	var l api.List[respond.ActionView]
	do("GET", "/api/v1/actions?state=pending_approval", "alice", "", 200, &l)
	if len(l.Items) != 2 || l.Items[0].Engine.ApprovalsRequired != 2 || l.Items[0].Params["vigil.connector"] != "" {
		t.Fatalf("list %+v", l)
	}
	do("GET", "/api/v1/actions?state=bogus", "alice", "", 400, nil)
	do("GET", "/api/v1/actions?color=red", "alice", "", 400, nil)
	do("GET", "/api/v1/actions/nope", "alice", "", 404, nil)
	var v respond.ActionView
	do("POST", "/api/v1/actions/"+id+"/approve", "alice", "", 200, &v)
	do("POST", "/api/v1/actions/"+id+"/approve", "alice", "", 409, nil)
	do("POST", "/api/v1/actions/"+id+"/approve", "", "", 401, nil)
	do("POST", "/api/v1/actions/"+id+"/approve", "bob", "", 200, &v)
	if v.State != "approved" || strings.Join(v.Approvers, ",") != "alice,bob" {
		t.Fatalf("approved %+v", v)
	}
	e.eng.Wait()
	do("GET", "/api/v1/actions/"+id, "alice", "", 200, &v)
	if v.State != "succeeded" {
		t.Fatalf("after approval %+v", v)
	}
	do("POST", "/api/v1/actions/"+id2+"/deny", "carol", `{"reason":"maintenance"}`, 200, &v)
	if v.State != "denied" || v.Result != "denied by carol: maintenance" {
		t.Fatalf("denied %+v", v)
	}
	do("POST", "/api/v1/actions/"+id2+"/deny", "carol", `{"why":1}`, 400, nil)
	var pl api.List[map[string]any]
	do("GET", "/api/v1/playbooks", "alice", "", 200, &pl)
	if len(pl.Items) != 1 || pl.Items[0]["name"] != "quarantine" {
		t.Fatalf("playbooks %+v", pl)
	}
}
