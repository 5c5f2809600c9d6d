package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/catalog"
	"github.com/vigil-iot/vigil/vuln"
	"github.com/vigil-iot/vigil/vuln/scan"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// ImportIntel imports a threat-intel feed: from in.Content when set, else
// from in.Feed.Source, an http(s) URL the server fetches (it reads no
// path of its own over the API).
func (c *Client) ImportIntel(ctx context.Context, in web.IntelImport) (feeds.Result, error) {
	var res feeds.Result
	err := c.postJSON(ctx, api.Prefix+"/intel/feeds", in, &res)
	return res, err
}

// ListIntel lists the server's threat-intel feeds.
func (c *Client) ListIntel(ctx context.Context) ([]catalog.FeedInfo, error) {
	l, _, err := list[catalog.FeedInfo](ctx, c, api.Prefix+"/intel/feeds", nil)
	return l, err
}

// RemoveIntel removes a feed and its indicators.
func (c *Client) RemoveIntel(ctx context.Context, name string) error {
	_, _, err := c.do(ctx, http.MethodDelete, api.Prefix+"/intel/feeds/"+escape(name), nil, "", nil)
	return err
}

// ImportVuln imports advisories, VEX or an SBOM.
func (c *Client) ImportVuln(ctx context.Context, in web.VulnImport) (feeds.Result, error) {
	var res feeds.Result
	err := c.postJSON(ctx, api.Prefix+"/vuln/sources", in, &res)
	return res, err
}

// ListVulnSources lists the server's vulnerability sources.
func (c *Client) ListVulnSources(ctx context.Context) ([]scan.SourceInfo, error) {
	l, _, err := list[scan.SourceInfo](ctx, c, api.Prefix+"/vuln/sources", nil)
	return l, err
}

// ListFindings returns vulnerability findings, highest ranked first.
func (c *Client) ListFindings(ctx context.Context, f scan.Filter) ([]vuln.Finding, error) {
	q := url.Values{}
	setStr(q, "device", f.DeviceID)
	if f.KEVOnly {
		q.Set("kev", "true")
	}
	if f.MinCVSS > 0 {
		q.Set("min_cvss", strconv.FormatFloat(f.MinCVSS, 'f', -1, 64))
	}
	l, _, err := list[vuln.Finding](ctx, c, api.Prefix+"/vuln/findings", q)
	return l, err
}

// PostureReport returns the posture report in a format: html, csv or json.
func (c *Client) PostureReport(ctx context.Context, format string) ([]byte, error) {
	b, _, err := c.do(ctx, http.MethodGet, api.Prefix+"/report/posture", url.Values{"format": {format}}, "", nil)
	return b, err
}
