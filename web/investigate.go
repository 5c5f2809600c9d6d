package web

import (
	"bytes"
	"net/http"

	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/investigate"
	"github.com/vigil-iot/vigil/web/api"
)

// investigateRoutes are the incident and campaign routes of
// InvestigationRoutes.
func (in *Investigation) investigateRoutes(h func(func(w http.ResponseWriter, r *http.Request) error) http.Handler) []Route {
	p := api.Prefix
	return []Route{
		{Method: "GET", Pattern: p + "/incidents/{id}/blast-radius", Perm: auth.PermRead, Handler: h(in.blastRadius)},
		{Method: "GET", Pattern: p + "/incidents/{id}/report", Perm: auth.PermRead, Handler: h(in.report)},
		{Method: "GET", Pattern: p + "/campaigns", Perm: auth.PermRead, Handler: h(in.campaigns)},
		{Method: "GET", Pattern: p + "/campaigns/{id}", Perm: auth.PermRead, Handler: h(in.campaign)},
	}
}

// report serves GET /api/v1/incidents/{id}/report: one self-contained
// HTML page. Its CSP forbids everything but its inline style: the page
// loads nothing and runs nothing.
func (in *Investigation) report(w http.ResponseWriter, r *http.Request) error {
	if q := newQuery(r.URL, in.Clock.Now()); q.err != nil {
		return q.err
	}
	var b bytes.Buffer
	if err := in.Investigator.Report(r.Context(), r.PathValue("id"), &b); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(b.Bytes())
	if err != nil {
		in.Logger.Debug("cannot write report", "err", err)
	}
	return nil
}

// campaigns serves GET /api/v1/campaigns?since=S.
func (in *Investigation) campaigns(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r.URL, in.Clock.Now(), "since")
	cq := investigate.CampaignQuery{Since: q.time("since")}
	if q.err != nil {
		return q.err
	}
	cs, err := in.Investigator.Campaigns(r.Context(), cq)
	return list(w, cs, "", err)
}

// campaign serves GET /api/v1/campaigns/{id}?since=S.
func (in *Investigation) campaign(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r.URL, in.Clock.Now(), "since")
	cq := investigate.CampaignQuery{Since: q.time("since")}
	if q.err != nil {
		return q.err
	}
	c, err := in.Investigator.Campaign(r.Context(), r.PathValue("id"), cq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
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
