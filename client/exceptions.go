package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/vigil-iot/vigil/alert"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// ListExceptions returns the server's alert exceptions, expired ones too;
// rule, when set, keeps those of one rule.
func (c *Client) ListExceptions(ctx context.Context, rule string) ([]web.ExceptionView, error) {
	q := url.Values{}
	setStr(q, "rule", rule)
	items, _, err := list[web.ExceptionView](ctx, c, api.Prefix+"/exceptions", q)
	return items, err
}

// AddException creates an exception; the server sets its id, author and
// creation time. Needs the write permission; audited.
func (c *Client) AddException(ctx context.Context, req web.ExceptionRequest) (web.ExceptionView, error) {
	var v web.ExceptionView
	err := c.postJSON(ctx, api.Prefix+"/exceptions", req, &v)
	return v, err
}

// RemoveException deletes an exception. Needs the write permission; audited.
func (c *Client) RemoveException(ctx context.Context, id string) error {
	_, _, err := c.do(ctx, http.MethodDelete, api.Prefix+"/exceptions/"+escape(id), nil, "", nil)
	return err
}

// SuggestExceptions returns the exceptions the server proposes for an
// incident's alerts, counting matching alerts of the last days days (0:
// the server's default).
func (c *Client) SuggestExceptions(ctx context.Context, incidentID string, days int) ([]alert.Suggestion, error) {
	q := url.Values{}
	if days > 0 {
		q.Set("days", strconv.Itoa(days))
	}
	items, _, err := list[alert.Suggestion](ctx, c, api.Prefix+"/incidents/"+escape(incidentID)+"/exception-suggestions", q)
	return items, err
}
