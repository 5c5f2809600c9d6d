package enroll

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-iot/vigil"
)

// TokenPrefix starts every enrollment token.
const TokenPrefix = "vge_"

// TokensFile is the token store's file name in the data directory.
const TokensFile = "enroll-tokens.json"

// MaxTokenTTL bounds an enrollment token's lifetime.
const MaxTokenTTL = 30 * 24 * time.Hour

// Token describes an enrollment token; it never holds the secret.
type Token struct {
	ID      string    `json:"id"`
	Class   string    `json:"class"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// Used is when a device enrolled with it; UsedBy is that device.
	Used   time.Time `json:"used,omitzero"`
	UsedBy string    `json:"used_by,omitempty"`
}

type tokenRecord struct {
	Token
	Hash string `json:"hash"` // hex SHA-256 of the plaintext
}

// TokenStore keeps enrollment tokens in one JSON file, safe for
// concurrent use by this process and by another (an offline `vigil ctl
// enroll-token create`): every operation rereads the file under an
// exclusive lock on a ".lock" file beside it.
type TokenStore struct {
	path  string
	clock vigil.Clock
	mu    sync.Mutex
}

// OpenTokenStore opens the store at path (a missing file is empty).
func OpenTokenStore(path string, clock vigil.Clock) (*TokenStore, error) {
	if clock == nil {
		clock = vigil.SystemClock{}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cannot open enrollment tokens: %w", err)
	}
	return &TokenStore{path: path, clock: clock}, nil
}

var classRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Create makes a token for a device class, valid for ttl, and returns its
// plaintext (shown once). EINVALID for a bad class or ttl.
func (s *TokenStore) Create(class string, ttl time.Duration) (string, Token, error) {
	if !classRE.MatchString(class) {
		return "", Token{}, vigil.Errorf(vigil.EINVALID, "invalid device class %q: lowercase letters, digits, - and _", class)
	}
	if ttl <= 0 || ttl > MaxTokenTTL {
		return "", Token{}, vigil.Errorf(vigil.EINVALID, "token ttl %s is not in (0, %s]", ttl, MaxTokenTTL)
	}
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", Token{}, fmt.Errorf("cannot create enrollment token: %w", err)
	}
	plain := TokenPrefix + base64.RawURLEncoding.EncodeToString(secret[:])
	now := s.clock.Now().UTC()
	rec := &tokenRecord{Token: Token{ID: vigil.NewID(), Class: class, Created: now, Expires: now.Add(ttl)}, Hash: hashToken(plain)}
	err := s.update(func(recs []*tokenRecord) ([]*tokenRecord, error) {
		// Drop tokens that expired more than a week ago.
		kept := recs[:0]
		for _, r := range recs {
			if now.Sub(r.Expires) < 7*24*time.Hour {
				kept = append(kept, r)
			}
		}
		return append(kept, rec), nil
	})
	if err != nil {
		return "", Token{}, err
	}
	return plain, rec.Token, nil
}

// Redeem uses a token for a device: it must exist, be unexpired and
// unused; it is then marked used by deviceID. EUNAUTHORIZED otherwise,
// with the same message whatever the reason.
func (s *TokenStore) Redeem(plain, deviceID string) (Token, error) {
	h := hashToken(plain)
	now := s.clock.Now().UTC()
	var out Token
	err := s.update(func(recs []*tokenRecord) ([]*tokenRecord, error) {
		for _, r := range recs {
			if subtle.ConstantTimeCompare([]byte(r.Hash), []byte(h)) != 1 {
				continue
			}
			if !r.Used.IsZero() || !now.Before(r.Expires) {
				break
			}
			r.Used, r.UsedBy = now, deviceID
			out = r.Token
			return recs, nil
		}
		return nil, vigil.Errorf(vigil.EUNAUTHORIZED, "invalid, expired or already used enrollment token")
	})
	return out, err
}

// Peek returns the token a plaintext names without using it (to learn
// its class before the device id is chosen). EUNAUTHORIZED like Redeem.
func (s *TokenStore) Peek(plain string) (Token, error) {
	h := hashToken(plain)
	all, err := s.read()
	if err != nil {
		return Token{}, err
	}
	now := s.clock.Now()
	for _, r := range all {
		if subtle.ConstantTimeCompare([]byte(r.Hash), []byte(h)) == 1 && r.Used.IsZero() && now.Before(r.Expires) {
			return r.Token, nil
		}
	}
	return Token{}, vigil.Errorf(vigil.EUNAUTHORIZED, "invalid, expired or already used enrollment token")
}

// List returns every token, oldest first.
func (s *TokenStore) List() ([]Token, error) {
	recs, err := s.read()
	if err != nil {
		return nil, err
	}
	out := make([]Token, len(recs))
	for i, r := range recs {
		out[i] = r.Token
	}
	return out, nil
}

// Revoke deletes a token by id. ENOTFOUND when there is none.
func (s *TokenStore) Revoke(id string) error {
	return s.update(func(recs []*tokenRecord) ([]*tokenRecord, error) {
		for i, r := range recs {
			if r.ID == id {
				return append(recs[:i], recs[i+1:]...), nil
			}
		}
		return nil, vigil.Errorf(vigil.ENOTFOUND, "no enrollment token %q", id)
	})
}

func hashToken(plain string) string {
	h := sha256.Sum256([]byte(strings.TrimSpace(plain)))
	return hex.EncodeToString(h[:])
}

type tokenFile struct {
	Version int            `json:"version"`
	Tokens  []*tokenRecord `json:"tokens"`
}

func (s *TokenStore) read() ([]*tokenRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := lockFile(s.path + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.load()
}

func (s *TokenStore) load() ([]*tokenRecord, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read enrollment tokens: %w", err)
	}
	var f tokenFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("cannot read enrollment tokens %s: %w", s.path, err)
	}
	return f.Tokens, nil
}

// update runs fn on the records under the lock and writes what it returns.
func (s *TokenStore) update(fn func([]*tokenRecord) ([]*tokenRecord, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := lockFile(s.path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	recs, err := s.load()
	if err != nil {
		return err
	}
	recs, err = fn(recs)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(tokenFile{Version: 1, Tokens: recs}, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.path, b, 0o600)
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot lock %s: %w", path, err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}
