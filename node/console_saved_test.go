package node

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/store"
)

// TestConsoleSavedQueries: on the Hunt page an analyst saves the query
// shown, the saved queries are listed as links for every role, a bad
// query is refused with its position, a viewer sees no save form nor
// delete button and is refused when posting by hand; the analyst deletes
// it; every write is the API's, audited under the user's name.
func TestConsoleSavedQueries(t *testing.T) {
	a := startTestApp(t)
	seedConsole(t, a)
	ana, vic := newConsoleClient(t, a), newConsoleClient(t, a)
	ana.login("ana")
	vic.login("vic")
	csrf := ana.csrf("/")
	if _, body := ana.get("/hunt"); !strings.Contains(body, "No saved query yet.") || strings.Contains(body, `id="save-query"`) {
		t.Fatalf("hunt page without a query:\n%s", body)
	}
	q := `kind=auth outcome=failure | top limit=3 user.name`
	if _, body := ana.get("/hunt?" + url.Values{"q": {q}}.Encode()); !strings.Contains(body, `id="save-query"`) || !strings.Contains(body, `id="save-shared"`) {
		t.Fatalf("no save form after a hunt:\n%s", body)
	}
	code, _ := ana.post("/hunt/saved", url.Values{"csrf": {csrf}, "name": {"failed logins"}, "q": {q}, "shared": {"on"}})
	if code != http.StatusSeeOther {
		t.Fatalf("save = %d", code)
	}
	if code, _ := ana.post("/hunt/saved", url.Values{"csrf": {csrf}, "name": {"mine only"}, "q": {"kind=auth"}}); code != http.StatusSeeOther {
		t.Fatalf("save a private one = %d", code)
	}
	if code, body := ana.post("/hunt/saved", url.Values{"csrf": {csrf}, "name": {"bad"}, "q": {"| stats count by"}}); code != http.StatusBadRequest || !strings.Contains(body, "position") {
		t.Fatalf("saving a bad query = %d %.400s", code, body)
	}
	_, body := ana.get("/hunt?done=saved")
	for _, want := range []string{"Query saved.", `>failed logins</a>`, `>mine only</a>`, `action="/hunt/saved/failed%20logins/delete"`,
		`action="/hunt/saved/mine%20only/delete"`, "yours", ">shared</span>", ">private</span>"} {
		if !strings.Contains(body, want) {
			t.Errorf("analyst's hunt page: no %q", want)
		}
	}
	_, body = vic.get("/hunt?" + url.Values{"q": {q}}.Encode())
	if !strings.Contains(body, `>failed logins</a>`) || strings.Contains(body, "mine only") || strings.Contains(body, "/delete") || strings.Contains(body, `id="save-query"`) {
		t.Errorf("viewer's hunt page: want the shared query only, without forms\n%s", body)
	}
	ada := newConsoleClient(t, a)
	ada.login("ada")
	_, body = ada.get("/hunt")
	for _, want := range []string{`>failed logins</a>`, `>mine only</a>`, `<input type="hidden" name="author" value="user:ana">`, "user:ana"} {
		if !strings.Contains(body, want) {
			t.Errorf("admin's hunt page: no %q", want)
		}
	}
	vcsrf := vic.csrf("/")
	if code, _ := vic.post("/hunt/saved/failed%20logins/delete", url.Values{"csrf": {vcsrf}}); code != http.StatusForbidden {
		t.Errorf("viewer's delete = %d, want 403", code)
	}
	if code, _ := vic.post("/hunt/saved", url.Values{"csrf": {vcsrf}, "name": {"x"}, "q": {"kind=auth"}}); code != http.StatusForbidden {
		t.Errorf("viewer's save = %d, want 403", code)
	}
	stored := func() string {
		t.Helper()
		qs, err := a.store.ListSavedQueries(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, q := range qs {
			out = append(out, fmt.Sprintf("%s/%s=%s shared=%v", q.Author, q.Name, q.Query, q.Shared))
		}
		return strings.Join(out, ", ")
	}
	if got, want := stored(), "user:ana/failed logins="+q+" shared=true, user:ana/mine only=kind=auth shared=false"; got != want {
		t.Fatalf("stored: %s\nwant %s", got, want)
	}
	// The link runs the query.
	if _, body := vic.get("/hunt?" + url.Values{"q": {q}}.Encode()); !strings.Contains(body, `id="hunt-result"`) {
		t.Errorf("the saved query's link does not run it")
	}
	// Its author shares the private one (the Share button's form).
	if code, _ := ana.post("/hunt/saved", url.Values{"csrf": {csrf}, "name": {"mine only"}, "q": {"kind=auth"}, "shared": {"on"}}); code != http.StatusSeeOther {
		t.Fatalf("share = %d", code)
	}
	if _, body := vic.get("/hunt"); !strings.Contains(body, "mine only") {
		t.Errorf("the viewer does not see the query shared since")
	}
	// The admin deletes the analyst's; the analyst deletes her other one.
	if code, _ := ada.post("/hunt/saved/mine%20only/delete", url.Values{"csrf": {ada.csrf("/")}, "author": {"user:ana"}}); code != http.StatusSeeOther {
		t.Fatalf("admin's delete = %d", code)
	}
	if code, _ := ana.post("/hunt/saved/failed%20logins/delete", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther {
		t.Fatalf("delete = %d", code)
	}
	if got := stored(); got != "" {
		t.Fatalf("after delete: %s", got)
	}
	recs, err := a.store.ListAudit(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, r := range recs {
		if strings.HasPrefix(r.Action, "hunt.") && r.Action != "hunt.run" {
			seen = append(seen, r.Actor+" "+r.Action+" "+r.Outcome)
		}
	}
	want := "user:ana hunt.save ok,user:ana hunt.save ok,user:ana hunt.save refused,user:vic hunt.unsave denied,user:vic hunt.save denied," +
		"user:ana hunt.save ok,user:ada hunt.unsave ok,user:ana hunt.unsave ok"
	if strings.Join(seen, ",") != want {
		t.Errorf("audit: %v\nwant %s", seen, want)
	}

}

// consoleTestRule matches the auth events of user root.
const consoleTestRule = `title: Root logins
id: 7d7c0d8e-0000-4000-8000-0000000000aa
logsource:
  category: authentication
detection:
  selection:
    user.name: root
  condition: selection
level: high
`

// TestConsoleRuleTest: on the Rules page an analyst pastes a Sigma rule
// and sees the stored events it matches with why; bad YAML is shown with
// its line and the rule kept in the box; nothing is stored; a viewer has
// no form and is refused.
func TestConsoleRuleTest(t *testing.T) {
	a := startTestApp(t)
	seedConsole(t, a)
	seedInvestigation(t, a)
	ana, vic := newConsoleClient(t, a), newConsoleClient(t, a)
	ana.login("ana")
	vic.login("vic")
	csrf := ana.csrf("/")
	if _, body := ana.get("/rules"); !strings.Contains(body, `id="rule-yaml"`) {
		t.Fatalf("no rule test form for an analyst")
	}
	alerts, _, _ := a.store.ListAlerts(t.Context(), store.AlertFilter{})
	code, body := ana.post("/rules/test", url.Values{"csrf": {csrf}, "rule": {consoleTestRule}, "limit": {"1000"}})
	if code != http.StatusOK {
		t.Fatalf("rule test = %d %.500s", code, body)
	}
	// seedInvestigation stored 4 auth events of root (3 failures, 1 success).
	for _, want := range []string{`id="rule-test-result"`, "4 of 142 events matched", `user.name=&#34;root&#34;`, "Root logins", `href="/devices/camera-01"`} {
		if !strings.Contains(body, want) {
			t.Errorf("rule test page: no %q", want)
		}
	}
	if !strings.Contains(body, "title: Root logins") {
		t.Errorf("the rule is not kept in the box")
	}
	code, body = ana.post("/rules/test", url.Values{"csrf": {csrf}, "rule": {"title: x\ndetection:\n  selection:\n    a: [1\n"}})
	if code != http.StatusOK || !strings.Contains(body, `id="rule-test-error"`) || !strings.Contains(body, "line 3") {
		t.Errorf("bad YAML = %d, want the error with its line\n%.3000s", code, body)
	}
	if after, _, _ := a.store.ListAlerts(t.Context(), store.AlertFilter{}); len(after) != len(alerts) {
		t.Errorf("a rule test stored alerts: %d, then %d", len(alerts), len(after))
	}
	if _, body := vic.get("/rules"); strings.Contains(body, `id="rule-yaml"`) {
		t.Errorf("a viewer has the rule test form")
	}
	if code, _ := vic.post("/rules/test", url.Values{"csrf": {vic.csrf("/")}, "rule": {consoleTestRule}}); code != http.StatusForbidden {
		t.Errorf("viewer's rule test = %d, want 403", code)
	}
	recs, _ := a.store.ListAudit(t.Context(), 0, 0)
	var seen []string
	for _, r := range recs {
		if r.Action == "rules.test" {
			seen = append(seen, r.Actor+" "+r.Outcome)
		}
	}
	if strings.Join(seen, ",") != "user:ana ok,user:ana refused,user:vic denied" {
		t.Errorf("audit of rules.test: %v", seen)
	}
}
