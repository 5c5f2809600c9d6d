package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil/store"
)

// PutSecretIfAbsent stores a secret unless one of its name is stored, and
// returns the stored one; see store.Secrets.
func (s *Store) PutSecretIfAbsent(ctx context.Context, sec store.Secret) (store.Secret, error) {
	if err := store.CheckSecret(sec); err != nil {
		return store.Secret{}, err
	}
	if _, err := s.w.ExecContext(ctx, "INSERT INTO secrets(name, sealed, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
		sec.Name, sec.Sealed, store.Nanos(sec.Created)); err != nil {
		return store.Secret{}, fmt.Errorf("cannot store secret %q: %w", sec.Name, err)
	}
	return s.getSecret(ctx, s.w, sec.Name)
}

// GetSecret returns a secret by name; see store.Secrets.
func (s *Store) GetSecret(ctx context.Context, name string) (store.Secret, error) {
	return s.getSecret(ctx, s.r, name)
}

func (s *Store) getSecret(ctx context.Context, db interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, name string) (store.Secret, error) {
	var (
		sec     store.Secret
		created int64
	)
	err := db.QueryRowContext(ctx, "SELECT name, sealed, created FROM secrets WHERE name = ?", name).Scan(&sec.Name, &sec.Sealed, &created)
	if isNoRows(err) {
		return store.Secret{}, store.NotFound("secret", name)
	} else if err != nil {
		return store.Secret{}, fmt.Errorf("cannot get secret %q: %w", name, err)
	}
	sec.Created = time.Unix(0, created).UTC()
	return sec, nil
}
