package audit

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// Routes are the audit API of a trail without key or anchors (Trail.Routes).
func Routes(st store.Audit, log *slog.Logger) []web.Route {
	return NewTrail(st, TrailOptions{Logger: log}).Routes()
}

// Routes are the audit API, for web.Options.Extra (admin only):
//
//	GET /api/v1/audit?after=SEQ&limit=N  api.List[vigil.AuditRecord] in seq order
//	                                     (next_cursor is the last seq when more may follow)
//	GET /api/v1/audit/verify             Report of Trail.Verify: the chain, the key's MACs
//	                                     and the last anchor, checked on the server
//	                                     (200 whether or not the trail holds: see ok)
func (t *Trail) Routes() []web.Route {
	st, log := t.st, t.log
	h := func(f func(w http.ResponseWriter, r *http.Request) error) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := f(w, r); err != nil {
				web.WriteError(w, r, log, err)
			}
		})
	}
	return []web.Route{
		{Method: "GET", Pattern: api.Prefix + "/audit", Perm: auth.PermAdmin, Handler: h(func(w http.ResponseWriter, r *http.Request) error {
			after, limit, err := listParams(r)
			if err != nil {
				return err
			}
			recs, err := st.ListAudit(r.Context(), after, limit)
			if err != nil {
				return err
			}
			if recs == nil {
				recs = []vigil.AuditRecord{}
			}
			next := ""
			if len(recs) == limit {
				next = strconv.FormatInt(recs[len(recs)-1].Seq, 10)
			}
			return writeJSON(w, api.List[vigil.AuditRecord]{Items: recs, NextCursor: next})
		})},
		{Method: "GET", Pattern: api.Prefix + "/audit/verify", Perm: auth.PermAdmin, Handler: h(func(w http.ResponseWriter, r *http.Request) error {
			rep, err := t.Verify(r.Context())
			if err != nil {
				return err
			}
			return writeJSON(w, rep)
		})},
	}
}

// listParams reads after (or cursor) and limit (default 100, at most 1000).
func listParams(r *http.Request) (int64, int, error) {
	q := r.URL.Query()
	var after int64
	s := q.Get("after")
	if s == "" {
		s = q.Get("cursor")
	}
	if s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, vigil.Errorf(vigil.EINVALID, "after %q: want a sequence number", s)
		}
		after = n
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return 0, 0, vigil.Errorf(vigil.EINVALID, "limit %q: want a number from 1 to 1000", s)
		}
		limit = n
	}
	return after, limit, nil
}

func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
	return nil
}
