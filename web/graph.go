package web

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/graph"
	"github.com/vigil-iot/vigil/investigate"
	"github.com/vigil-iot/vigil/web/api"
)

// Investigation is what the investigation routes serve (see
// InvestigationRoutes).
type Investigation struct {
	// Investigator answers every route. Required.
	Investigator *investigate.Investigator
	// Clock reads relative times ("since=24h"); default: system clock.
	Clock vigil.Clock
	// Logger receives the errors of failed requests.
	Logger *slog.Logger
}

// InvestigationRoutes are the read-only routes of investigation, given to
// Options.Extra:
//
//	GET /api/v1/graph?entity=E&depth=N&since=S     the entity graph around E (graph.View)
//	GET /api/v1/incidents/{id}/blast-radius        investigate.BlastRadius
//	GET /api/v1/incidents/{id}/report              the incident report, HTML
//	GET /api/v1/campaigns?since=S                  investigate.Campaign list
//	GET /api/v1/campaigns/{id}                     one investigate.Campaign
func InvestigationRoutes(in Investigation) []Route {
	if in.Clock == nil {
		in.Clock = vigil.SystemClock{}
	}
	if in.Logger == nil {
		in.Logger = slog.New(slog.DiscardHandler)
	}
	in.Logger = in.Logger.With("component", "web")
	h := ErrorHandler(in.Logger)
	p := api.Prefix
	return append([]Route{
		{Method: "GET", Pattern: p + "/graph", Perm: auth.PermRead, Handler: h(in.graph)},
	}, in.investigateRoutes(h)...)
}

// graph serves GET /api/v1/graph.
func (in *Investigation) graph(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r.URL, in.Clock.Now(), "entity", "depth", "since", "limit")
	gq := graph.Query{Entity: q.str("entity"), Since: q.time("since")}
	for name, dst := range map[string]*int{"depth": &gq.Depth, "limit": &gq.Limit} {
		if s := q.str(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				q.fail(vigil.Errorf(vigil.EINVALID, "%s %q: want a positive number", name, s))
			}
			*dst = n
		}
	}
	if q.err != nil {
		return q.err
	}
	if gq.Entity == "" {
		return vigil.Errorf(vigil.EINVALID, "entity is required: type:value (ip:10.0.0.7) or a value")
	}
	v, err := in.Investigator.Graph(r.Context(), gq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
