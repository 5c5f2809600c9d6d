package store

import (
	"context"
	"encoding/hex"
	"time"

	"github.com/vigil-iot/vigil"
)

// EnrollTokens keeps the devices' enrollment tokens (enroll.Token), shared
// by every node on one database: a token created on one node enrolls a
// device on any other, once. The store keeps the hex SHA-256 of a token's
// secret, never the secret. Rules about classes and lifetimes are
// enroll's; the store checks what it needs to index.
type EnrollTokens interface {
	// CreateEnrollToken stores a new token. EINVALID without an ID, a
	// class, creation and expiry times or a hash of 64 hex digits;
	// ECONFLICT when its ID or hash is already stored (nothing replaced).
	// A token may be created used (Used set), as when imported.
	CreateEnrollToken(ctx context.Context, t EnrollToken) error
	// GetEnrollToken returns the token whose Hash is hash, used or not,
	// expired or not. ENOTFOUND when there is none.
	GetEnrollToken(ctx context.Context, hash string) (EnrollToken, error)
	// ConsumeEnrollToken marks the token whose Hash is hash used by
	// deviceID at now, and returns it so marked, when it is unused and
	// expires after now. It is atomic across nodes: of callers racing on
	// one token, exactly one succeeds. ENOTFOUND when there is no usable
	// token (none, used or expired: the same error for all).
	ConsumeEnrollToken(ctx context.Context, hash, deviceID string, now time.Time) (EnrollToken, error)
	// ListEnrollTokens returns every token, oldest first (by Created,
	// then ID).
	ListEnrollTokens(ctx context.Context) ([]EnrollToken, error)
	// DeleteEnrollToken removes a token by ID. ENOTFOUND when none.
	DeleteEnrollToken(ctx context.Context, id string) error
}

// EnrollToken is an enrollment token as stored.
type EnrollToken struct {
	ID    string
	Class string
	// Hash is the hex SHA-256 of the token's secret.
	Hash    string
	Created time.Time
	Expires time.Time
	Used    time.Time // zero: unused
	UsedBy  string    // the device enrolled with it
}

// CheckEnrollToken checks what a store needs of a new enrollment token.
func CheckEnrollToken(t EnrollToken) error {
	if t.ID == "" || t.Class == "" || t.Created.IsZero() || t.Expires.IsZero() {
		return vigil.Errorf(vigil.EINVALID, "an enrollment token needs an id, a class, a creation and an expiry time")
	}
	if b, err := hex.DecodeString(t.Hash); err != nil || len(b) != 32 {
		return vigil.Errorf(vigil.EINVALID, "enrollment token %q: the hash is not 64 hex digits", t.ID)
	}
	return nil
}

// Revocations keeps the revoked device certificates, shared by every node
// on one database: a certificate revoked on one node is refused by every
// node at its next check.
type Revocations interface {
	// Revoke records a revocation. Revoking a key again keeps the later
	// time (for a device, certificates issued before it are refused).
	// EINVALID for an unknown kind, an empty key or a zero time.
	Revoke(ctx context.Context, r Revocation) error
	// Revoked returns the revocations of a device and of a certificate
	// serial: none, one or two. An empty deviceID or serial matches none.
	Revoked(ctx context.Context, deviceID, serial string) ([]Revocation, error)
	// ListRevocations returns every revocation, by kind then key.
	ListRevocations(ctx context.Context) ([]Revocation, error)
}

// Kinds of revocation.
const (
	// RevokeDevice refuses every certificate of a device issued (NotBefore)
	// at or before At.
	RevokeDevice = "device"
	// RevokeSerial refuses one certificate, by its hex serial number.
	RevokeSerial = "serial"
)

// Revocation is a revoked device or certificate.
type Revocation struct {
	Kind string // RevokeDevice or RevokeSerial
	Key  string // the device id or the hex serial
	At   time.Time
}

// CheckRevocation checks what a store needs of a revocation.
func CheckRevocation(r Revocation) error {
	if r.Kind != RevokeDevice && r.Kind != RevokeSerial {
		return vigil.Errorf(vigil.EINVALID, "revocation kind %q: want %s or %s", r.Kind, RevokeDevice, RevokeSerial)
	}
	if r.Key == "" || r.At.IsZero() {
		return vigil.Errorf(vigil.EINVALID, "a revocation needs a key and a time")
	}
	return nil
}
