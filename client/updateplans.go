package client

import (
	"context"
	"net/url"

	"github.com/vigil-iot/vigil/remediate"
)

// ListUpdatePlans returns the update plans in a state ("": all).
func (c *Client) ListUpdatePlans(ctx context.Context, state string) ([]remediate.PlanView, error) {
	q := url.Values{}
	setStr(q, "state", state)
	l, _, err := list[remediate.PlanView](ctx, c, remediate.PathPlans, q)
	return l, err
}

// GetUpdatePlan returns one update plan.
func (c *Client) GetUpdatePlan(ctx context.Context, id string) (remediate.PlanView, error) {
	var p remediate.PlanView
	err := c.getJSON(ctx, remediate.PathPlans+"/"+escape(id), nil, &p)
	return p, err
}

// ApproveUpdatePlan lets a proposed plan run.
func (c *Client) ApproveUpdatePlan(ctx context.Context, id string) (remediate.PlanView, error) {
	var p remediate.PlanView
	err := c.postJSON(ctx, remediate.PathPlans+"/"+escape(id)+"/approve", struct{}{}, &p)
	return p, err
}

// HaltUpdatePlan stops a plan: no further wave is sent.
func (c *Client) HaltUpdatePlan(ctx context.Context, id, reason string) (remediate.PlanView, error) {
	var p remediate.PlanView
	err := c.postJSON(ctx, remediate.PathPlans+"/"+escape(id)+"/halt", remediate.HaltRequest{Reason: reason}, &p)
	return p, err
}
