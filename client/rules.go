package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/vigil-iot/vigil/detect/reload"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// ListRules returns the server's Sigma rules with their counters and the
// result of the latest load.
func (c *Client) ListRules(ctx context.Context) (web.RuleList, error) {
	var l web.RuleList
	err := c.getJSON(ctx, api.Prefix+"/rules", nil, &l)
	return l, err
}

// ReloadRules makes the server compile its rule sources again.
func (c *Client) ReloadRules(ctx context.Context) (reload.Result, error) {
	var res reload.Result
	err := c.postJSON(ctx, api.Prefix+"/rules/reload", nil, &res)
	return res, err
}

// SetRulesEnabled enables or disables the rules with an id, name or tag
// and returns how many changed. ENOTFOUND when none has it.
func (c *Client) SetRulesEnabled(ctx context.Context, selector string, on bool) (int, error) {
	path := api.Prefix + "/rules/disable"
	if on {
		path = api.Prefix + "/rules/enable"
	}
	var t web.RuleToggle
	err := c.postJSON(ctx, path, web.RuleToggle{Selector: selector}, &t)
	return t.Changed, err
}

// postJSON POSTs in as JSON (no body when nil) and decodes the answer into out.
func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("cannot encode request: %w", err)
		}
	}
	b, _, err := c.do(ctx, http.MethodPost, path, nil, "application/json", body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("cannot decode answer of POST %s: %w", path, err)
	}
	return nil
}
