package client

import (
	"context"
	"net/http"

	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// SavedQueries returns the saved hunt queries, by name.
func (c *Client) SavedQueries(ctx context.Context) ([]store.SavedQuery, error) {
	items, _, err := list[store.SavedQuery](ctx, c, api.Prefix+"/hunt/saved", nil)
	return items, err
}

// SaveQuery saves a hunt query under a name, replacing one of that name.
// Needs the write permission; audited.
func (c *Client) SaveQuery(ctx context.Context, name, query string) (store.SavedQuery, error) {
	var q store.SavedQuery
	err := c.postJSON(ctx, api.Prefix+"/hunt/saved", web.SavedQueryRequest{Name: name, Query: query}, &q)
	return q, err
}

// DeleteSavedQuery removes a saved hunt query. Needs the write
// permission; audited.
func (c *Client) DeleteSavedQuery(ctx context.Context, name string) error {
	_, _, err := c.do(ctx, http.MethodDelete, api.Prefix+"/hunt/saved/"+escape(name), nil, "", nil)
	return err
}

// TestRule evaluates Sigma rules on the most recent stored events; nothing
// is stored. Needs the write permission; audited.
func (c *Client) TestRule(ctx context.Context, in web.RuleTestRequest) (web.RuleTestResponse, error) {
	var res web.RuleTestResponse
	err := c.postJSON(ctx, api.Prefix+"/rules/test", in, &res)
	return res, err
}
