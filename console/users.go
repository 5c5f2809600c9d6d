package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// UserView is a console user as the API shows it: never its hash.
type UserView struct {
	Name    string    `json:"name"`
	Role    auth.Role `json:"role"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// UserRequest is the body of POST /api/v1/users: a new user, or a new
// role and password for an existing one.
type UserRequest struct {
	Name     string    `json:"name"`
	Role     auth.Role `json:"role"`
	Password string    `json:"password"`
}

// UserRoutes are the console users' API routes, for web.Options.Extra
// (all need the admin permission; the writes are audited):
//
//	GET    /api/v1/users         the users
//	POST   /api/v1/users         create or update one (UserRequest)
//	DELETE /api/v1/users/{name}  remove one and end its sessions
func UserRoutes(users store.Users, clock vigil.Clock) []web.Route {
	if clock == nil {
		clock = vigil.SystemClock{}
	}
	p := api.Prefix + "/users"
	return []web.Route{
		{Method: "GET", Pattern: p, Perm: auth.PermAdmin, Handler: handle(func(w http.ResponseWriter, r *http.Request) error {
			us, err := users.ListUsers(r.Context())
			if err != nil {
				return err
			}
			out := make([]UserView, 0, len(us))
			for _, u := range us {
				out = append(out, UserView{Name: u.Name, Role: auth.Role(u.Role), Created: u.Created, Updated: u.Updated})
			}
			return writeJSON(w, http.StatusOK, api.List[UserView]{Items: out})
		})},
		{Method: "POST", Pattern: p, Perm: auth.PermAdmin, Action: "user.put", Handler: handle(func(w http.ResponseWriter, r *http.Request) error {
			var req UserRequest
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				return vigil.Errorf(vigil.EINVALID, "cannot decode request body: %v", err)
			}
			if _, err := dec.Token(); !errors.Is(err, io.EOF) {
				return vigil.Errorf(vigil.EINVALID, "cannot decode request body: data after the JSON object")
			}
			if err := store.CheckUserName(req.Name); err != nil {
				return err
			}
			role, err := auth.ParseRole(string(req.Role))
			if err != nil {
				return err
			}
			if role == auth.RoleAgent {
				return vigil.Errorf(vigil.EINVALID, "role agent is for data sources, not people: want admin, analyst or viewer")
			}
			if err := auth.CheckPassword(req.Password); err != nil {
				return err
			}
			hash, err := auth.HashPassword(req.Password)
			if err != nil {
				return err
			}
			now := clock.Now().UTC()
			u := store.User{Name: req.Name, Role: string(role), PasswordHash: hash, Created: now, Updated: now}
			status := http.StatusCreated
			if old, err := users.GetUser(r.Context(), req.Name); err == nil {
				u.Created, status = old.Created, http.StatusOK
			}
			web.Audit(r, "user:"+u.Name, fmt.Sprintf("role=%s", role))
			if err := users.PutUser(r.Context(), u); err != nil {
				return err
			}
			return writeJSON(w, status, UserView{Name: u.Name, Role: role, Created: u.Created, Updated: u.Updated})
		})},
		{Method: "DELETE", Pattern: p + "/{name}", Perm: auth.PermAdmin, Action: "user.delete", Handler: handle(func(w http.ResponseWriter, r *http.Request) error {
			name := r.PathValue("name")
			web.Audit(r, "user:"+name, "")
			if err := users.DeleteUser(r.Context(), name); err != nil {
				return err
			}
			w.WriteHeader(http.StatusNoContent)
			return nil
		})},
	}
}

var handle = web.ErrorHandler(nil)

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}
