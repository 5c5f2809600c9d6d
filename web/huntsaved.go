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
	// Shared shows the query to everyone; unshared, only its author (and
	// admins) see it.
	Shared bool `json:"shared,omitempty"`
	// Author, when not the caller's own actor, changes the existing
	// query of that author: admins only.
	Author string `json:"author,omitempty"`
}

// SavedQueriesAPI is what the saved-query routes need.
type SavedQueriesAPI struct {
	Store  store.SavedQueries
	Clock  vigil.Clock
	Logger *slog.Logger
}

// SavedQueryRoutes are /api/v1/hunt/saved. A saved query belongs to the
// caller who saved it (its author: "user:alice" in the console,
// "token:<name>" for an API token), who may share it with everyone.
//
// GET lists the queries the caller may see (read): its own, the shared
// ones, and every one for an admin. POST saves one under its name,
// replacing the caller's own of that name (write, audited as hunt.save;
// the query must parse); with an author other than the caller it changes
// that author's existing query (admin only: EFORBIDDEN otherwise,
// ENOTFOUND when there is none). DELETE /api/v1/hunt/saved/{name}
// removes the caller's own, or with ?author= another author's (admin
// only), audited as hunt.unsave.
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
			all, err := x.Store.ListSavedQueries(r.Context())
			if err != nil {
				return err
			}
			me, admin := Actor(r.Context()), isAdmin(r)
			list := []store.SavedQuery{}
			for _, q := range all {
				if q.Shared || admin || q.Author == me {
					list = append(list, q)
				}
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
			q := store.SavedQuery{Name: in.Name, Query: in.Query, Author: Actor(r.Context()), Shared: in.Shared, Created: now}
			detail := fmt.Sprintf("saved %q", q.Query)
			if in.Shared {
				detail += " shared"
			}
			if in.Author != "" && in.Author != q.Author {
				if err := mayChangeSaved(r, in.Author); err != nil {
					return err
				}
				if _, err := findSaved(r, x.Store, in.Author, in.Name); err != nil {
					return err
				}
				q.Author = in.Author
				detail += " of " + in.Author
			}
			if err := x.Store.PutSavedQuery(r.Context(), q); err != nil {
				return err
			}
			Audit(r, "hunt:"+q.Name, detail)
			writeJSON(w, http.StatusCreated, q)
			return nil
		})},
		{Method: "DELETE", Pattern: p + "/{name}", Perm: auth.PermWrite, Action: "hunt.unsave", Handler: handle(func(w http.ResponseWriter, r *http.Request) error {
			name, author := r.PathValue("name"), r.URL.Query().Get("author")
			detail := "deleted the saved query"
			if author == "" || author == Actor(r.Context()) {
				author = Actor(r.Context())
			} else if err := mayChangeSaved(r, author); err != nil {
				return err
			} else {
				detail += " of " + author
			}
			if err := x.Store.DeleteSavedQuery(r.Context(), author, name); err != nil {
				return err
			}
			Audit(r, "hunt:"+name, detail)
			w.WriteHeader(http.StatusNoContent)
			return nil
		})},
	}
}

// isAdmin says whether the request's caller has the admin role.
func isAdmin(r *http.Request) bool {
	tok, ok := auth.FromContext(r.Context())
	return ok && tok.Role.Can(auth.PermAdmin)
}

// mayChangeSaved is EFORBIDDEN unless the caller is an admin: only admins
// change or delete another author's saved query.
func mayChangeSaved(r *http.Request, author string) error {
	if !isAdmin(r) {
		return vigil.Errorf(vigil.EFORBIDDEN, "the saved query is %s's: only its author or an admin may change it", author)
	}
	return nil
}

// findSaved returns the saved query of an author; ENOTFOUND when none.
func findSaved(r *http.Request, st store.SavedQueries, author, name string) (store.SavedQuery, error) {
	all, err := st.ListSavedQueries(r.Context())
	if err != nil {
		return store.SavedQuery{}, err
	}
	for _, q := range all {
		if q.Author == author && q.Name == name {
			return q, nil
		}
	}
	return store.SavedQuery{}, vigil.Errorf(vigil.ENOTFOUND, "no saved query %q of %s", name, author)
}
