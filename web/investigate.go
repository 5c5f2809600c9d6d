package web

import (
	"net/http"

	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/web/api"
)

// investigateRoutes are the incident and campaign routes of
// InvestigationRoutes.
func (in *Investigation) investigateRoutes(h func(func(w http.ResponseWriter, r *http.Request) error) http.Handler) []Route {
	p := api.Prefix
	return []Route{
		{Method: "GET", Pattern: p + "/incidents/{id}/blast-radius", Perm: auth.PermRead, Handler: h(in.blastRadius)},
	}
}

// blastRadius serves GET /api/v1/incidents/{id}/blast-radius.
func (in *Investigation) blastRadius(w http.ResponseWriter, r *http.Request) error {
	if q := newQuery(r.URL, in.Clock.Now()); q.err != nil {
		return q.err
	}
	br, err := in.Investigator.BlastRadius(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, br)
	return nil
}
