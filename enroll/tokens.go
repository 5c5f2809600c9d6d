package enroll

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
const TokensFile = "enroll-tokens.jsonl"

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

// logEntry is one line of the token log.
type logEntry struct {
	Op     string       `json:"op"` // create, use, revoke
	Record *tokenRecord `json:"record,omitempty"`
	ID     string       `json:"id,omitempty"`
	Used   time.Time    `json:"used,omitzero"`
	UsedBy string       `json:"used_by,omitempty"`
}

// Tokens keeps enrollment tokens. Implementations are safe for
// concurrent use: TokenStore (a file of one node) and StoreTokens (a
// store.EnrollTokens, shared by every node on one database).
type Tokens interface {
	// Create makes a token for a device class, valid for ttl, and returns
	// its plaintext (shown once). EINVALID for a bad class or ttl.
	Create(class string, ttl time.Duration) (string, Token, error)
	// Peek returns the token a plaintext names without using it.
	// EUNAUTHORIZED, with one message whatever the reason, when it is
	// unknown, expired or used.
	Peek(plain string) (Token, error)
	// Redeem uses a token for a device, exactly once however many
	// callers race on it; EUNAUTHORIZED like Peek for all but one.
	Redeem(plain, deviceID string) (Token, error)
	// List returns every token, oldest first.
	List() ([]Token, error)
	// Revoke deletes a token by id. ENOTFOUND when there is none.
	Revoke(id string) error
}

var _ Tokens = (*TokenStore)(nil)

// TokenStore keeps enrollment tokens in an append-only log of JSON lines
// (create, use, revoke), fsynced per change, so that redeeming a token
// costs one short write however many tokens exist. It is safe for
// concurrent use by this process and by another (an offline `vigil ctl
// enroll-token create`): every operation takes an exclusive lock on a
// ".lock" file beside the log and first reads what the other appended.
// The log is compacted (rewritten with the live tokens, dropping those
// expired for a week) when it holds many more lines than tokens.
type TokenStore struct {
	path  string
	clock vigil.Clock

	mu     sync.Mutex
	byHash map[string]*tokenRecord
	byID   map[string]*tokenRecord
	order  []*tokenRecord // creation order; revoked ones removed
	lines  int            // lines in the log
	off    int64          // bytes of the log applied
	ino    uint64         // inode of the log applied
}

// OpenTokenStore opens the store at path (a missing file is empty).
func OpenTokenStore(path string, clock vigil.Clock) (*TokenStore, error) {
	if clock == nil {
		clock = vigil.SystemClock{}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("cannot open enrollment tokens: %w", err)
	}
	s := &TokenStore{path: path, clock: clock}
	s.reset()
	if err := s.locked(func() error { return nil }); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *TokenStore) reset() {
	s.byHash, s.byID, s.order, s.lines, s.off, s.ino = map[string]*tokenRecord{}, map[string]*tokenRecord{}, nil, 0, 0, 0
}

var classRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// Create makes a token for a device class, valid for ttl, and returns its
// plaintext (shown once). EINVALID for a bad class or ttl.
func (s *TokenStore) Create(class string, ttl time.Duration) (string, Token, error) {
	plain, rec, err := newToken(class, ttl, s.clock.Now())
	if err != nil {
		return "", Token{}, err
	}
	err = s.locked(func() error { return s.append(logEntry{Op: "create", Record: rec}) })
	if err != nil {
		return "", Token{}, err
	}
	return plain, rec.Token, nil
}

// newToken checks a class and ttl and makes a token created at now: its
// plaintext and its record.
func newToken(class string, ttl time.Duration, now time.Time) (string, *tokenRecord, error) {
	if !classRE.MatchString(class) {
		return "", nil, vigil.Errorf(vigil.EINVALID, "invalid device class %q: lowercase letters, digits, - and _", class)
	}
	if ttl <= 0 || ttl > MaxTokenTTL {
		return "", nil, vigil.Errorf(vigil.EINVALID, "token ttl %s is not in (0, %s]", ttl, MaxTokenTTL)
	}
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", nil, fmt.Errorf("cannot create enrollment token: %w", err)
	}
	plain := TokenPrefix + base64.RawURLEncoding.EncodeToString(secret[:])
	now = now.UTC()
	return plain, &tokenRecord{Token: Token{ID: vigil.NewID(), Class: class, Created: now, Expires: now.Add(ttl)}, Hash: hashToken(plain)}, nil
}

var errBadToken = vigil.Errorf(vigil.EUNAUTHORIZED, "invalid, expired or already used enrollment token")

// lookup returns the usable record of a plaintext. Callers hold the lock.
func (s *TokenStore) lookup(plain string) (*tokenRecord, error) {
	r, ok := s.byHash[hashToken(plain)]
	if !ok || !r.Used.IsZero() || !s.clock.Now().Before(r.Expires) {
		return nil, errBadToken
	}
	return r, nil
}

