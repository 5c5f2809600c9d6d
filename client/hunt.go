package client

import (
	"context"

	"github.com/vigil-iot/vigil/hunt"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// Hunt runs a hunting query (see docs/hunting.md).
func (c *Client) Hunt(ctx context.Context, in web.HuntRequest) (web.HuntResponse, error) {
	var res web.HuntResponse
	err := c.postJSON(ctx, api.Prefix+"/hunt", in, &res)
	return res, err
}

// StartRetrohunt starts a retro-hunt job and returns its first state.
func (c *Client) StartRetrohunt(ctx context.Context, in web.RetroRequest) (hunt.RetroJob, error) {
	var j hunt.RetroJob
	err := c.postJSON(ctx, api.Prefix+"/retrohunt", in, &j)
	return j, err
}

// Retrohunt returns the state of a retro-hunt job.
func (c *Client) Retrohunt(ctx context.Context, id string) (hunt.RetroJob, error) {
	var j hunt.RetroJob
	err := c.getJSON(ctx, api.Prefix+"/retrohunt/"+escape(id), nil, &j)
	return j, err
}

// Retrohunts lists the retro-hunt jobs, newest first.
func (c *Client) Retrohunts(ctx context.Context) ([]hunt.RetroJob, error) {
	l, _, err := list[hunt.RetroJob](ctx, c, api.Prefix+"/retrohunt", nil)
	return l, err
}
