package enroll

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// storeTimeout bounds one call to the store: Tokens' and RevocationList's
// methods take no context.
const storeTimeout = 10 * time.Second

// ImportedSuffix ends the name an imported file is renamed to.
const ImportedSuffix = ".imported"

func storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), storeTimeout)
}

var _ Tokens = (*StoreTokens)(nil)

// StoreTokens keeps enrollment tokens in a store.EnrollTokens, so that
// every node on one database shares them: a token created on one node
// enrolls a device on any node, once (the store consumes it atomically).
// It keeps no cache.
//
// With ImportOnMiss, a token the store does not know makes it import the
// token file of the data dir first (what `vigil ctl enroll-token create
// --data-dir` writes on this node's host), so such tokens keep working
// while the server runs.
type StoreTokens struct {
	st     store.EnrollTokens
	clock  vigil.Clock
	log    *slog.Logger
	onMiss string // a token file to import on a miss; "" for none
}

// NewStoreTokens returns enrollment tokens kept in st.
func NewStoreTokens(st store.EnrollTokens, clock vigil.Clock, log *slog.Logger) *StoreTokens {
	if clock == nil {
		clock = vigil.SystemClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &StoreTokens{st: st, clock: clock, log: log.With("component", "enroll")}
}

// ImportOnMiss makes a token the store does not know import the token
// file at path (see ImportFile) before it is refused.
func (s *StoreTokens) ImportOnMiss(path string) { s.onMiss = path }

func fromStoredToken(t store.EnrollToken) Token {
	return Token{ID: t.ID, Class: t.Class, Created: t.Created, Expires: t.Expires, Used: t.Used, UsedBy: t.UsedBy}
}

// Create makes a token; see Tokens.
func (s *StoreTokens) Create(class string, ttl time.Duration) (string, Token, error) {
	plain, rec, err := newToken(class, ttl, s.clock.Now())
	if err != nil {
		return "", Token{}, err
	}
	ctx, cancel := storeCtx()
	defer cancel()
	if err := s.st.CreateEnrollToken(ctx, store.EnrollToken{ID: rec.ID, Class: rec.Class, Hash: rec.Hash, Created: rec.Created, Expires: rec.Expires}); err != nil {
		return "", Token{}, fmt.Errorf("cannot create enrollment token: %w", err)
	}
	return plain, rec.Token, nil
}

// Peek returns the token a plaintext names without using it; see Tokens.
func (s *StoreTokens) Peek(plain string) (Token, error) {
	h := hashToken(plain)
	ctx, cancel := storeCtx()
	defer cancel()
	t, err := s.st.GetEnrollToken(ctx, h)
	if vigil.ErrorCode(err) == vigil.ENOTFOUND && s.importOnMiss() {
		t, err = s.st.GetEnrollToken(ctx, h)
	}
	if vigil.ErrorCode(err) == vigil.ENOTFOUND {
		return Token{}, errBadToken
	} else if err != nil {
		return Token{}, fmt.Errorf("cannot check enrollment token: %w", err)
	}
	if !t.Used.IsZero() || !s.clock.Now().Before(t.Expires) {
		return Token{}, errBadToken
	}
	return fromStoredToken(t), nil
}

// importOnMiss imports the ImportOnMiss file when there is one, and
// reports whether it added tokens.
func (s *StoreTokens) importOnMiss() bool {
	if s.onMiss == "" {
		return false
	}
	n, err := s.ImportFile(s.onMiss)
	if err != nil {
		s.log.Error("cannot import enrollment tokens", "file", s.onMiss, "err", err)
	}
	return n > 0
}

// Redeem uses a token for a device, once across every node; see Tokens.
func (s *StoreTokens) Redeem(plain, deviceID string) (Token, error) {
	ctx, cancel := storeCtx()
	defer cancel()
	t, err := s.st.ConsumeEnrollToken(ctx, hashToken(plain), deviceID, s.clock.Now().UTC())
	if vigil.ErrorCode(err) == vigil.ENOTFOUND {
		return Token{}, errBadToken
	} else if err != nil {
		return Token{}, fmt.Errorf("cannot use enrollment token: %w", err)
	}
	return fromStoredToken(t), nil
}

// List returns every token, oldest first.
func (s *StoreTokens) List() ([]Token, error) {
	ctx, cancel := storeCtx()
	defer cancel()
	all, err := s.st.ListEnrollTokens(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Token, len(all))
	for i, t := range all {
		out[i] = fromStoredToken(t)
	}
	return out, nil
}

// Revoke deletes a token by id; every node refuses it from then on.
func (s *StoreTokens) Revoke(id string) error {
	ctx, cancel := storeCtx()
	defer cancel()
	return s.st.DeleteEnrollToken(ctx, id)
}

// ImportFile moves the tokens of a token file (TokenStore's, TokensFile)
// into the store, with their hashes, times and uses, and renames the file
// to path+ImportedSuffix, under the file's lock, so each is imported once
// and a `vigil ctl enroll-token create --data-dir` running meanwhile
// starts a new file. A missing file imports nothing; a token already in
// the store (same id or secret) is skipped. It returns how many tokens
// were added.
func (s *StoreTokens) ImportFile(path string) (int, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	f, err := OpenTokenStore(path, s.clock)
	if err != nil {
		return 0, fmt.Errorf("cannot import enrollment tokens: %w", err)
	}
	ctx, cancel := storeCtx()
	defer cancel()
	added := 0
	err = f.locked(func() error {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil // imported meanwhile
		}
		for _, r := range f.order {
			t := store.EnrollToken{ID: r.ID, Class: r.Class, Hash: r.Hash, Created: r.Created.UTC(), Expires: r.Expires.UTC(),
				Used: r.Used.UTC(), UsedBy: r.UsedBy}
			err := s.st.CreateEnrollToken(ctx, t)
			if vigil.ErrorCode(err) == vigil.ECONFLICT {
				continue
			}
			if err != nil {
				return fmt.Errorf("cannot import enrollment token %s from %s: %w", r.ID, path, err)
			}
			added++
		}
		if err := os.Rename(path, path+ImportedSuffix); err != nil {
			return fmt.Errorf("cannot rename imported enrollment tokens: %w", err)
		}
		f.reset() // the file is gone: nothing for locked to compact
		return nil
	})
	if err != nil {
		return added, err
	}
	s.log.Info("imported enrollment tokens into the store", "file", path, "tokens", added, "renamed_to", path+ImportedSuffix)
	return added, nil
}

