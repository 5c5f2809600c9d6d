package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/vigil-iot/vigil"
)

// TokenPrefix starts every token, so a leaked one is recognizable (secret
// scanners, logs).
const TokenPrefix = "vgl_"

// tokenBytes is the size of a token's random part.
const tokenBytes = 32

// BootstrapName is the name of the admin token EnsureBootstrapAdmin creates.
const BootstrapName = "bootstrap-admin"

// LastUsedResolution is how stale a token's stored last-used time may be:
// FileStore writes its file for a use at most this often per token.
const LastUsedResolution = time.Minute

// Token describes an API token. It never holds the secret.
type Token struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Role     Role      `json:"role"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"`
	// Expires is when the token stops working; zero: never.
	Expires time.Time `json:"expires,omitzero"`
	// Devices, when not empty, are the only devices an agent token may
	// send data for.
	Devices []string `json:"devices,omitempty"`
}

// Expired reports whether the token has expired at now.
func (t *Token) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// MayPostFor reports whether the token may send data about deviceID: any
// device when it is bound to none, else only those it is bound to.
func (t *Token) MayPostFor(deviceID string) bool {
	return len(t.Devices) == 0 || slices.Contains(t.Devices, deviceID)
}

// CreateOptions are the optional settings of a new token.
type CreateOptions struct {
	// TTL, when positive, is how long the token works (Token.Expires).
	TTL time.Duration
	// Devices bind an agent token to these device ids (Token.Devices).
	// Only agent tokens may be bound.
	Devices []string
}

// MaxBoundDevices bounds CreateOptions.Devices.
const MaxBoundDevices = 1000

// Store keeps API tokens.
type Store interface {
	// Create makes a new token and returns its plaintext, which is not
	// kept and cannot be shown again. EINVALID for a bad name or role,
	// ECONFLICT when the name is taken.
	Create(name string, role Role) (string, Token, error)
	// CreateWith is Create with options: an expiry, a device binding.
	// EINVALID for a bad option as well.
	CreateWith(name string, role Role, o CreateOptions) (string, Token, error)
	// Verify returns the token a plaintext belongs to and records its use.
	// EUNAUTHORIZED when it is unknown, revoked, expired or malformed.
	Verify(plaintext string) (Token, error)
	// List returns every token, oldest first.
	List() ([]Token, error)
	// Get returns one token by id. ENOTFOUND when there is none (never
	// created, or revoked).
	Get(id string) (Token, error)
	// Revoke deletes a token by id or name. ENOTFOUND when there is none.
	Revoke(ref string) error
	// EnsureBootstrapAdmin creates an admin token when no admin token
	// exists and returns its plaintext; otherwise it returns "".
	EnsureBootstrapAdmin() (string, error)
}

var _ Store = (*FileStore)(nil)

// FileStore keeps tokens in one JSON file. It is safe for concurrent use.
// Another process (an offline `vigil ctl token`) may change the file: the
// store rereads it whenever it changed, before every operation.
//
// Last-used times are kept to LastUsedResolution: a use writes the file only
// when the stored time is older than that.
type FileStore struct {
	path   string
	clock  vigil.Clock
	logger *slog.Logger

	mu     sync.Mutex
	tokens []*record // oldest first
	stamp  fileStamp // of the file as last read or written
	usedAt map[string]time.Time
}

// record is a token as stored.
type record struct {
	Token
	Hash string `json:"hash"` // hex SHA-256 of the plaintext
	hash []byte
}

type fileStamp struct {
	mod  time.Time
	size int64
	ok   bool
}

type fileFormat struct {
	Version int       `json:"version"`
	Tokens  []*record `json:"tokens"`
}

// Option configures a FileStore or a StoreTokens.
type Option func(*options)

type options struct {
	clock  vigil.Clock
	logger *slog.Logger
}

func applyOptions(opts []Option) options {
	o := options{clock: vigil.SystemClock{}}
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	o.logger = o.logger.With("component", "auth")
	return o
}

// WithClock sets the clock used for created and last-used times.
func WithClock(c vigil.Clock) Option { return func(o *options) { o.clock = c } }

