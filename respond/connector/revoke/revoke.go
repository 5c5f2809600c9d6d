package revoke

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/respond"
)

// Revoker revokes every certificate of a device (enroll.Revocations).
type Revoker interface {
	RevokeDevice(deviceID string) error
}

// Connector revokes device certificates.
type Connector struct{ r Revoker }

var _ respond.Connector = (*Connector)(nil)

// New returns a connector on r.
func New(r Revoker) *Connector { return &Connector{r: r} }

// Name returns "revoke".
func (c *Connector) Name() string { return "revoke" }

// Execute revokes the action's device. Revoking twice is harmless.
func (c *Connector) Execute(_ context.Context, a vigil.Action) (respond.Result, error) {
	if a.Type != "revoke_certificate" {
		return respond.Result{}, vigil.Errorf(vigil.EINVALID, "the revoke connector cannot carry out %q", a.Type)
	}
	if err := c.r.RevokeDevice(a.DeviceID); err != nil {
		return respond.Result{}, fmt.Errorf("cannot revoke the certificates of device %s: %w", a.DeviceID, err)
	}
	return respond.Result{Acknowledged: time.Now(), Output: "certificates of " + a.DeviceID + " revoked; re-enrollment needed"}, nil
}
