package pki

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealerRoundTripAndRefusals(t *testing.T) {
	key := []byte("an operator secrets key of 32+ bytes, base64 or not\n")
	s, err := NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal(SecretAuditKey, []byte("the audit key"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("the audit key")) {
		t.Fatal("sealed bytes hold the plaintext")
	}
	again, _ := s.Seal(SecretAuditKey, []byte("the audit key"))
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of one secret are equal: the nonce is not random")
	}
	// The same key (whitespace aside) opens it.
	s2, _ := NewSealer(bytes.TrimSpace(key))
	if got, err := s2.Open(SecretAuditKey, sealed); err != nil || string(got) != "the audit key" {
		t.Fatalf("Open: %q, %v", got, err)
	}
	other, _ := NewSealer([]byte("another operator secrets key, also 32+ bytes"))
	if _, err := other.Open(SecretAuditKey, sealed); !errors.Is(err, ErrWrongSecretsKey) {
		t.Fatalf("another key: %v, want ErrWrongSecretsKey", err)
	}
	if _, err := s.Open(SecretCA, sealed); !errors.Is(err, ErrWrongSecretsKey) {
		t.Fatalf("under another name: %v, want ErrWrongSecretsKey", err)
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, err := s.Open(SecretAuditKey, tampered); !errors.Is(err, ErrWrongSecretsKey) {
		t.Fatalf("altered: %v, want ErrWrongSecretsKey", err)
	}
	if _, err := s.Open(SecretAuditKey, sealed[:10]); err == nil {
		t.Fatal("a truncated secret opened")
	}
	if _, err := NewSealer([]byte("  short key  ")); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("a short key: %v", err)
	}
}

func TestLoadSealer(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secrets.key")
	os.WriteFile(path, []byte("0123456789abcdef0123456789abcdef0123456789abcdef\n"), 0o644)
	if _, err := LoadSealer(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a key others can read: %v", err)
	}
	os.Chmod(path, 0o600)
	if _, err := LoadSealer(path); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte("short"), 0o600)
	if _, err := LoadSealer(path); err == nil || strings.Contains(err.Error(), "short") || !strings.Contains(err.Error(), path) {
		t.Fatalf("a short key: %v (must name the file, not show the key)", err)
	}
	if _, err := LoadSealer(filepath.Join(dir, "none")); err == nil {
		t.Fatal("a missing key file loaded")
	}
}

func TestSplitJoinCA(t *testing.T) {
	certPEM, keyPEM, err := NewCAPEM(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, k, err := SplitCA(JoinCA(certPEM, keyPEM))
	if err != nil || !bytes.Equal(c, certPEM) || !bytes.Equal(k, keyPEM) {
		t.Fatalf("SplitCA(JoinCA): %v", err)
	}
	ca, err := ParseCA(c, k)
	if err != nil || !ca.Cert.IsCA {
		t.Fatalf("ParseCA: %v", err)
	}
	other, otherKey, _ := NewCAPEM(nil)
	if _, err := ParseCA(other, keyPEM); err == nil {
		t.Fatal("a CA with another CA's key parsed")
	}
	if _, _, err := SplitCA(otherKey); err == nil {
		t.Fatal("a key without a certificate split")
	}
}

// FuzzSealerOpen feeds Open arbitrary bytes: it returns an error or the
// plaintext of a real seal, and never panics.
func FuzzSealerOpen(f *testing.F) {
	s, err := NewSealer([]byte("fuzzing operator key of at least 32 bytes"))
	if err != nil {
		f.Fatal(err)
	}
	sealed, _ := s.Seal("ca", []byte("x"))
	f.Add(sealed)
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add(append([]byte{2}, sealed[1:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Only seals of "x" (the seed, made again in each fuzzing
		// process with a new nonce) open: anything else is a forgery.
		got, err := s.Open("ca", b)
		if err == nil && string(got) != "x" {
			t.Fatalf("opened bytes it did not seal: %x", b)
		}
	})
}

// FuzzSplitCA feeds SplitCA arbitrary bytes: it never panics, and what it
// accepts has a certificate block and a key block.
func FuzzSplitCA(f *testing.F) {
	certPEM, keyPEM, _ := NewCAPEM(nil)
	f.Add(JoinCA(certPEM, keyPEM))
	f.Add(certPEM)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, k, err := SplitCA(b)
		if err == nil && (len(c) == 0 || len(k) == 0) {
			t.Fatal("accepted without a certificate and a key")
		}
		if err == nil {
			ParseCA(c, k) // must not panic
		}
	})
}
