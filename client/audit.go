package client

import (
	"context"

	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/web/api"
)

// VerifyAudit asks the server to verify its audit trail (admin): the
// chain, the audit key's MACs and the last anchor. A broken trail is a
// Report with OK false, not an error.
func (c *Client) VerifyAudit(ctx context.Context) (audit.Report, error) {
	var r audit.Report
	err := c.getJSON(ctx, api.Prefix+"/audit/verify", nil, &r)
	return r, err
}
