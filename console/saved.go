package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect/sigma"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// Saved hunt queries (Hunt page) and rule tests (Rules page): both go
// through the API (GET/POST/DELETE /api/v1/hunt/saved, POST
// /api/v1/rules/test), which checks the role and audits the writes.

// savedQueries reads the saved hunt queries the session may see (its
// own, the shared ones, every one for an admin) for the Hunt page; a
// server without the route (ENOTFOUND) has none.
func (c *Console) savedQueries(r *http.Request, s *session) ([]store.SavedQuery, error) {
	var l api.List[store.SavedQuery]
	err := c.callAPI(r, s, "GET", api.Prefix+"/hunt/saved", nil, &l)
	if vigil.ErrorCode(err) == vigil.ENOTFOUND {
		return nil, nil
	}
	return l.Items, err
}

// saveQuery is POST /hunt/saved: name, q, shared ("on" shares it with
// everyone) and author (an admin changing another's query; the API
// refuses it to others).
func (c *Console) saveQuery(w http.ResponseWriter, r *http.Request, s *session) error {
	q := r.PostFormValue("q")
	in := web.SavedQueryRequest{Name: r.PostFormValue("name"), Query: q, Shared: r.PostFormValue("shared") == "on", Author: r.PostFormValue("author")}
	err := c.callAPI(r, s, "POST", api.Prefix+"/hunt/saved", in, nil)
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/hunt?"+url.Values{"q": {q}, "done": {"saved"}}.Encode(), http.StatusSeeOther)
	return nil
}

// deleteQuery is POST /hunt/saved/{name}/delete, with author when it is
// not the caller's own (admins only: the API refuses it to others).
func (c *Console) deleteQuery(w http.ResponseWriter, r *http.Request, s *session) error {
	p := api.Prefix + "/hunt/saved/" + url.PathEscape(r.PathValue("name"))
	if a := r.PostFormValue("author"); a != "" {
		p += "?" + url.Values{"author": {a}}.Encode()
	}
	if err := c.callAPI(r, s, "DELETE", p, nil, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/hunt?done=unsaved", http.StatusSeeOther)
	return nil
}

// ruleTestData is the rule test form and its outcome on the Rules page.
type ruleTestData struct {
	YAML   string
	Limit  string
	Since  string
	Ran    bool
	Err    string
	Result web.RuleTestResponse
}

// ruleTestRows is how many matches the page shows.
const ruleTestRows = 200

// testRule is POST /rules/test: rule (the YAML), limit, since. It shows
// the Rules page with the matches, or the API's error (a bad rule, with
// its line) next to the rule as it was pasted.
func (c *Console) testRule(w http.ResponseWriter, r *http.Request, s *session) error {
	d := ruleTestData{YAML: r.PostFormValue("rule"), Limit: strings.TrimSpace(r.PostFormValue("limit")), Since: strings.TrimSpace(r.PostFormValue("since")), Ran: true}
	in := web.RuleTestRequest{RuleYAML: d.YAML, Since: d.Since}
	if d.Limit != "" {
		n, ok := atoiPos(d.Limit)
		if !ok {
			d.Err = "events: want a whole number of events, e.g. 10000"
			return c.rulesPage(w, r, s, &d)
		}
		in.Limit = n
	}
	err := c.callAPI(r, s, "POST", api.Prefix+"/rules/test", in, &d.Result)
	switch {
	case vigil.ErrorCode(err) == vigil.EINVALID:
		d.Err = vigil.ErrorMessage(err)
	case err != nil:
		return err
	}
	if len(d.Result.Items) > ruleTestRows {
		d.Result.Items, d.Result.Truncated = d.Result.Items[:ruleTestRows], true
	}
	return c.rulesPage(w, r, s, &d)
}

func atoiPos(s string) (int, bool) {
	n := 0
	for _, ch := range s {
		if ch < '0' || ch > '9' || n > 1e8 {
			return 0, false
		}
		n = n*10 + int(ch-'0')
	}
	return n, n > 0
}

// formatMatch renders one matched value of a rule test.
func formatMatch(m vigil.Match) string { return sigma.FormatMatch(m) }
