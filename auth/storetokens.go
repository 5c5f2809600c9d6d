package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

var _ Store = (*StoreTokens)(nil)

// storeTimeout bounds one call to the token store: Store's methods take no
// context.
const storeTimeout = 10 * time.Second

// StoreTokens keeps tokens in a store.Tokens, so that every node on one
// database shares them. It keeps no cache: every Verify is one lookup by
// hash, so a token revoked on one node is refused by every node at its
// next request. Last-used times are kept to LastUsedResolution, like
// FileStore's.
//
// A token is found by its hash through the database's index rather than
// by comparing every hash in constant time as FileStore does: the timing
// of an index lookup of a SHA-256 reveals nothing usable about a secret
// of 256 random bits.
type StoreTokens struct {
	st     store.Tokens
	clock  vigil.Clock
	logger *slog.Logger
}

// NewStoreTokens returns a token Store backed by st.
func NewStoreTokens(st store.Tokens, opts ...Option) *StoreTokens {
	o := applyOptions(opts)
	return &StoreTokens{st: st, clock: o.clock, logger: o.logger}
}

func callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), storeTimeout)
}

func fromStored(t store.APIToken) Token {
	return Token{ID: t.ID, Name: t.Name, Role: Role(t.Role), Created: t.Created, LastUsed: t.LastUsed,
		Expires: t.Expires, Devices: slices.Clone(t.Devices)}
}

// Create makes a new token; see Store.
func (s *StoreTokens) Create(name string, role Role) (string, Token, error) {
	return s.CreateWith(name, role, CreateOptions{})
}

// CreateWith makes a new token with options; see Store.
func (s *StoreTokens) CreateWith(name string, role Role, o CreateOptions) (string, Token, error) {
	name, devices, err := checkCreate(name, role, o)
	if err != nil {
		return "", Token{}, err
	}
	return s.create(name, role, o.TTL, devices)
}

func (s *StoreTokens) create(name string, role Role, ttl time.Duration, devices []string) (string, Token, error) {
	plain, h, err := newSecret()
	if err != nil {
		return "", Token{}, err
	}
	now := s.clock.Now().UTC()
	t := store.APIToken{ID: vigil.NewID(), Name: name, Role: string(role), Hash: hex.EncodeToString(h), Created: now, Devices: devices}
	if ttl > 0 {
		t.Expires = now.Add(ttl)
	}
	ctx, cancel := callCtx()
	defer cancel()
	if err := s.st.CreateToken(ctx, t); err != nil {
		if vigil.ErrorCode(err) == vigil.ECONFLICT {
			return "", Token{}, vigil.Errorf(vigil.ECONFLICT, "a token named %q exists", name)
		}
		return "", Token{}, err
	}
	return plain, fromStored(t), nil
}

// Verify returns the token a plaintext belongs to; see Store.
func (s *StoreTokens) Verify(plaintext string) (Token, error) {
	if !wellFormed(plaintext) {
		return Token{}, errBadToken
	}
	h := sha256.Sum256([]byte(plaintext))
	ctx, cancel := callCtx()
	defer cancel()
	st, err := s.st.GetTokenByHash(ctx, hex.EncodeToString(h[:]))
	if vigil.ErrorCode(err) == vigil.ENOTFOUND {
		return Token{}, errBadToken
	} else if err != nil {
		return Token{}, fmt.Errorf("cannot verify token: %w", err)
	}
	t := fromStored(st)
	now := s.clock.Now().UTC()
	if !t.Role.Valid() || t.Expired(now) {
		return Token{}, errBadToken
	}
	if now.Sub(t.LastUsed) >= LastUsedResolution {
		if err := s.st.TouchToken(ctx, t.ID, now); err != nil {
			s.logger.Warn("cannot record token use", "token", t.Name, "err", err)
		} else {
			t.LastUsed = now
		}
	}
	return t, nil
}

// List returns every token, oldest first.
func (s *StoreTokens) List() ([]Token, error) {
	ctx, cancel := callCtx()
	defer cancel()
	all, err := s.st.ListTokens(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Token, len(all))
	for i, t := range all {
		out[i] = fromStored(t)
	}
	return out, nil
}

