package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// SavedQueries returns the saved hunt queries the caller may see (its
// own, the shared ones; every one for an admin), by name then author.
func (c *Client) SavedQueries(ctx context.Context) ([]store.SavedQuery, error) {
	items, _, err := list[store.SavedQuery](ctx, c, api.Prefix+"/hunt/saved", nil)
	return items, err
}

// SaveQuery saves a hunt query of the caller under a name, replacing the
// caller's own of that name; shared shows it to everyone. Needs the write
// permission; audited.
func (c *Client) SaveQuery(ctx context.Context, name, query string, shared bool) (store.SavedQuery, error) {
	var q store.SavedQuery
	err := c.postJSON(ctx, api.Prefix+"/hunt/saved", web.SavedQueryRequest{Name: name, Query: query, Shared: shared}, &q)
	return q, err
}

// DeleteSavedQuery removes a saved hunt query of the caller, or with
// author another author's (admin only). Needs the write permission;
// audited.
func (c *Client) DeleteSavedQuery(ctx context.Context, author, name string) error {
	p := api.Prefix + "/hunt/saved/" + escape(name)
	if author != "" {
		p += "?author=" + url.QueryEscape(author)
	}
	_, _, err := c.do(ctx, http.MethodDelete, p, nil, "", nil)
	return err
}

// TestRule evaluates Sigma rules on the most recent stored events; nothing
// is stored. Needs the write permission; audited.
func (c *Client) TestRule(ctx context.Context, in web.RuleTestRequest) (web.RuleTestResponse, error) {
	var res web.RuleTestResponse
	err := c.postJSON(ctx, api.Prefix+"/rules/test", in, &res)
	return res, err
}