// WithLogger sets the logger (component=auth is added).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// OpenFileStore opens the token file at path; a missing file is an empty
// store (the file is created by the first change).
func OpenFileStore(path string, opts ...Option) (*FileStore, error) {
	o := applyOptions(opts)
	s := &FileStore{path: path, clock: o.clock, logger: o.logger, usedAt: map[string]time.Time{}}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// Path returns the file the store keeps.
func (s *FileStore) Path() string { return s.path }

// load reads the file; the caller holds mu (or owns s).
func (s *FileStore) load() error {
	fi, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		s.tokens, s.stamp = nil, fileStamp{}
		return nil
	} else if err != nil {
		return fmt.Errorf("cannot read token file: %w", err)
	}
	b, err := os.ReadFile(s.path)
	if err != nil {
		return fmt.Errorf("cannot read token file: %w", err)
	}
	var f fileFormat
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("cannot parse token file %s: %w", s.path, err)
	}
	if f.Version != 1 {
		return fmt.Errorf("cannot parse token file %s: unsupported version %d", s.path, f.Version)
	}
	for i, r := range f.Tokens {
		h, err := hex.DecodeString(r.Hash)
		if err != nil || len(h) != sha256.Size {
			return fmt.Errorf("cannot parse token file %s: token %d (%q) has a bad hash", s.path, i, r.Name)
		}
		if !r.Role.Valid() {
			return fmt.Errorf("cannot parse token file %s: token %d (%q) has unknown role %q", s.path, i, r.Name, r.Role)
		}
		r.hash = h
		// Keep uses seen by this process that the file has not caught up with.
		if t, ok := s.usedAt[r.ID]; ok && t.After(r.LastUsed) {
			r.LastUsed = t
		}
	}
	s.tokens = f.Tokens
	s.stamp = fileStamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
	return nil
}

// reloadIfChanged rereads the file when another process changed it.
func (s *FileStore) reloadIfChanged() error {
	fi, err := os.Stat(s.path)
	var now fileStamp
	if err == nil {
		now = fileStamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot read token file: %w", err)
	}
	if now == s.stamp {
		return nil
	}
	return s.load()
}

// save writes every token to the file atomically; the caller holds mu.
func (s *FileStore) save() error {
	f := fileFormat{Version: 1, Tokens: s.tokens}
	if f.Tokens == nil {
		f.Tokens = []*record{}
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode tokens: %w", err)
	}
	b = append(b, '\n')
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("cannot write token file: %w", err)
	}
	if err := writeFileAtomic(s.path, b, 0o600); err != nil {
		return err
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("cannot write token file: %w", err)
	}
	s.stamp = fileStamp{mod: fi.ModTime(), size: fi.Size(), ok: true}
	return nil
}

// Create makes a new token; see Store.
func (s *FileStore) Create(name string, role Role) (string, Token, error) {
	return s.CreateWith(name, role, CreateOptions{})
}

// CreateWith makes a new token with options; see Store.
func (s *FileStore) CreateWith(name string, role Role, o CreateOptions) (string, Token, error) {
	name, devices, err := checkCreate(name, role, o)
	if err != nil {
		return "", Token{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadIfChanged(); err != nil {
		return "", Token{}, err
	}
	for _, r := range s.tokens {
		if r.Name == name {
			return "", Token{}, vigil.Errorf(vigil.ECONFLICT, "a token named %q exists", name)
		}
	}
	return s.create(name, role, o.TTL, devices)
}

// checkCreate checks a new token's name, role and options and returns the
// trimmed name and the device ids without duplicates.
func checkCreate(name string, role Role, o CreateOptions) (string, []string, error) {
	name = strings.TrimSpace(name)
	if err := checkName(name); err != nil {
		return "", nil, err
	}
	if !role.Valid() {
		return "", nil, vigil.Errorf(vigil.EINVALID, "unknown role %q: want admin, analyst, viewer or agent", role)
	}
	if o.TTL < 0 {
		return "", nil, vigil.Errorf(vigil.EINVALID, "token ttl %s is negative", o.TTL)
	}
	if len(o.Devices) > 0 && role != RoleAgent {
		return "", nil, vigil.Errorf(vigil.EINVALID, "only agent tokens can be bound to devices, not %s tokens", role)
	}
	if len(o.Devices) > MaxBoundDevices {
		return "", nil, vigil.Errorf(vigil.EINVALID, "a token can be bound to at most %d devices, not %d", MaxBoundDevices, len(o.Devices))
	}
	var devices []string
	for i, d := range o.Devices {
		d = strings.TrimSpace(d)
		if err := checkDeviceID(d); err != nil {
			return "", nil, vigil.Errorf(vigil.EINVALID, "device %d: %v", i+1, err)
		}
		if !slices.Contains(devices, d) {
			devices = append(devices, d)
		}
	}
	return name, devices, nil
}

// newSecret makes a token's plaintext and its SHA-256.
func newSecret() (string, []byte, error) {
	var secret [tokenBytes]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", nil, fmt.Errorf("cannot generate token: %w", err)
	}
	plain := TokenPrefix + base64.RawURLEncoding.EncodeToString(secret[:])
	h := sha256.Sum256([]byte(plain))
	return plain, h[:], nil
}

// wellFormed reports whether a plaintext has a token's shape.
func wellFormed(plaintext string) bool {
	return strings.HasPrefix(plaintext, TokenPrefix) && len(plaintext) == len(TokenPrefix)+base64.RawURLEncoding.EncodedLen(tokenBytes)
}

// checkDeviceID accepts a device id as the agent protocol defines it.
func checkDeviceID(id string) error {
	if id == "" || len(id) > 128 {
		return errors.New("a device id is 1 to 128 bytes")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-:@", c) >= 0) {
			return fmt.Errorf("device id %q: want letters, digits, '.', '_', ':', '@' or '-'", id)
		}
	}
	return nil
}