// Get returns one token by id: one indexed read, so a revocation on
// another node is seen at once.
func (s *StoreTokens) Get(id string) (Token, error) {
	ctx, cancel := callCtx()
	defer cancel()
	t, err := s.st.GetToken(ctx, id)
	if err != nil {
		return Token{}, err
	}
	return fromStored(t), nil
}

// Revoke deletes a token by id or name; every node refuses it from its
// next request on.
func (s *StoreTokens) Revoke(ref string) error {
	if ref == "" {
		return vigil.Errorf(vigil.ENOTFOUND, "no token with id or name %q", ref)
	}
	ctx, cancel := callCtx()
	defer cancel()
	_, err := s.st.DeleteToken(ctx, ref)
	return err
}

// EnsureBootstrapAdmin creates the first admin token; see Store. Its name
// is BootstrapName (with a suffix when that name is taken). Of nodes
// starting together on an empty database, one creates it.
func (s *StoreTokens) EnsureBootstrapAdmin() (string, error) {
	for range 5 {
		all, err := s.List()
		if err != nil {
			return "", err
		}
		now := s.clock.Now()
		if slices.ContainsFunc(all, func(t Token) bool { return t.Role == RoleAdmin && !t.Expired(now) }) {
			return "", nil
		}
		name := BootstrapName
		for n := 2; slices.ContainsFunc(all, func(t Token) bool { return t.Name == name }); n++ {
			name = fmt.Sprintf("%s-%d", BootstrapName, n)
		}
		plain, _, err := s.create(name, RoleAdmin, 0, nil)
		if vigil.ErrorCode(err) == vigil.ECONFLICT {
			continue // another node made one meanwhile: look again
		}
		return plain, err
	}
	return "", fmt.Errorf("cannot create the bootstrap admin token: its name stays taken")
}

// ImportedSuffix ends the name ImportFile gives the token file it imported.
const ImportedSuffix = ".imported"

// ImportFile moves the tokens of a token file (FileStore's, tokens.json)
// into the store, with their hashes, times, roles and device bindings, and
// renames the file to path+ImportedSuffix, so it is imported once. A
// missing file imports nothing. A token already imported (same id and
// hash) is skipped; one whose name another token has takes a suffix
// ("-imported", "-imported-2", ...), logged, so it keeps working. It
// returns how many tokens were added.
func (s *StoreTokens) ImportFile(path string) (int, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	f, err := OpenFileStore(path)
	if err != nil {
		return 0, fmt.Errorf("cannot import tokens: %w", err)
	}
	ctx, cancel := callCtx()
	defer cancel()
	added := 0
	for _, r := range f.tokens {
		t := store.APIToken{ID: r.ID, Name: r.Name, Role: string(r.Role), Hash: r.Hash, Created: r.Created.UTC(),
			LastUsed: r.LastUsed.UTC(), Expires: r.Expires.UTC(), Devices: r.Devices}
		if t.Created.IsZero() {
			t.Created = s.clock.Now().UTC()
		}
		if old, err := s.st.GetToken(ctx, t.ID); err == nil && old.Hash == t.Hash {
			continue
		}
		stored := false // the same secret is in the store already
		for n := 1; ; n++ {
			err = s.st.CreateToken(ctx, t)
			if vigil.ErrorCode(err) != vigil.ECONFLICT || n > 20 {
				break
			}
			if _, gerr := s.st.GetTokenByHash(ctx, t.Hash); gerr == nil {
				err, stored = nil, true
				break
			}
			t.Name = r.Name + "-imported"
			if n > 1 {
				t.Name = fmt.Sprintf("%s-imported-%d", r.Name, n)
			}
		}
		if err != nil {
			return added, fmt.Errorf("cannot import token %q from %s: %w", r.Name, path, err)
		}
		if stored {
			continue
		}
		if t.Name != r.Name {
			s.logger.Warn("imported token renamed: its name is taken", "token", r.Name, "as", t.Name, "id", t.ID)
		}
		added++
	}
	if err := os.Rename(path, path+ImportedSuffix); err != nil {
		return added, fmt.Errorf("cannot rename imported token file: %w", err)
	}
	s.logger.Info("imported API tokens into the store", "file", path, "tokens", added, "renamed_to", path+ImportedSuffix)
	return added, nil
}
