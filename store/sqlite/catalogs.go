package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

const bumpCatalogVersion = `INSERT INTO catalog_versions(kind, version) VALUES (?, 1)
	ON CONFLICT (kind) DO UPDATE SET version = version + 1 RETURNING version`

// PutCatalogEntry creates or replaces a catalog document and returns the
// catalog's new version.
func (s *Store) PutCatalogEntry(ctx context.Context, kind, name string, doc []byte) (int64, error) {
	if kind == "" || name == "" {
		return 0, vigil.Errorf(vigil.EINVALID, "catalog entry needs a kind and a name, got %q %q", kind, name)
	}
	if doc == nil {
		doc = []byte{}
	}
	var v int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, bumpCatalogVersion, kind).Scan(&v); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO catalog_entries(kind, name, doc, version) VALUES (?, ?, ?, ?)`, kind, name, doc, v)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("cannot put %s catalog entry %q: %w", kind, name, err)
	}
	return v, nil
}

// DeleteCatalogEntry removes a catalog document; ENOTFOUND when there is
// none.
func (s *Store) DeleteCatalogEntry(ctx context.Context, kind, name string) (int64, error) {
	var v int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM catalog_entries WHERE kind = ? AND name = ?", kind, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.NotFound(kind+" catalog entry", name)
		}
		return tx.QueryRowContext(ctx, bumpCatalogVersion, kind).Scan(&v)
	})
	if vigil.ErrorCode(err) == vigil.ENOTFOUND {
		return 0, err
	} else if err != nil {
		return 0, fmt.Errorf("cannot delete %s catalog entry %q: %w", kind, name, err)
	}
	return v, nil
}

func (s *Store) inTx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// ListCatalogEntries returns a catalog's documents by name and its
// version, read in one transaction.
func (s *Store) ListCatalogEntries(ctx context.Context, kind string) ([]store.CatalogEntry, int64, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("cannot list the %s catalog: %w", kind, err)
	}
	defer tx.Rollback()
	var v int64
	if err := tx.QueryRowContext(ctx, "SELECT coalesce((SELECT version FROM catalog_versions WHERE kind = ?), 0)", kind).Scan(&v); err != nil {
		return nil, 0, fmt.Errorf("cannot list the %s catalog: %w", kind, err)
	}
	rows, err := tx.QueryContext(ctx, "SELECT name, doc, version FROM catalog_entries WHERE kind = ? ORDER BY name", kind)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot list the %s catalog: %w", kind, err)
	}
	defer rows.Close()
	var out []store.CatalogEntry
	for rows.Next() {
		var e store.CatalogEntry
		if err := rows.Scan(&e.Name, &e.Doc, &e.Version); err != nil {
			return nil, 0, fmt.Errorf("cannot read a %s catalog entry: %w", kind, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("cannot list the %s catalog: %w", kind, err)
	}
	return out, v, nil
}

// CatalogVersion returns a catalog's version (0: never changed).
func (s *Store) CatalogVersion(ctx context.Context, kind string) (int64, error) {
	var v int64
	if err := s.r.QueryRowContext(ctx, "SELECT coalesce((SELECT version FROM catalog_versions WHERE kind = ?), 0)", kind).Scan(&v); err != nil {
		return 0, fmt.Errorf("cannot read the %s catalog version: %w", kind, err)
	}
	return v, nil
}

// Claims returns the keys claimed under kind.
func (s *Store) Claims(ctx context.Context, kind string) (map[string]time.Time, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT key, at FROM catalog_claims WHERE kind = ?", kind)
	if err != nil {
		return nil, fmt.Errorf("cannot list %s claims: %w", kind, err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var (
			key string
			at  int64
		)
		if err := rows.Scan(&key, &at); err != nil {
			return nil, fmt.Errorf("cannot read a %s claim: %w", kind, err)
		}
		out[key] = time.Unix(0, at).UTC()
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list %s claims: %w", kind, err)
	}
	return out, nil
}

// Claim records a key once; true for the call that recorded it.
func (s *Store) Claim(ctx context.Context, kind, key string, at time.Time) (bool, error) {
	res, err := s.w.ExecContext(ctx, "INSERT OR IGNORE INTO catalog_claims(kind, key, at) VALUES (?, ?, ?)", kind, key, store.Nanos(at))
	if err != nil {
		return false, fmt.Errorf("cannot claim %s %q: %w", kind, key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("cannot claim %s %q: %w", kind, key, err)
	}
	return n == 1, nil
}