var _ RevocationList = (*StoreRevocations)(nil)

// StoreRevocations keeps the revocation list in a store.Revocations, so
// that a certificate revoked on one node is refused by every node: each
// Check is one indexed read, with no cache.
type StoreRevocations struct {
	st    store.Revocations
	clock vigil.Clock
	log   *slog.Logger
}

// NewStoreRevocations returns a revocation list kept in st.
func NewStoreRevocations(st store.Revocations, clock vigil.Clock, log *slog.Logger) *StoreRevocations {
	if clock == nil {
		clock = vigil.SystemClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &StoreRevocations{st: st, clock: clock, log: log.With("component", "enroll")}
}

func (r *StoreRevocations) revoke(kind, key string) error {
	if key == "" {
		return vigil.Errorf(vigil.EINVALID, "cannot revoke: empty %s", kind)
	}
	ctx, cancel := storeCtx()
	defer cancel()
	return r.st.Revoke(ctx, store.Revocation{Kind: kind, Key: key, At: r.clock.Now().UTC()})
}

// RevokeDevice refuses every certificate issued to the device until now,
// on every node.
func (r *StoreRevocations) RevokeDevice(deviceID string) error {
	return r.revoke(store.RevokeDevice, deviceID)
}

// RevokeSerial refuses one certificate on every node.
func (r *StoreRevocations) RevokeSerial(serialHex string) error {
	return r.revoke(store.RevokeSerial, serialHex)
}

// Check returns EUNAUTHORIZED when the certificate is revoked; a store
// that cannot answer fails closed.
func (r *StoreRevocations) Check(cert *x509.Certificate) error {
	ctx, cancel := storeCtx()
	defer cancel()
	serial := cert.SerialNumber.Text(16)
	revs, err := r.st.Revoked(ctx, cert.Subject.CommonName, serial)
	if err != nil {
		return vigil.Errorf(vigil.EUNAUTHORIZED, "cannot check revocation: %v", err)
	}
	for _, rv := range revs {
		switch {
		case rv.Kind == store.RevokeSerial && rv.Key == serial:
			return vigil.Errorf(vigil.EUNAUTHORIZED, "client certificate %s is revoked", serial)
		case rv.Kind == store.RevokeDevice && rv.Key == cert.Subject.CommonName && !cert.NotBefore.After(rv.At):
			return vigil.Errorf(vigil.EUNAUTHORIZED, "device %s is revoked", cert.Subject.CommonName)
		}
	}
	return nil
}

// VerifyPeerCertificate refuses a revoked client certificate during the
// handshake, like Revocations.VerifyPeerCertificate.
func (r *StoreRevocations) VerifyPeerCertificate(_ [][]byte, chains [][]*x509.Certificate) error {
	if len(chains) == 0 || len(chains[0]) == 0 {
		return nil
	}
	return r.Check(chains[0][0])
}

// ImportFile moves the revocations of a revocation file (Revocations',
// RevokedFile) into the store with their times and renames the file to
// path+ImportedSuffix, so it is imported once. A missing file imports
// nothing. It returns how many revocations it read.
func (r *StoreRevocations) ImportFile(path string) (int, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	f, err := OpenRevocations(path, r.clock)
	if err != nil {
		return 0, fmt.Errorf("cannot import revocations: %w", err)
	}
	ctx, cancel := storeCtx()
	defer cancel()
	n := 0
	for kind, m := range map[string]map[string]time.Time{store.RevokeDevice: f.state.Devices, store.RevokeSerial: f.state.Serials} {
		for key, at := range m {
			if err := r.st.Revoke(ctx, store.Revocation{Kind: kind, Key: key, At: at.UTC()}); err != nil {
				return n, fmt.Errorf("cannot import revocation of %s %q from %s: %w", kind, key, path, err)
			}
			n++
		}
	}
	if err := os.Rename(path, path+ImportedSuffix); err != nil {
		return n, fmt.Errorf("cannot rename imported revocations: %w", err)
	}
	r.log.Info("imported revocations into the store", "file", path, "revocations", n, "renamed_to", path+ImportedSuffix)
	return n, nil
}
