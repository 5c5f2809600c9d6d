package respond

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/respond/playbook"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// ActionView is an action as the API shows it: its public params, and the
// engine's bookkeeping under "engine".
type ActionView struct {
	vigil.Action
	Engine Info `json:"engine"`
}

// View returns the API view of an action.
func View(a vigil.Action) ActionView {
	in := InfoOf(a)
	a.Params = PublicParams(a)
	return ActionView{Action: a, Engine: in}
}

// DenyRequest is the optional body of POST /api/v1/actions/{id}/deny.
type DenyRequest struct {
	Reason string `json:"reason"`
}

// Routes are the response API, for web.Options.Extra:
//
//	GET  /api/v1/actions               (read)  ?device_id= &incident_id= &state= &limit= &cursor=
//	GET  /api/v1/actions/{id}          (read)
//	POST /api/v1/actions/{id}/approve  (write) approves as the caller's token name
//	POST /api/v1/actions/{id}/deny     (write) {"reason": "..."} optional
//	GET  /api/v1/playbooks             (read)  the loaded playbooks
//
// Lists answer api.List[ActionView]; single actions an ActionView.
func (e *Engine) Routes() []web.Route {
	p := api.Prefix
	return []web.Route{
		{Method: "GET", Pattern: p + "/actions", Perm: auth.PermRead, Handler: e.handle(e.listActions)},
		{Method: "GET", Pattern: p + "/actions/{id}", Perm: auth.PermRead, Handler: e.handle(e.getAction)},
		{Method: "POST", Pattern: p + "/actions/{id}/approve", Perm: auth.PermWrite, Action: "action.approve", Handler: e.handle(e.approveAction)},
		{Method: "POST", Pattern: p + "/actions/{id}/deny", Perm: auth.PermWrite, Action: "action.deny", Handler: e.handle(e.denyAction)},
		{Method: "GET", Pattern: p + "/playbooks", Perm: auth.PermRead, Handler: e.handle(e.listPlaybooks)},
	}
}

func (e *Engine) handle(f func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f(w, r); err != nil {
			web.WriteError(w, r, e.log, err)
		}
	})
}

var actionStates = []vigil.ActionState{vigil.ActionPendingApproval, vigil.ActionApproved, vigil.ActionDenied, vigil.ActionSent,
	vigil.ActionAcknowledged, vigil.ActionSucceeded, vigil.ActionFailed, vigil.ActionTimedOut, vigil.ActionRolledBack}

func (e *Engine) listActions(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "device_id", "incident_id", "state", "limit", "cursor":
		default:
			return vigil.Errorf(vigil.EINVALID, "unknown query parameter %q: want device_id, incident_id, state, limit or cursor", k)
		}
	}
	f := store.ActionFilter{DeviceID: q.Get("device_id"), IncidentID: q.Get("incident_id"), State: vigil.ActionState(q.Get("state"))}
	if f.State != "" && !containsState(f.State) {
		return vigil.Errorf(vigil.EINVALID, "unknown action state %q", f.State)
	}
	f.Cursor = q.Get("cursor")
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return vigil.Errorf(vigil.EINVALID, "limit %q: want a number from 1 to 1000", s)
		}
		f.Limit = n
	}
	acts, next, err := e.st.ListActions(r.Context(), f)
	if err != nil {
		return err
	}
	items := make([]ActionView, 0, len(acts))
	for _, a := range acts {
		items = append(items, View(a))
	}
	return writeJSON(w, http.StatusOK, api.List[ActionView]{Items: items, NextCursor: next})
}

func containsState(s vigil.ActionState) bool { return slices.Contains(actionStates, s) }

func (e *Engine) getAction(w http.ResponseWriter, r *http.Request) error {
	a, err := e.st.GetAction(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, View(a))
}

func caller(r *http.Request) (string, error) {
	t, ok := auth.FromContext(r.Context())
	if !ok || t.Name == "" {
		return "", vigil.Errorf(vigil.EUNAUTHORIZED, "approving or denying needs a named caller")
	}
	return t.Name, nil
}

func (e *Engine) approveAction(w http.ResponseWriter, r *http.Request) error {
	user, err := caller(r)
	if err != nil {
		return err
	}
	a, err := e.Approve(r.Context(), r.PathValue("id"), user)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, View(a))
}

func (e *Engine) denyAction(w http.ResponseWriter, r *http.Request) error {
	user, err := caller(r)
	if err != nil {
		return err
	}
	var req DenyRequest
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return vigil.Errorf(vigil.EINVALID, "cannot read body: %v", err)
	}
	if len(b) > 0 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return vigil.Errorf(vigil.EINVALID, "cannot decode body: %v", err)
		}
	}
	a, err := e.Deny(r.Context(), r.PathValue("id"), user, req.Reason)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, View(a))
}

func (e *Engine) listPlaybooks(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, api.List[playbook.Summary]{Items: playbook.Summarize(e.Playbooks())})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return nil
}
