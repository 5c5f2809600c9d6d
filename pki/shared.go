package pki

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// Names of the secrets the server shares through the store.
const (
	SecretCA         = "ca"          // the CA: certificate PEM then key PEM
	SecretCommandKey = "command-key" // the command-signing key, PKCS#8 PEM
	SecretUpdateKey  = "update-key"  // the update-signing key, PKCS#8 PEM
	SecretAuditKey   = "audit-key"   // the audit HMAC key, raw bytes
)

// SharedSecret returns the secret called name that every node on st
// shares, opened with sl. When st holds none yet, create makes one (a new
// key, or this node's key file when upgrading), which is sealed and
// stored unless another node stored one first: of nodes starting at once,
// all end with the one stored first. A secret that does not open is
// ErrWrongSecretsKey: the operator key is not the cluster's.
func SharedSecret(ctx context.Context, st store.Secrets, sl *Sealer, name string, create func() ([]byte, error), now time.Time) (plain []byte, created bool, err error) {
	sec, err := st.GetSecret(ctx, name)
	if vigil.ErrorCode(err) == vigil.ENOTFOUND {
		mine, err := create()
		if err != nil {
			return nil, false, err
		}
		sealed, err := sl.Seal(name, mine)
		if err != nil {
			return nil, false, err
		}
		if sec, err = st.PutSecretIfAbsent(ctx, store.Secret{Name: name, Sealed: sealed, Created: now.UTC()}); err != nil {
			return nil, false, fmt.Errorf("cannot store secret %s: %w", name, err)
		}
		created = string(sec.Sealed) == string(sealed)
	} else if err != nil {
		return nil, false, fmt.Errorf("cannot read secret %s: %w", name, err)
	}
	plain, err = sl.Open(name, sec.Sealed)
	if err != nil {
		return nil, false, err
	}
	return plain, created, nil
}

// SplitCA splits the SecretCA secret into the certificate and key PEM
// blocks JoinCA joined.
func SplitCA(b []byte) (certPEM, keyPEM []byte, err error) {
	var certs, keys []byte
	rest := b
	for {
		blk, r := pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			certs = append(certs, pem.EncodeToMemory(blk)...)
		} else {
			keys = append(keys, pem.EncodeToMemory(blk)...)
		}
		rest = r
	}
	if len(certs) == 0 || len(keys) == 0 {
		return nil, nil, errors.New("cannot read the shared CA: want a certificate and a key in PEM")
	}
	return certs, keys, nil
}

// JoinCA joins a CA's certificate and key PEM into one secret.
func JoinCA(certPEM, keyPEM []byte) []byte {
	return append(append(append([]byte{}, certPEM...), '\n'), keyPEM...)
}
