package audit

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFile is the audit key's file name in the data dir's pki directory,
// next to the CA key: key material, not state.
const KeyFile = "audit.key"

// keySize is the HMAC key's length in bytes.
const keySize = 32

// EnsureKey loads the audit HMAC key at path, or creates it (32 random
// bytes, hex, mode 0600) when missing. A key readable by others is
// refused, as a CA key would be.
func EnsureKey(path string) ([]byte, error) {
	k, err := LoadKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	var b [keySize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("cannot generate audit key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cannot create audit key directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) { // another process made it first
			return LoadKey(path)
		}
		return nil, fmt.Errorf("cannot create audit key: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(b[:]) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot write audit key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot write audit key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("cannot write audit key: %w", err)
	}
	return b[:], nil
}

// LoadKey reads the audit key at path without creating it. The error
// wraps fs.ErrNotExist when there is none. The key's content never
// appears in an error.
func LoadKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read audit key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("cannot use audit key %s: mode %04o lets others read it; run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read audit key: %w", err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) != keySize {
		return nil, fmt.Errorf("cannot use audit key %s: want %d bytes in hex on one line", path, keySize)
	}
	return k, nil
}

// NewKey makes a new audit key (32 random bytes).
func NewKey() ([]byte, error) {
	b := make([]byte, keySize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("cannot generate audit key: %w", err)
	}
	return b, nil
}

// CheckKey checks that k is an audit key (NewKey's length).
func CheckKey(k []byte) error {
	if len(k) != keySize {
		return fmt.Errorf("cannot use audit key: %d bytes, want %d", len(k), keySize)
	}
	return nil
}
