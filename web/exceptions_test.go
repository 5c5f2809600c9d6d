package web

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/alert"
	"github.com/vigil-iot/vigil/web/api"
)

// TestExceptionRoutes creates, lists and deletes exceptions through the
// API: the server sets id, author and creation; bad bodies are refused
// with what is wrong; each create and delete is audited; Changed is
// called; suggestions of a false positive come back ready to post.
func TestExceptionRoutes(t *testing.T) {
	changed := 0
	e := newEnv(t, func(o *Options) {
		o.Extra = ExceptionRoutes(ExceptionsAPI{Store: o.Store, Clock: fixedClock(now), Changed: func() { changed++ }})
	})
	ctx := context.Background()
	code, body, _ := e.do("POST", "/api/v1/exceptions", "analyst",
		`{"rule_id":"r1","device_id":"cam-1","field":"source.ip","value":"10.0.0.5","ttl":"30d","reason":"IT scanner"}`)
	if code != 201 {
		t.Fatalf("create = %d %s", code, body)
	}
	var v ExceptionView
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	if v.ID == "" || v.Author != "token:test-analyst" || !v.Created.Equal(now) || !v.Expires.Equal(now.Add(30*24*time.Hour)) ||
		v.Scope != "device cam-1 and source.ip=10.0.0.5" || !v.Active {
		t.Fatalf("created %+v", v)
	}
	for _, bad := range []struct{ body, want string }{
		{`{"rule_id":"r1","ttl":"1h","reason":"x"}`, "needs a scope"},
		{`{"rule_id":"r1","device_id":"d","reason":"x"}`, "needs an expiry"},
		{`{"rule_id":"r1","device_id":"d","ttl":"-1h","reason":"x"}`, "positive"},
		{`{"rule_id":"r1","device_id":"d","ttl":"800d","reason":"x"}`, "more than 366 days"},
		{`{"rule_id":"r1","device_id":"d","expires":"2020-01-01T00:00:00Z","reason":"x"}`, "not in the future"},
		{`{"rule_id":"r1","device_id":"d","ttl":"1h"}`, "reason is required"},
		{`{"rule_id":"r1","device_id":"d","ttl":"1h","reason":"x","bogus":1}`, "unknown field"},
	} {
		code, body, _ := e.do("POST", "/api/v1/exceptions", "analyst", bad.body)
		if code != 400 || !strings.Contains(string(body), bad.want) {
			t.Errorf("create %s = %d %s, want 400 saying %q", bad.body, code, body, bad.want)
		}
	}
	if code, _, _ := e.do("POST", "/api/v1/exceptions", "viewer", `{"rule_id":"r1","device_id":"d","ttl":"1h","reason":"x"}`); code != 403 {
		t.Errorf("create as viewer = %d, want 403", code)
	}
	var l api.List[ExceptionView]
	e.get("/api/v1/exceptions", 200, &l)
	if len(l.Items) != 1 || l.Items[0].ID != v.ID {
		t.Fatalf("list = %+v", l.Items)
	}
	e.get("/api/v1/exceptions?active=false", 200, &l)
	if len(l.Items) != 0 {
		t.Fatalf("list of expired = %+v", l.Items)
	}
	if code, _, _ := e.do("DELETE", "/api/v1/exceptions/"+v.ID, "analyst", ""); code != 204 {
		t.Fatalf("delete = %d", code)
	}
	if code, _, _ := e.do("DELETE", "/api/v1/exceptions/"+v.ID, "analyst", ""); code != 404 {
		t.Fatalf("delete again = %d, want 404", code)
	}
	if changed != 2 {
		t.Errorf("Changed called %d times, want 2", changed)
	}

	// Suggestions of a false positive post back as they are.
	if err := e.store.PutDevice(ctx, vigil.Device{ID: "cam-9", Class: "camera"}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutAlert(ctx, vigil.Alert{ID: "a1", RuleID: "r2", DeviceID: "cam-9", IncidentID: "inc-1", Created: now.Add(-time.Hour), Count: 4}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutIncident(ctx, vigil.Incident{ID: "inc-1", Status: vigil.IncidentFalsePositive, AlertIDs: []string{"a1"}, Detected: now}); err != nil {
		t.Fatal(err)
	}
	var sl api.List[alert.Suggestion]
	e.get("/api/v1/incidents/inc-1/exception-suggestions?days=7", 200, &sl)
	if len(sl.Items) != 1 || sl.Items[0].Fired != 4 || sl.Items[0].Days != 7 {
		t.Fatalf("suggestions = %+v", sl.Items)
	}
	b, _ := json.Marshal(sl.Items[0].Exception)
	if code, body, _ := e.do("POST", "/api/v1/exceptions", "analyst", string(b)); code != 201 {
		t.Fatalf("accepting the suggestion = %d %s", code, body)
	}
	e.get("/api/v1/incidents/inc-1/exception-suggestions?days=0", 400, nil)

	recs, err := e.store.ListAudit(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ok []string
	for _, r := range recs {
		if r.Outcome == vigil.OutcomeOK {
			ok = append(ok, r.Action+" "+r.Object[:len("exception:")])
		}
	}
	want := []string{"exception.create exception:", "exception.delete exception:", "exception.create exception:"}
	if strings.Join(ok, ",") != strings.Join(want, ",") {
		t.Errorf("audit records ok = %v, want %v", ok, want)
	}
	if len(recs) != 3+9 { // and one refused or denied record per bad request, the denied one and the second delete
		t.Errorf("%d audit records, want 12", len(recs))
	}
}
