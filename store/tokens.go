package store

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/vigil-iot/vigil"
)

// Tokens keeps the API's tokens (auth.Token), shared by every node on one
// database: a token created on one node verifies on every other, and a
// revoked one stops working on all of them at their next lookup. The store
// keeps the hex SHA-256 of a token's secret, never the secret itself, so
// its content lets nobody in. Rules about names, roles, device bindings and
// expiry are auth's; the store only checks what it needs to index.
type Tokens interface {
	// CreateToken stores a new token. EINVALID without an ID, a name, a
	// role, a creation time or a hash of 64 hex digits; ECONFLICT when its
	// ID, name or hash is already stored (nothing is replaced).
	CreateToken(ctx context.Context, t APIToken) error
	// GetTokenByHash returns the token whose Hash is hash. ENOTFOUND when
	// there is none.
	GetTokenByHash(ctx context.Context, hash string) (APIToken, error)
	// GetToken returns a token by ID. ENOTFOUND when there is none.
	GetToken(ctx context.Context, id string) (APIToken, error)
	// ListTokens returns every token, oldest first (by Created, then ID).
	ListTokens(ctx context.Context) ([]APIToken, error)
	// DeleteToken removes the token whose ID is ref, else the one whose
	// Name is ref, and returns its ID. ENOTFOUND when there is none.
	DeleteToken(ctx context.Context, ref string) (string, error)
	// TouchToken records a use of a token: its LastUsed becomes used when
	// that is later than the stored one. No error when the token is gone
	// (revoked meanwhile).
	TouchToken(ctx context.Context, id string, used time.Time) error
}

// APIToken is a token as stored.
type APIToken struct {
	ID   string
	Name string
	Role string // an auth.Role
	// Hash is the hex SHA-256 of the token's secret.
	Hash     string
	Created  time.Time
	LastUsed time.Time // zero: never used
	Expires  time.Time // zero: never
	// Devices, when not empty, are the only devices the token may send
	// data for.
	Devices []string
}

// CheckToken checks what a store needs of a new token.
func CheckToken(t APIToken) error {
	if t.ID == "" || t.Name == "" || t.Role == "" || t.Created.IsZero() {
		return vigil.Errorf(vigil.EINVALID, "a token needs an id, a name, a role and a creation time")
	}
	if b, err := hex.DecodeString(t.Hash); err != nil || len(b) != 32 {
		return vigil.Errorf(vigil.EINVALID, "token %q: the hash is not 64 hex digits", t.Name)
	}
	return nil
}

// OptNanos is the column value of an optional time: 0 for the zero time,
// else Nanos(t).
func OptNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return Nanos(t)
}

// FromOptNanos reads an OptNanos column: the zero time for 0, else the
// time in UTC.
func FromOptNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
