package client

import (
	"context"

	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// Hunt runs a hunting query (see docs/hunting.md).
func (c *Client) Hunt(ctx context.Context, in web.HuntRequest) (web.HuntResponse, error) {
	var res web.HuntResponse
	err := c.postJSON(ctx, api.Prefix+"/hunt", in, &res)
	return res, err
}
