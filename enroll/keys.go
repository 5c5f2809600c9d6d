package enroll

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vigil-iot/vigil"
)

// CommandKeyFile is the command-signing key's file name in the data
// directory.
const CommandKeyFile = "command.key"

// EnsureCommandKey loads the Ed25519 command-signing key at path, or
// creates it (mode 0600) when missing. A key readable by others is
// refused.
func EnsureCommandKey(path string) (ed25519.PrivateKey, error) {
	return ensureKey(path, "command key")
}

// UpdateKeyFile is the update-signing key's file name in the data
// directory's pki directory. It signs update artifacts, and only them: a
// command key that leaks cannot make firmware pass, nor the reverse.
const UpdateKeyFile = "update.key"

// EnsureUpdateKey loads the Ed25519 update-signing key at path, or creates
// it (mode 0600) when missing, like EnsureCommandKey.
func EnsureUpdateKey(path string) (ed25519.PrivateKey, error) {
	return ensureKey(path, "update key")
}

func ensureKey(path, what string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		pemKey, err := NewKeyPEM()
		if err != nil {
			return nil, fmt.Errorf("cannot generate %s: %w", what, err)
		}
		if err := writeFileAtomic(path, pemKey, 0o600); err != nil {
			return nil, err
		}
		return ParseKeyPEM(pemKey)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", what, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("cannot use %s %s: mode %04o lets others read it; run chmod 600 %s", what, path, fi.Mode().Perm(), path)
	}
	priv, err := ParseKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s %s: %w", what, path, err)
	}
	return priv, nil
}

// NewKeyPEM makes a new Ed25519 signing key (a command or update key) as
// a PEM PKCS#8 PRIVATE KEY block.
func NewKeyPEM() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKeyPEM reads an Ed25519 signing key that NewKeyPEM made.
func ParseKeyPEM(b []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("no PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%T is not Ed25519", k)
	}
	return priv, nil
}

// Files are the enroll package's persistent state in a data directory.
// The server replaces Tokens and Revocations with the store's
// (StoreTokens, StoreRevocations) after importing the files.
type Files struct {
	Tokens      Tokens
	Revocations RevocationList
	CommandKey  ed25519.PrivateKey
}

// OpenDir opens (creating when missing) the token store, revocation list
// and command key in dir: the state `vigil serve` and `vigil ctl
// enroll-token create` share.
func OpenDir(dir string, clock vigil.Clock) (Files, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Files{}, fmt.Errorf("cannot create data directory: %w", err)
	}
	toks, err := OpenTokenStore(filepath.Join(dir, TokensFile), clock)
	if err != nil {
		return Files{}, err
	}
	revs, err := OpenRevocations(filepath.Join(dir, RevokedFile), clock)
	if err != nil {
		return Files{}, err
	}
	key, err := EnsureCommandKey(filepath.Join(dir, CommandKeyFile))
	if err != nil {
		return Files{}, err
	}
	return Files{Tokens: toks, Revocations: revs, CommandKey: key}, nil
}
