package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

const tokenCols = "id, name, role, hash, created, last_used, expires, devices"

// CreateToken stores a new API token; ECONFLICT when its id, name or hash
// is taken.
func (s *Store) CreateToken(ctx context.Context, t store.APIToken) error {
	if err := store.CheckToken(t); err != nil {
		return err
	}
	devices, _ := json.Marshal(nonNil(t.Devices))
	res, err := s.w.ExecContext(ctx, "INSERT INTO api_tokens("+tokenCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
		t.ID, t.Name, t.Role, t.Hash, store.Nanos(t.Created), store.OptNanos(t.LastUsed), store.OptNanos(t.Expires), string(devices))
	if err != nil {
		return fmt.Errorf("cannot create token %q: %w", t.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("cannot create token %q: %w", t.Name, err)
	} else if n == 0 {
		return vigil.Errorf(vigil.ECONFLICT, "a token with id %q, name %q or the same secret exists", t.ID, t.Name)
	}
	return nil
}

func scanToken(sc interface{ Scan(...any) error }) (store.APIToken, error) {
	var (
		t                     store.APIToken
		created, used, expire int64
		devices               string
	)
	if err := sc.Scan(&t.ID, &t.Name, &t.Role, &t.Hash, &created, &used, &expire, &devices); err != nil {
		return store.APIToken{}, err
	}
	t.Created, t.LastUsed, t.Expires = time.Unix(0, created).UTC(), store.FromOptNanos(used), store.FromOptNanos(expire)
	if err := json.Unmarshal([]byte(devices), &t.Devices); err != nil {
		return store.APIToken{}, fmt.Errorf("token %q has bad devices: %w", t.ID, err)
	}
	if len(t.Devices) == 0 {
		t.Devices = nil
	}
	return t, nil
}

// GetTokenByHash returns the token with a hash; ENOTFOUND when none.
func (s *Store) GetTokenByHash(ctx context.Context, hash string) (store.APIToken, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, "SELECT "+tokenCols+" FROM api_tokens WHERE hash = ?", hash))
	if isNoRows(err) {
		return store.APIToken{}, vigil.Errorf(vigil.ENOTFOUND, "no token with that hash")
	} else if err != nil {
		return store.APIToken{}, fmt.Errorf("cannot get token: %w", err)
	}
	return t, nil
}

// GetToken returns a token by id; ENOTFOUND when none.
func (s *Store) GetToken(ctx context.Context, id string) (store.APIToken, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, "SELECT "+tokenCols+" FROM api_tokens WHERE id = ?", id))
	if isNoRows(err) {
		return store.APIToken{}, store.NotFound("token", id)
	} else if err != nil {
		return store.APIToken{}, fmt.Errorf("cannot get token %q: %w", id, err)
	}
	return t, nil
}

// ListTokens returns every token, oldest first.
func (s *Store) ListTokens(ctx context.Context) ([]store.APIToken, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+tokenCols+" FROM api_tokens ORDER BY created, id")
	if err != nil {
		return nil, fmt.Errorf("cannot list tokens: %w", err)
	}
	defer rows.Close()
	var out []store.APIToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("cannot list tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list tokens: %w", err)
	}
	return out, nil
}

// DeleteToken removes a token by id, else by name; ENOTFOUND when none.
func (s *Store) DeleteToken(ctx context.Context, ref string) (string, error) {
	var id string
	err := s.w.QueryRowContext(ctx, `DELETE FROM api_tokens WHERE id = (
		SELECT id FROM api_tokens WHERE id = ?1 UNION ALL SELECT id FROM api_tokens WHERE name = ?1 LIMIT 1) RETURNING id`, ref).Scan(&id)
	if isNoRows(err) {
		return "", vigil.Errorf(vigil.ENOTFOUND, "no token with id or name %q", ref)
	} else if err != nil {
		return "", fmt.Errorf("cannot delete token %q: %w", ref, err)
	}
	return id, nil
}

// TouchToken records a use of a token.
func (s *Store) TouchToken(ctx context.Context, id string, used time.Time) error {
	if _, err := s.w.ExecContext(ctx, "UPDATE api_tokens SET last_used = ? WHERE id = ? AND last_used < ?",
		store.Nanos(used), id, store.Nanos(used)); err != nil {
		return fmt.Errorf("cannot record a use of token %q: %w", id, err)
	}
	return nil
}
