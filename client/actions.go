package client

import (
	"context"
	"net/url"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/respond"
	"github.com/vigil-iot/vigil/respond/playbook"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web/api"
)

// ListActions returns the response actions matching f, newest first, and
// the cursor of the next page ("" at the end).
func (c *Client) ListActions(ctx context.Context, f store.ActionFilter) ([]respond.ActionView, string, error) {
	q := url.Values{}
	setStr(q, "device_id", f.DeviceID)
	setStr(q, "incident_id", f.IncidentID)
	setStr(q, "state", string(f.State))
	pageQuery(q, f.Page)
	return list[respond.ActionView](ctx, c, api.Prefix+"/actions", q)
}

// GetAction returns one action with the engine's bookkeeping.
func (c *Client) GetAction(ctx context.Context, id string) (respond.ActionView, error) {
	var v respond.ActionView
	err := c.getJSON(ctx, api.Prefix+"/actions/"+escape(id), nil, &v)
	return v, err
}

// ApproveAction approves a pending action as the client's token name.
// ECONFLICT when it is not pending approval or already approved by that name.
func (c *Client) ApproveAction(ctx context.Context, id string) (respond.ActionView, error) {
	var v respond.ActionView
	err := c.postJSON(ctx, api.Prefix+"/actions/"+escape(id)+"/approve", nil, &v)
	return v, err
}

// DenyAction refuses a pending action, with an optional reason.
func (c *Client) DenyAction(ctx context.Context, id, reason string) (respond.ActionView, error) {
	var v respond.ActionView
	var body any
	if reason != "" {
		body = respond.DenyRequest{Reason: reason}
	}
	err := c.postJSON(ctx, api.Prefix+"/actions/"+escape(id)+"/deny", body, &v)
	return v, err
}

// ListPlaybooks returns the playbooks the server runs.
func (c *Client) ListPlaybooks(ctx context.Context) ([]playbook.Summary, error) {
	ps, _, err := list[playbook.Summary](ctx, c, api.Prefix+"/playbooks", nil)
	return ps, err
}

// ResolveIncident closes an incident as vigil.IncidentResolved or
// vigil.IncidentFalsePositive; a false positive rolls back the actions
// whose playbook asks for it.
func (c *Client) ResolveIncident(ctx context.Context, id string, status vigil.IncidentStatus) (api.Incident, error) {
	var in api.Incident
	err := c.postJSON(ctx, api.Prefix+"/incidents/"+escape(id)+"/resolve", map[string]string{"status": string(status)}, &in)
	return in, err
}
