package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil/store"
)

// PutSecretIfAbsent stores a secret unless one of its name is stored, and
// returns the stored one; see store.Secrets. Of nodes racing, the second
// INSERT waits for the first's commit and does nothing; its SELECT then
// reads the first's secret.
func (s *Store) PutSecretIfAbsent(ctx context.Context, sec store.Secret) (store.Secret, error) {
	if err := store.CheckSecret(sec); err != nil {
		return store.Secret{}, err
	}
	if _, err := s.pool.Exec(ctx, "INSERT INTO secrets(name, sealed, created) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
		noNUL(sec.Name), sec.Sealed, store.Nanos(sec.Created)); err != nil {
		return store.Secret{}, fmt.Errorf("cannot store secret %q: %w", sec.Name, err)
	}
	return s.GetSecret(ctx, sec.Name)
}

// GetSecret returns a secret by name; see store.Secrets.
func (s *Store) GetSecret(ctx context.Context, name string) (store.Secret, error) {
	var (
		sec     store.Secret
		created int64
	)
	err := s.pool.QueryRow(ctx, "SELECT name, sealed, created FROM secrets WHERE name = $1", noNUL(name)).Scan(&sec.Name, &sec.Sealed, &created)
	if isNoRows(err) {
		return store.Secret{}, store.NotFound("secret", name)
	} else if err != nil {
		return store.Secret{}, fmt.Errorf("cannot get secret %q: %w", name, err)
	}
	sec.Created = time.Unix(0, created).UTC()
	return sec, nil
}

// SetAuditKey sets the key that seals appended audit records (as
// Options.AuditKey does), for a server that reads the key from the store
// it opened (a shared secret). Call it before the first AppendAudit: it is
// not synchronised with appends.
func (s *Store) SetAuditKey(key []byte) { s.auditKey = key }
