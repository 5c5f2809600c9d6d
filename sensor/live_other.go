//go:build !linux

package sensor

import (
	"context"

	vigil "github.com/vigil-iot/vigil"
)

func (e *engine) readLive(ctx context.Context, iface string) error {
	return vigil.Errorf(vigil.EINVALID, "live capture needs Linux (AF_PACKET)")
}
