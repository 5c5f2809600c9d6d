package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/vigil-iot/vigil/graph"
	"github.com/vigil-iot/vigil/investigate"
	"github.com/vigil-iot/vigil/web/api"
)

// Graph returns the entity graph around entity (GET /api/v1/graph):
// depth 0 is the server's default; since is an RFC 3339 time or a
// duration ago ("24h"), "" for all time.
func (c *Client) Graph(ctx context.Context, entity string, depth int, since string, limit int) (graph.View, error) {
	q := url.Values{"entity": {entity}}
	if depth > 0 {
		q.Set("depth", strconv.Itoa(depth))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	setStr(q, "since", since)
	var v graph.View
	err := c.getJSON(ctx, api.Prefix+"/graph", q, &v)
	return v, err
}

// BlastRadius returns the blast radius of an incident
// (GET /api/v1/incidents/{id}/blast-radius).
func (c *Client) BlastRadius(ctx context.Context, incidentID string) (investigate.BlastRadius, error) {
	var br investigate.BlastRadius
	err := c.getJSON(ctx, api.Prefix+"/incidents/"+escape(incidentID)+"/blast-radius", nil, &br)
	return br, err
}

// IncidentReport returns the HTML report of an incident
// (GET /api/v1/incidents/{id}/report).
func (c *Client) IncidentReport(ctx context.Context, incidentID string) ([]byte, error) {
	b, _, err := c.do(ctx, http.MethodGet, api.Prefix+"/incidents/"+escape(incidentID)+"/report", nil, "", nil)
	return b, err
}

// Campaigns returns the campaigns among the incidents detected since
// since (GET /api/v1/campaigns): "" is the server's default (30 days).
func (c *Client) Campaigns(ctx context.Context, since string) ([]investigate.Campaign, error) {
	q := url.Values{}
	setStr(q, "since", since)
	cs, _, err := list[investigate.Campaign](ctx, c, api.Prefix+"/campaigns", q)
	return cs, err
}

// Campaign returns one campaign with its timeline (GET /api/v1/campaigns/{id}).
func (c *Client) Campaign(ctx context.Context, id, since string) (investigate.Campaign, error) {
	q := url.Values{}
	setStr(q, "since", since)
	var cp investigate.Campaign
	err := c.getJSON(ctx, api.Prefix+"/campaigns/"+escape(id), q, &cp)
	return cp, err
}