func (s *FileStore) create(name string, role Role, ttl time.Duration, devices []string) (string, Token, error) {
	plain, h, err := newSecret()
	if err != nil {
		return "", Token{}, err
	}
	now := s.clock.Now().UTC()
	r := &record{
		Token: Token{ID: vigil.NewID(), Name: name, Role: role, Created: now, Devices: devices},
		Hash:  hex.EncodeToString(h),
		hash:  h,
	}
	if ttl > 0 {
		r.Expires = now.Add(ttl)
	}
	s.tokens = append(s.tokens, r)
	if err := s.save(); err != nil {
		s.tokens = s.tokens[:len(s.tokens)-1]
		return "", Token{}, err
	}
	return plain, r.Token, nil
}

func checkName(name string) error {
	if name == "" {
		return vigil.Errorf(vigil.EINVALID, "token name is empty")
	}
	if len(name) > 100 {
		return vigil.Errorf(vigil.EINVALID, "token name is longer than 100 bytes")
	}
	for _, c := range name {
		if !unicode.IsPrint(c) {
			return vigil.Errorf(vigil.EINVALID, "token name %q has a non-printable character", name)
		}
	}
	return nil
}

// errBadToken is the one answer for every token that does not verify, so
// callers learn nothing about why.
var errBadToken = vigil.Errorf(vigil.EUNAUTHORIZED, "invalid, expired or revoked token")

// Verify returns the token a plaintext belongs to; see Store. Every stored
// hash is compared in constant time.
func (s *FileStore) Verify(plaintext string) (Token, error) {
	if !wellFormed(plaintext) {
		return Token{}, errBadToken
	}
	h := sha256.Sum256([]byte(plaintext))
	s.mu.Lock()
	defer s.mu.Unlock()
	// One stat per call: a token revoked or created by another process
	// takes effect at once.
	if err := s.reloadIfChanged(); err != nil {
		s.logger.Warn("cannot reread token file", "err", err)
	}
	r := s.find(h[:])
	if r == nil {
		return Token{}, errBadToken
	}
	now := s.clock.Now().UTC()
	if r.Expired(now) {
		return Token{}, errBadToken
	}
	if now.Sub(r.LastUsed) >= LastUsedResolution {
		r.LastUsed = now
		s.usedAt[r.ID] = now
		if err := s.save(); err != nil {
			s.logger.Warn("cannot record token use", "token", r.Name, "err", err)
		}
	}
	return r.Token, nil
}

// find compares h against every stored hash in constant time and returns
// the match; the caller holds mu.
func (s *FileStore) find(h []byte) *record {
	var found *record
	for _, r := range s.tokens {
		if subtle.ConstantTimeCompare(r.hash, h) == 1 {
			found = r
		}
	}
	return found
}

// List returns every token, oldest first.
func (s *FileStore) List() ([]Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadIfChanged(); err != nil {
		return nil, err
	}
	out := make([]Token, len(s.tokens))
	for i, r := range s.tokens {
		out[i] = r.Token
		out[i].Devices = slices.Clone(r.Devices)
	}
	return out, nil
}

// Get returns one token by id.
func (s *FileStore) Get(id string) (Token, error) {
	toks, err := s.List()
	if err != nil {
		return Token{}, err
	}
	for _, t := range toks {
		if t.ID == id {
			return t, nil
		}
	}
	return Token{}, vigil.Errorf(vigil.ENOTFOUND, "no token with id %q", id)
}

// Revoke deletes a token by id or name.
func (s *FileStore) Revoke(ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadIfChanged(); err != nil {
		return err
	}
	i := slices.IndexFunc(s.tokens, func(r *record) bool { return r.ID == ref || r.Name == ref })
	if i < 0 || ref == "" {
		return vigil.Errorf(vigil.ENOTFOUND, "no token with id or name %q", ref)
	}
	old := s.tokens
	id := s.tokens[i].ID
	s.tokens = slices.Delete(slices.Clone(s.tokens), i, i+1)
	if err := s.save(); err != nil {
		s.tokens = old
		return err
	}
	delete(s.usedAt, id)
	return nil
}

// EnsureBootstrapAdmin creates the first admin token; see Store. Its name
// is BootstrapName (with a suffix when that name is taken).
func (s *FileStore) EnsureBootstrapAdmin() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadIfChanged(); err != nil {
		return "", err
	}
	now := s.clock.Now()
	for _, r := range s.tokens {
		if r.Role == RoleAdmin && !r.Expired(now) {
			return "", nil
		}
	}
	name := BootstrapName
	for n := 2; slices.ContainsFunc(s.tokens, func(r *record) bool { return r.Name == name }); n++ {
		name = fmt.Sprintf("%s-%d", BootstrapName, n)
	}
	plain, _, err := s.create(name, RoleAdmin, 0, nil)
	return plain, err
}

// writeFileAtomic writes data to a temporary file next to path, syncs it
// and renames it over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