// Redeem uses a token for a device: it must exist, be unexpired and
// unused; it is then marked used by deviceID (on disk before Redeem
// returns). EUNAUTHORIZED otherwise, with the same message whatever the
// reason.
func (s *TokenStore) Redeem(plain, deviceID string) (Token, error) {
	var out Token
	err := s.locked(func() error {
		r, err := s.lookup(plain)
		if err != nil {
			return err
		}
		if err := s.append(logEntry{Op: "use", ID: r.ID, Used: s.clock.Now().UTC(), UsedBy: deviceID}); err != nil {
			return err
		}
		out = r.Token
		return nil
	})
	return out, err
}

// Peek returns the token a plaintext names without using it (to learn
// its class before the device id is chosen). EUNAUTHORIZED like Redeem.
func (s *TokenStore) Peek(plain string) (Token, error) {
	var out Token
	err := s.locked(func() error {
		r, err := s.lookup(plain)
		if err == nil {
			out = r.Token
		}
		return err
	})
	return out, err
}

// List returns every token, oldest first.
func (s *TokenStore) List() ([]Token, error) {
	var out []Token
	err := s.locked(func() error {
		out = make([]Token, len(s.order))
		for i, r := range s.order {
			out[i] = r.Token
		}
		return nil
	})
	return out, err
}

// Revoke deletes a token by id. ENOTFOUND when there is none.
func (s *TokenStore) Revoke(id string) error {
	return s.locked(func() error {
		if _, ok := s.byID[id]; !ok {
			return vigil.Errorf(vigil.ENOTFOUND, "no enrollment token %q", id)
		}
		return s.append(logEntry{Op: "revoke", ID: id})
	})
}

func hashToken(plain string) string {
	h := sha256.Sum256([]byte(strings.TrimSpace(plain)))
	return hex.EncodeToString(h[:])
}

// locked runs fn with the store up to date under both locks, then
// compacts the log when it is mostly history.
func (s *TokenStore) locked(fn func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	unlock, err := lockFile(s.path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.sync(); err != nil {
		return err
	}
	if err := fn(); err != nil {
		return err
	}
	if s.lines > 1000 && s.lines > 3*len(s.order) {
		return s.compact()
	}
	return nil
}

// sync applies what was appended to the log since the last look, or
// rereads it when it was replaced.
func (s *TokenStore) sync() error {
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		s.reset()
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read enrollment tokens: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot read enrollment tokens: %w", err)
	}
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = uint64(st.Ino)
	}
	if ino != s.ino || fi.Size() < s.off {
		s.reset()
		s.ino = ino
	}
	if fi.Size() == s.off {
		return nil
	}
	if _, err := f.Seek(s.off, io.SeekStart); err != nil {
		return fmt.Errorf("cannot read enrollment tokens: %w", err)
	}
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil { // a torn last line (crash mid-write) is ignored
			break
		}
		var e logEntry
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("cannot read enrollment tokens %s: line %d: %w", s.path, s.lines+1, err)
		}
		s.apply(e)
		s.lines++
		s.off += int64(len(line))
	}
	return nil
}

func (s *TokenStore) apply(e logEntry) {
	switch e.Op {
	case "create":
		if e.Record != nil {
			s.byHash[e.Record.Hash], s.byID[e.Record.ID] = e.Record, e.Record
			s.order = append(s.order, e.Record)
		}
	case "use":
		if r, ok := s.byID[e.ID]; ok {
			r.Used, r.UsedBy = e.Used, e.UsedBy
		}
	case "revoke":
		if r, ok := s.byID[e.ID]; ok {
			delete(s.byID, e.ID)
			delete(s.byHash, r.Hash)
			for i, o := range s.order {
				if o == r {
					s.order = append(s.order[:i], s.order[i+1:]...)
					break
				}
			}
		}
	}
}

// append writes one entry (fsync) and applies it.
func (s *TokenStore) append(e logEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("cannot write enrollment tokens: %w", err)
	}
	defer f.Close()
	if s.ino == 0 {
		if fi, err := f.Stat(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				s.ino = uint64(st.Ino)
			}
		}
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("cannot write enrollment tokens: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("cannot write enrollment tokens: %w", err)
	}
	s.apply(e)
	s.lines++
	s.off += int64(len(b))
	return nil
}

// compact rewrites the log with one create line per live token, dropping
// tokens expired for more than a week.
func (s *TokenStore) compact() error {
	now := s.clock.Now()
	var buf bytes.Buffer
	for _, r := range s.order {
		if now.Sub(r.Expires) > 7*24*time.Hour {
			continue
		}
		b, err := json.Marshal(logEntry{Op: "create", Record: r})
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if err := writeFileAtomic(s.path, buf.Bytes(), 0o600); err != nil {
		return err
	}
	s.reset()
	return s.sync()
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
