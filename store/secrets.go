package store

import (
	"context"
	"time"

	"github.com/vigil-iot/vigil"
)

// Secrets keeps the server's private keys (the CA key, the command and
// update signing keys, the audit key) shared by every node on one
// database. The store holds them sealed (encrypted by the caller with the
// operator's key) and never sees them in clear.
type Secrets interface {
	// PutSecretIfAbsent stores s unless a secret of that name is stored,
	// and returns the one stored after the call: s, or the one already
	// there. It is atomic across nodes: of callers racing with different
	// values for one name, all get the same, first stored. EINVALID
	// without a name, sealed bytes or a time.
	PutSecretIfAbsent(ctx context.Context, s Secret) (Secret, error)
	// GetSecret returns a secret by name. ENOTFOUND when none.
	GetSecret(ctx context.Context, name string) (Secret, error)
}

// Secret is a sealed secret as stored.
type Secret struct {
	Name    string
	Sealed  []byte
	Created time.Time
}

// CheckSecret checks what a store needs of a new secret.
func CheckSecret(s Secret) error {
	if s.Name == "" || len(s.Sealed) == 0 || s.Created.IsZero() {
		return vigil.Errorf(vigil.EINVALID, "a secret needs a name, sealed bytes and a creation time")
	}
	return nil
}
