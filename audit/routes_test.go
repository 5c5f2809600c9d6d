package audit_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/web/api"
)

func TestRoutes(t *testing.T) {
	st, db := trail(t, 5)
	mux := http.NewServeMux()
	for _, rt := range audit.Routes(st, nil) {
		mux.Handle(rt.Method+" "+rt.Pattern, rt.Handler)
	}
	get := func(path string, want int, out any) {
		t.Helper()
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != want {
			t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
		}
		if out != nil {
			json.Unmarshal(w.Body.Bytes(), out)
		}
	}
	var l api.List[vigil.AuditRecord]
	get("/api/v1/audit?limit=2", 200, &l)
	if len(l.Items) != 2 || l.NextCursor != "2" {
		t.Fatalf("%+v", l)
	}
	get("/api/v1/audit?cursor=4&limit=2", 200, &l)
	if len(l.Items) != 1 || l.Items[0].Seq != 5 || l.NextCursor != "" {
		t.Fatalf("%+v", l)
	}
	get("/api/v1/audit?limit=0", 400, nil)
	var rep audit.Report
	get("/api/v1/audit/verify", 200, &rep)
	if !rep.OK || rep.Records != 5 {
		t.Fatalf("%+v", rep)
	}
	exec(t, db, "UPDATE audit SET object = 'x' WHERE seq = 2")
	get("/api/v1/audit/verify", 200, &rep)
	if rep.OK || rep.BadSeq != 2 || rep.Problem != audit.ProblemHash {
		t.Fatalf("%+v", rep)
	}
}
