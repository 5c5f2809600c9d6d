package client

import (
	"context"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/alert"
	"github.com/vigil-iot/vigil/detect/baseline"
	"github.com/vigil-iot/vigil/web/api"
)

// GetBaseline returns what the server's learned baseline knows of a device
// (its id, or "ip:<address>") or a cohort. ENOTFOUND when nothing.
func (c *Client) GetBaseline(ctx context.Context, name string) (baseline.View, error) {
	var v baseline.View
	err := c.getJSON(ctx, api.Prefix+"/baseline/"+escape(name), nil, &v)
	return v, err
}

// MarkNormal tells the server that a baseline alert is normal: its values
// (or rate) are folded into the device's baseline, and with cohort into
// its cohort's too. Needs the write permission; audited.
func (c *Client) MarkNormal(ctx context.Context, alertID string, cohort bool) (baseline.Feedback, error) {
	var fb baseline.Feedback
	err := c.postJSON(ctx, api.Prefix+"/baseline/normal", map[string]any{"alert_id": alertID, "cohort": cohort}, &fb)
	return fb, err
}

// BaselineReset is the answer of ResetBaseline.
type BaselineReset struct {
	Name       string `json:"name"`
	Partitions []int  `json:"partitions"`
}

// ResetBaseline makes the server forget what its baseline learned for a
// device, or a cohort and its members (kind "device" or "cohort"; empty
// when the name is only one of them). Needs the admin permission; audited.
func (c *Client) ResetBaseline(ctx context.Context, name string, kind baseline.Kind) (BaselineReset, error) {
	var r BaselineReset
	err := c.postJSON(ctx, api.Prefix+"/baseline/reset", map[string]any{"name": name, "kind": kind}, &r)
	return r, err
}

// Resolution is the answer of ResolveIncidentWith: the incident and, for
// a false positive, its baseline alerts that can be marked normal.
type Resolution struct {
	api.Incident
	Baseline *baseline.FalsePositive `json:"baseline,omitempty"`
	// Exceptions, for a false positive, are the exceptions proposed for
	// its alerts (alert.SuggestExceptions).
	Exceptions []alert.Suggestion `json:"exception_suggestions,omitempty"`
}

// ResolveIncidentWith closes an incident like ResolveIncident; with learn
// and a false positive, the server also marks every baseline alert of the
// incident normal for its device.
func (c *Client) ResolveIncidentWith(ctx context.Context, id string, status vigil.IncidentStatus, learn bool) (Resolution, error) {
	return c.ResolveIncidentBecause(ctx, id, status, learn, "")
}

// ResolveIncidentBecause is ResolveIncidentWith with the reason for
// closing, in free text ("" for none): the server keeps it with the
// incident and audits it.
func (c *Client) ResolveIncidentBecause(ctx context.Context, id string, status vigil.IncidentStatus, learn bool, reason string) (Resolution, error) {
	var r Resolution
	body := map[string]any{"status": status, "learn": learn}
	if reason != "" {
		body["reason"] = reason
	}
	err := c.postJSON(ctx, api.Prefix+"/incidents/"+escape(id)+"/resolve", body, &r)
	return r, err
}
