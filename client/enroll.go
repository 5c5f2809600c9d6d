package client

import (
	"context"
	"time"

	"github.com/vigil-iot/vigil/enroll"
)

// CreateEnrollToken makes a single-use enrollment token for a device of
// class, valid for ttl (admin only). The answer holds the token, which the
// server shows only this once.
func (c *Client) CreateEnrollToken(ctx context.Context, class string, ttl time.Duration) (enroll.TokenAnswer, error) {
	var t enroll.TokenAnswer
	err := c.postJSON(ctx, enroll.PathTokens, enroll.TokenRequest{Class: class, TTL: ttl.String()}, &t)
	return t, err
}
