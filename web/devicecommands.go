package web

import (
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// DeviceCommand is one command sent to a device, as GET
// /api/v1/devices/{id}/commands lists them: a response action on the
// device (isolate, restore, update, block, kill_process, ...) asked for by
// a playbook or by a person, with who approved it, how it ended and what
// the device answered.
type DeviceCommand struct {
	// ID is the action's id (GET /api/v1/actions/{id}).
	ID      string `json:"id"`
	Command string `json:"command"`
	// Params are the command's parameters, without the response engine's
	// own bookkeeping (respond.MetaPrefix).
	Params map[string]string `json:"params,omitempty"`
	// By is who or what sent it: "playbook:<name>", "user:alice",
	// "token:<name>".
	By        string   `json:"by"`
	Playbook  string   `json:"playbook,omitempty"`
	Approvers []string `json:"approvers,omitempty"`
	Incident  string   `json:"incident_id,omitempty"`
	Alert     string   `json:"alert_id,omitempty"`
	// Status is the action's state: pending_approval, approved, denied,
	// sent, acknowledged, succeeded, failed, timed_out, rolled_back.
	Status vigil.ActionState `json:"status"`
	// Result is what the device or the connector answered (the output of
	// the command, the reason of a refusal or failure).
	Result  string    `json:"result,omitempty"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// metaPrefix is respond.MetaPrefix: the engine's keys in Action.Params
// (web does not import respond).
const metaPrefix = "vigil."

// commandOf is the command an action sent.
func commandOf(a vigil.Action) DeviceCommand {
	c := DeviceCommand{ID: a.ID, Command: a.Type, By: a.RequestedBy, Playbook: a.Playbook, Approvers: a.Approvers,
		Incident: a.IncidentID, Alert: a.AlertID, Status: a.State, Result: a.Result, Created: a.Created, Updated: a.Updated}
	if len(a.Params) > 0 {
		c.Params = maps.Clone(a.Params)
		maps.DeleteFunc(c.Params, func(k, _ string) bool { return strings.HasPrefix(k, metaPrefix) })
		if len(c.Params) == 0 {
			c.Params = nil
		}
	}
	return c
}

// deviceCommands is GET /api/v1/devices/{id}/commands: the commands sent
// to a device, newest first, a page at a time (limit, cursor), from the
// stored response actions. ENOTFOUND when the device is unknown.
func (s *Server) deviceCommands(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	q := newQuery(r.URL, s.clock.Now(), "limit", "cursor")
	page := q.page()
	if q.err != nil {
		return q.err
	}
	if _, err := s.opts.Store.GetDevice(r.Context(), id); err != nil {
		return err
	}
	acts, next, err := s.opts.Store.ListActions(r.Context(), store.ActionFilter{DeviceID: id, Page: page})
	if err != nil {
		return err
	}
	items := make([]DeviceCommand, 0, len(acts))
	for _, a := range acts {
		items = append(items, commandOf(a))
	}
	return list(w, items, next, nil)
}
