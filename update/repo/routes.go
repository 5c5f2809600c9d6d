package repo

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// Paths of the repository routes.
const (
	PathRepositories = api.Prefix + "/update/repositories"
	PathSync         = api.Prefix + "/update/repositories/sync"
)

// Routes are the repository routes, for Options.Extra:
//
//	GET  /api/v1/update/repositories              (read; []Status)
//	POST /api/v1/update/repositories/sync[?name=N] (admin, audited
//	     update_repository.sync; syncs now and answers []Result)
//
// They are there when no repository is configured too (an empty list).
func (f *Fetcher) Routes() []web.Route {
	h := web.ErrorHandler(f.log())
	return []web.Route{
		{Method: "GET", Pattern: PathRepositories, Perm: auth.PermRead, Handler: h(f.list)},
		{Method: "POST", Pattern: PathSync, Perm: auth.PermAdmin, Action: "update_repository.sync", Handler: h(f.sync)},
	}
}

func (f *Fetcher) list(w http.ResponseWriter, _ *http.Request) error {
	return writeJSON(w, api.List[Status]{Items: f.List()})
}

func (f *Fetcher) sync(w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Query().Get("name")
	rs, err := f.Sync(r.Context(), name)
	if err != nil {
		return err
	}
	added, refused, failed := 0, 0, 0
	for _, x := range rs {
		added += len(x.Added)
		refused += len(x.Refused)
		if x.Error != "" {
			failed++
		}
	}
	obj := "repositories"
	if name != "" {
		obj = "repository:" + name
	}
	web.Audit(r, obj, fmt.Sprintf("added=%d refused=%d unreadable=%d", added, refused, failed))
	if rs == nil {
		rs = []Result{}
	}
	return writeJSON(w, api.List[Result]{Items: rs})
}

func writeJSON(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(b, '\n'))
	return nil
}
