package web

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/store"
)

// DeviceCommand is one command sent to a device, as GET
// /api/v1/devices/{id}/commands lists them: a response action on the
// device (isolate, restore, update, block, kill_process, ...) asked for by
// a playbook or by a person, with who approved it, how it ended and what
// the device answered; or a signed command queued for the device's agent
// (POST /api/v1/devices/{id}/commands, a response action's command, an
// update plan's), with when the agent took it and its result.
type DeviceCommand struct {
	// ID is the action's id (GET /api/v1/actions/{id}), or the queued
	// command's (GET /api/v1/commands/{id}).
	ID string `json:"id"`
	// Kind is "action" or "command" (a queued command).
	Kind    string `json:"kind"`
	Command string `json:"command"`
	// Params are the command's parameters, without the response engine's
	// own bookkeeping (respond.MetaPrefix).
	Params map[string]string `json:"params,omitempty"`
	// By is who or what sent it: "playbook:<name>", "user:alice",
	// "token:<name>"; for a queued command also "action:<id>" (the
	// response action it carries out, ActionID) or "vigil" (Vigil
	// itself, e.g. an update plan).
	By        string   `json:"by"`
	ActionID  string   `json:"action_id,omitempty"`
	Playbook  string   `json:"playbook,omitempty"`
	Approvers []string `json:"approvers,omitempty"`
	Incident  string   `json:"incident_id,omitempty"`
	Alert     string   `json:"alert_id,omitempty"`
	// Status is the action's state: pending_approval, approved, denied,
	// sent, acknowledged, succeeded, failed, timed_out, rolled_back; a
	// queued command's: queued (waiting for the device's poll), taken
	// (the agent took it, no result yet), expired (never taken),
	// succeeded, failed or refused (the agent's result).
	Status vigil.ActionState `json:"status"`
	// Result is what the device or the connector answered (the output of
	// the command, the reason of a refusal or failure).
	Result string `json:"result,omitempty"`
	// Created is when the action was asked for, or the command queued.
	Created time.Time `json:"created"`
	// Updated is the action's last change, or the command's latest of
	// queued, taken and result.
	Updated time.Time `json:"updated"`
	// Taken and Expires are a queued command's.
	Taken   *time.Time `json:"taken,omitempty"`
	Expires *time.Time `json:"expires,omitempty"`
}

// queuedCommandOf is the history entry of a queued command at now.
func queuedCommandOf(q store.QueuedCommand, now time.Time) DeviceCommand {
	c := DeviceCommand{ID: q.ID, Kind: "command", By: cmp.Or(q.By, "vigil"), Status: "queued", Created: q.Queued, Updated: q.Queued}
	c.ActionID, _ = strings.CutPrefix(q.By, "action:")
	if c.ActionID == q.By {
		c.ActionID = ""
	}
	exp := q.Expires
	c.Expires = &exp
	var sg command.Signed
	var cm command.Command
	if json.Unmarshal(q.Signed, &sg) == nil && json.Unmarshal(sg.Payload, &cm) == nil {
		c.Command, c.Params = cm.Action, cm.Params
	}
	if !q.Taken.IsZero() {
		t := q.Taken
		c.Taken, c.Status, c.Updated = &t, "taken", t
	} else if !now.Before(q.Expires) {
		c.Status = "expired"
	}
	var res command.Result
	if q.Result != nil && json.Unmarshal(q.Result, &res) == nil && res.Status != "" {
		c.Status = vigil.ActionState(res.Status)
		var parts []string
		if res.Reason != "" {
			parts = append(parts, "refused: "+res.Reason)
		}
		parts = append(parts, strings.TrimSpace(res.Error), strings.TrimSpace(res.Output))
		c.Result = strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), "; ")
		if q.ResultAt.After(c.Updated) {
			c.Updated = q.ResultAt
		}
	}
	return c
}

// metaPrefix is respond.MetaPrefix: the engine's keys in Action.Params
// (web does not import respond).
const metaPrefix = "vigil."

// commandOf is the command an action sent.
func commandOf(a vigil.Action) DeviceCommand {
	c := DeviceCommand{ID: a.ID, Kind: "action", Command: a.Type, By: a.RequestedBy, Playbook: a.Playbook, Approvers: a.Approvers,
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
// to a device, newest first, a page at a time (limit, cursor): its stored
// response actions and its queued commands (store.Commands.DeviceCommands)
// merged by time (an action's Created, a command's Queued). ENOTFOUND
// when the device is unknown.
func (s *Server) deviceCommands(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	q := newQuery(r.URL, s.clock.Now(), "limit", "cursor")
	page := q.page()
	if q.err != nil {
		return q.err
	}
	n, err := page.Size()
	if err != nil {
		return err
	}
	var cur mergedCursor
	if page.Cursor != "" {
		if cur, err = decodeMergedCursor(page.Cursor); err != nil {
			return err
		}
	}
	ctx := r.Context()
	if _, err := s.opts.Store.GetDevice(ctx, id); err != nil {
		return err
	}
	var (
		acts         []vigil.Action
		cmds         []store.QueuedCommand
		anext, cnext string
	)
	if !cur.ActionsDone {
		if acts, anext, err = s.opts.Store.ListActions(ctx, store.ActionFilter{DeviceID: id, Page: store.Page{Limit: n, Cursor: cur.Actions}}); err != nil {
			return err
		}
	}
	if !cur.CommandsDone {
		if cmds, cnext, err = s.opts.Store.DeviceCommands(ctx, id, store.Page{Limit: n, Cursor: cur.Commands}); err != nil {
			return err
		}
	}
	now := s.clock.Now()
	items := make([]DeviceCommand, 0, n)
	i, j := 0, 0
	for len(items) < n && (i < len(acts) || j < len(cmds)) {
		if j == len(cmds) || (i < len(acts) && !acts[i].Created.Before(cmds[j].Queued)) {
			items = append(items, commandOf(acts[i]))
			i++
		} else {
			items = append(items, queuedCommandOf(cmds[j], now))
			j++
		}
	}
	// Each list goes on after the last of its items shown: its own next
	// cursor when the page took all it read, else the cursor after the
	// i-th (j-th) item, read again with that limit.
	next := cur
	switch {
	case i == len(acts):
		next.Actions, next.ActionsDone = anext, anext == ""
	case i > 0:
		if _, next.Actions, err = s.opts.Store.ListActions(ctx, store.ActionFilter{DeviceID: id, Page: store.Page{Limit: i, Cursor: cur.Actions}}); err != nil {
			return err
		}
	}
	switch {
	case j == len(cmds):
		next.Commands, next.CommandsDone = cnext, cnext == ""
	case j > 0:
		if _, next.Commands, err = s.opts.Store.DeviceCommands(ctx, id, store.Page{Limit: j, Cursor: cur.Commands}); err != nil {
			return err
		}
	}
	nc := ""
	if !next.ActionsDone || !next.CommandsDone {
		nc = next.encode()
	}
	return list(w, items, nc, nil)
}

// mergedCursor is the cursor of GET /api/v1/devices/{id}/commands: where
// each of its two lists goes on.
type mergedCursor struct {
	Actions      string `json:"a,omitempty"`
	ActionsDone  bool   `json:"ad,omitempty"`
	Commands     string `json:"c,omitempty"`
	CommandsDone bool   `json:"cd,omitempty"`
}

func (c mergedCursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeMergedCursor(s string) (mergedCursor, error) {
	var c mergedCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		return mergedCursor{}, vigil.Errorf(vigil.EINVALID, "malformed page cursor %q", s)
	}
	return c, nil
}
