package web

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/hunt"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web/api"
)

// SavedQueryRequest is the body of POST /api/v1/hunt/saved.
type SavedQueryRequest struct {
	Name  string `json:"name"`
	Query string `json:"query"`
}

// SavedQueriesAPI is what the saved-query routes need.
type SavedQueriesAPI struct {
	Store  store.SavedQueries
	Clock  vigil.Clock
	Logger *slog.Logger
}

// SavedQueryRoutes are /api/v1/hunt/saved: GET lists the saved hunt
// queries (read); POST saves one under its name, replacing one of that
// name (write, audited as hunt.save; the query must parse, the author is
// the caller); DELETE /api/v1/hunt/saved/{name} removes one (write,
// audited as hunt.unsave).
func SavedQueryRoutes(x SavedQueriesAPI) []Route {
	if x.Clock == nil {
		x.Clock = vigil.SystemClock{}
	}
	if x.Logger == nil {
		x.Logger = slog.New(slog.DiscardHandler)
	}
	log := x.Logger.With("component", "web")
	handle := ErrorHandler(log)
	p := api.Prefix + "/hunt/saved"
	return []Route{
		{Method: "GET", Pattern: p, Perm: auth.PermRead, Handler: handle(func(w http.ResponseWriter, r *http.Request) error {
			list, err := x.Store.ListSavedQueries(r.Context())
			if err != nil {
				return err
			}
			if list == nil {
				list = []store.SavedQuery{}
			}
			writeJSON(w, http.StatusOK, api.List[store.SavedQuery]{Items: list})
			return nil
		})},
		{Method: "POST", Pattern: p, Perm: auth.PermWrite, Action: "hunt.save", Handler: handle(func(w http.ResponseWriter, r *http.Request) error {
			var in SavedQueryRequest
			if err := decodeJSON(w, r, &in); err != nil {
				return err
			}
			in.Name = strings.TrimSpace(in.Name)
			now := x.Clock.Now().UTC()
			if _, err := hunt.Parse(in.Query, now); err != nil {
				return huntError(err)
			}
			q := store.SavedQuery{Name: in.Name, Query: in.Query, Author: Actor(r.Context()), Created: now}
			if err := x.Store.PutSavedQuery(r.Context(), q); err != nil {
				return err
			}
			Audit(r, "hunt:"+q.Name, fmt.Sprintf("saved %q", q.Query))
			writeJSON(w, http.StatusCreated, q)
			return nil
		})},
		{Method: "DELETE", Pattern: p + "/{name}", Perm: auth.PermWrite, Action: "hunt.unsave", Handler: handle(func(w http.ResponseWriter, r *http.Request) error {
			name := r.PathValue("name")
			if err := x.Store.DeleteSavedQuery(r.Context(), name); err != nil {
				return err
			}
			Audit(r, "hunt:"+name, "deleted the saved query")
			w.WriteHeader(http.StatusNoContent)
			return nil
		})},
	}
}
