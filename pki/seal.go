package pki

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
)

// MinSecretsKey is the shortest operator secrets key accepted, in bytes
// (as written in the file, whitespace trimmed): 32 random bytes in base64
// or hex are longer.
const MinSecretsKey = 32

// sealVersion is the first byte of every sealed secret.
const sealVersion = 1

// ErrWrongSecretsKey is returned by Open when a sealed secret does not
// open with the key: another operator key sealed it, or it was altered.
var ErrWrongSecretsKey = errors.New("the secrets key does not open the stored secrets: it is not the key the cluster's first node was started with, or the stored secret was altered")

// Sealer encrypts the server's secrets (CA key, signing keys, audit key)
// for the store, with a key derived from the operator's secrets key:
// AES-256-GCM under HKDF-SHA256(operator key), a random 96-bit nonce per
// secret, and the secret's name as additional data, so a sealed secret
// cannot be passed off under another name. Few secrets are ever sealed
// with one key, far below the nonce collision bound.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer derives the sealing key from an operator key of at least
// MinSecretsKey bytes (leading and trailing whitespace trimmed).
func NewSealer(operatorKey []byte) (*Sealer, error) {
	k := bytes.TrimSpace(operatorKey)
	if len(k) < MinSecretsKey {
		return nil, fmt.Errorf("cannot use secrets key: %d bytes, want at least %d (e.g. head -c 32 /dev/urandom | base64)", len(k), MinSecretsKey)
	}
	key, err := hkdf.Key(sha256.New, k, []byte("vigil secrets"), "vigil sealed secrets v1 aes-256-gcm", 32)
	if err != nil {
		return nil, fmt.Errorf("cannot derive secrets key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("cannot derive secrets key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("cannot derive secrets key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// LoadSealer reads the operator's secrets key file; a file others can
// read is refused, as a CA key would be. The key never appears in an
// error.
func LoadSealer(path string) (*Sealer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read secrets key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("cannot use secrets key %s: mode %04o lets others read it; run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read secrets key: %w", err)
	}
	s, err := NewSealer(b)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return s, nil
}

// Seal encrypts plain as the secret called name.
func (s *Sealer) Seal(name string, plain []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("cannot seal %s: %w", name, err)
	}
	out := append([]byte{sealVersion}, nonce...)
	return s.aead.Seal(out, nonce, plain, []byte(name)), nil
}

// Open decrypts the secret called name. ErrWrongSecretsKey when it does
// not open (another key, another name, or altered bytes).
func (s *Sealer) Open(name string, sealed []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, fmt.Errorf("cannot open secret %s: not a sealed secret of this version", name)
	}
	plain, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(name))
	if err != nil {
		return nil, fmt.Errorf("cannot open secret %s: %w", name, ErrWrongSecretsKey)
	}
	return plain, nil
}
