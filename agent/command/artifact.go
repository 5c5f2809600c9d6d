package command

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

// SignArtifact returns the hex SHA-256 of an update artifact's bytes and
// their base64 Ed25519 signature by the server's update key (never the
// command key).
func SignArtifact(key ed25519.PrivateKey, data []byte) (sum, signature string, err error) {
	if len(key) != ed25519.PrivateKeySize {
		return "", "", errors.New("cannot sign artifact: not an Ed25519 private key")
	}
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:]), base64.StdEncoding.EncodeToString(ed25519.Sign(key, data)), nil
}

// VerifyArtifact checks an update artifact before it is installed: its
// bytes must have the SHA-256 sum (hex) and the signature (base64 Ed25519)
// must verify with the update key. The error says which check failed.
func VerifyArtifact(key ed25519.PublicKey, data []byte, sum, signature string) error {
	if len(key) != ed25519.PublicKeySize {
		return errors.New("cannot verify artifact: no update key")
	}
	want, err := hex.DecodeString(sum)
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("cannot verify artifact: sha256 %q is not 64 hex digits", sum)
	}
	sig, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return errors.New("cannot verify artifact: the signature is not a base64 Ed25519 signature")
	}
	if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != hex.EncodeToString(want) {
		return fmt.Errorf("cannot verify artifact: its sha256 is %x, not %s", got, sum)
	}
	if !ed25519.Verify(key, data, sig) {
		return errors.New("cannot verify artifact: the signature does not verify with the update key")
	}
	return nil
}
