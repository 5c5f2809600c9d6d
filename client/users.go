package client

import (
	"context"
	"net/http"

	"github.com/vigil-iot/vigil/console"
	"github.com/vigil-iot/vigil/web/api"
)

// ListUsers lists the console's user accounts (admin only).
func (c *Client) ListUsers(ctx context.Context) ([]console.UserView, error) {
	us, _, err := list[console.UserView](ctx, c, api.Prefix+"/users", nil)
	return us, err
}

// PutUser creates a console user, or sets an existing one's role and
// password (admin only).
func (c *Client) PutUser(ctx context.Context, req console.UserRequest) (console.UserView, error) {
	var u console.UserView
	err := c.postJSON(ctx, api.Prefix+"/users", req, &u)
	return u, err
}

// DeleteUser removes a console user and ends its sessions (admin only).
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	_, _, err := c.do(ctx, http.MethodDelete, api.Prefix+"/users/"+escape(name), nil, "", nil)
	return err
}
