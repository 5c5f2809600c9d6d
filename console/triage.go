package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/alert"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// Triage: priorities (vigil.Priority, docs/investigation.md) and
// exceptions (/api/v1/exceptions) in the console.

// ---- priority

// prioClass is the stylesheet class of a priority score: prio-hi from 70,
// prio-mid from 45, prio-lo below, prio-none without a priority.
func prioClass(p *vigil.Priority) string {
	switch {
	case p == nil:
		return "prio-none"
	case p.Score >= 70:
		return "prio-hi"
	case p.Score >= 45:
		return "prio-mid"
	}
	return "prio-lo"
}

// factorPoints writes what a priority factor added: "+45", "-10", or
// "×0.70" for the confidence multiplier.
func factorPoints(f vigil.PriorityFactor) string {
	if f.Name == "confidence" {
		return fmt.Sprintf("×%.2f", f.Points)
	}
	return fmt.Sprintf("%+.0f", f.Points)
}

// prioBands are the overview's rows of open incidents by priority score.
var prioBands = []struct {
	key      string
	min, max int
	class    string
}{
	{"70–100", 70, 100, "prio-hi"}, {"45–69", 45, 69, "prio-mid"}, {"0–44", 0, 44, "prio-lo"},
}

// byPriority counts incidents per priority band (and those without one).
func byPriority(incs []vigil.Incident) []countRow {
	counts := make([]int, len(prioBands)+1)
	for _, in := range incs {
		if in.Priority == nil {
			counts[len(prioBands)]++
			continue
		}
		for i, b := range prioBands {
			if in.Priority.Score >= b.min && in.Priority.Score <= b.max {
				counts[i]++
				break
			}
		}
	}
	out := make([]countRow, 0, len(counts))
	for i, b := range prioBands {
		out = append(out, countRow{Key: b.key, Count: counts[i], Class: b.class})
	}
	if n := counts[len(prioBands)]; n > 0 {
		out = append(out, countRow{Key: "none", Count: n, Class: "prio-none"})
	}
	return out
}

// listSort is the order of a list page: the "sort" parameter, else def.
func listSort(q url.Values, def string) (string, error) {
	s := q.Get("sort")
	if err := store.CheckSort(s); err != nil {
		return "", err
	}
	if s == "" {
		s = def
	}
	return s, nil
}

// ---- exceptions

// exceptionRow is one exception of the Exceptions page.
type exceptionRow = web.ExceptionView

// exceptions lists the exceptions (GET /api/v1/exceptions), with the add
// form for the roles that may write.
func (c *Console) exceptions(w http.ResponseWriter, r *http.Request, s *session) error {
	var res api.List[exceptionRow]
	if err := c.callAPI(r, s, "GET", api.Prefix+"/exceptions", nil, &res); err != nil {
		return err
	}
	// Active first, then the soonest to expire.
	slices.SortStableFunc(res.Items, func(a, b exceptionRow) int {
		if a.Active != b.Active {
			if a.Active {
				return -1
			}
			return 1
		}
		return a.Expires.Compare(b.Expires)
	})
	q := r.URL.Query()
	form := map[string]string{"ttl": "30d"}
	for _, k := range []string{"rule", "device", "class", "vendor", "model", "field", "value", "reason"} {
		if v := q.Get(k); v != "" {
			form[k] = v
		}
	}
	return c.page(w, r, s, "exceptions", "Exceptions", "exceptions", map[string]any{"Items": res.Items, "Form": form})
}

// createException creates an exception from the add form or from a
// suggestion's accept button (POST /api/v1/exceptions): rule, scope
// (device, class, vendor, model, field and value), reason, and an expiry:
// "expires" (RFC 3339, a suggestion's) or "ttl" (720h, 30d).
func (c *Console) createException(w http.ResponseWriter, r *http.Request, s *session) error {
	f := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	req := web.ExceptionRequest{Exception: vigil.Exception{RuleID: f("rule"), DeviceID: f("device"), Class: f("class"),
		Vendor: f("vendor"), Model: f("model"), Field: f("field"), Value: f("value"), Reason: f("reason")}, TTL: f("ttl")}
	if v := f("expires"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return vigil.Errorf(vigil.EINVALID, "expires %q: want an RFC 3339 time (2026-01-02T15:04:05Z)", v)
		}
		req.Expires, req.TTL = t, ""
	}
	if err := c.callAPI(r, s, "POST", api.Prefix+"/exceptions", req, nil); err != nil {
		return err
	}
	dest := backTo(r, "/exceptions") + "done=exception"
	if p, frag, ok := strings.Cut(backTo(r, "/exceptions"), "#"); ok { // the notice's parameter goes before the fragment
		sep := "?"
		if strings.Contains(p, "?") {
			sep = "&"
		}
		dest = p + sep + "done=exception#" + strings.TrimRight(frag, "?&")
	}
	http.Redirect(w, r, dest, http.StatusSeeOther)
	return nil
}

// deleteException removes an exception (DELETE /api/v1/exceptions/{id}).
func (c *Console) deleteException(w http.ResponseWriter, r *http.Request, s *session) error {
	if err := c.callAPI(r, s, "DELETE", api.Prefix+"/exceptions/"+url.PathEscape(r.PathValue("id")), nil, nil); err != nil {
		return err
	}
	http.Redirect(w, r, "/exceptions?done=exceptiondel", http.StatusSeeOther)
	return nil
}

// suggestionRow is a suggested exception on the page of an incident closed
// as a false positive; Accepted when an active exception already has its
// rule and scope.
type suggestionRow struct {
	alert.Suggestion
	Accepted bool
}

// suggestions are the exceptions proposed for a false positive
// (GET /api/v1/incidents/{id}/exception-suggestions), marked when already
// accepted.
func (c *Console) suggestions(r *http.Request, s *session, id string) ([]suggestionRow, error) {
	var ss api.List[alert.Suggestion]
	if err := c.callAPI(r, s, "GET", api.Prefix+"/incidents/"+url.PathEscape(id)+"/exception-suggestions", nil, &ss); err != nil {
		return nil, err
	}
	var have api.List[exceptionRow]
	if err := c.callAPI(r, s, "GET", api.Prefix+"/exceptions?active=true", nil, &have); err != nil {
		return nil, err
	}
	sameScope := func(a, b vigil.Exception) bool {
		return a.RuleID == b.RuleID && a.DeviceID == b.DeviceID && a.Class == b.Class && a.Vendor == b.Vendor &&
			a.Model == b.Model && a.Field == b.Field && a.Value == b.Value
	}
	out := make([]suggestionRow, 0, len(ss.Items))
	for _, sg := range ss.Items {
		row := suggestionRow{Suggestion: sg}
		for _, e := range have.Items {
			row.Accepted = row.Accepted || sameScope(e.Exception, sg.Exception)
		}
		out = append(out, row)
	}
	return out, nil
}
