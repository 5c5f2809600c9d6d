package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

const bumpCatalogVersion = `INSERT INTO catalog_versions(kind, version) VALUES ($1, 1)
	ON CONFLICT (kind) DO UPDATE SET version = catalog_versions.version + 1 RETURNING version`

// PutCatalogEntry creates or replaces a catalog document and returns the
// catalog's new version.
func (s *Store) PutCatalogEntry(ctx context.Context, kind, name string, doc []byte) (int64, error) {
	if kind == "" || name == "" {
		return 0, vigil.Errorf(vigil.EINVALID, "catalog entry needs a kind and a name, got %q %q", kind, name)
	}
	var v int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, bumpCatalogVersion, noNUL(kind)).Scan(&v); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO catalog_entries(kind, name, doc, version) VALUES ($1, $2, $3, $4)
			ON CONFLICT (kind, name) DO UPDATE SET doc = EXCLUDED.doc, version = EXCLUDED.version`, noNUL(kind), noNUL(name), doc, v)
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
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM catalog_entries WHERE kind = $1 AND name = $2", noNUL(kind), noNUL(name))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.NotFound(kind+" catalog entry", name)
		}
		return tx.QueryRow(ctx, bumpCatalogVersion, noNUL(kind)).Scan(&v)
	})
	if vigil.ErrorCode(err) == vigil.ENOTFOUND {
		return 0, err
	} else if err != nil {
		return 0, fmt.Errorf("cannot delete %s catalog entry %q: %w", kind, name, err)
	}
	return v, nil
}

// ListCatalogEntries returns a catalog's documents by name and its
// version, read in one snapshot.
func (s *Store) ListCatalogEntries(ctx context.Context, kind string) ([]store.CatalogEntry, int64, error) {
	var (
		out []store.CatalogEntry
		v   int64
	)
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, "SELECT coalesce((SELECT version FROM catalog_versions WHERE kind = $1), 0)", noNUL(kind)).Scan(&v); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT name, doc, version FROM catalog_entries WHERE kind = $1 ORDER BY name", noNUL(kind))
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.CatalogEntry, error) {
			var e store.CatalogEntry
			err := r.Scan(&e.Name, &e.Doc, &e.Version)
			return e, err
		})
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("cannot list the %s catalog: %w", kind, err)
	}
	return out, v, nil
}

// CatalogVersion returns a catalog's version (0: never changed).
func (s *Store) CatalogVersion(ctx context.Context, kind string) (int64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, "SELECT coalesce((SELECT version FROM catalog_versions WHERE kind = $1), 0)", noNUL(kind)).Scan(&v); err != nil {
		return 0, fmt.Errorf("cannot read the %s catalog version: %w", kind, err)
	}
	return v, nil
}

// Claims returns the keys claimed under kind.
func (s *Store) Claims(ctx context.Context, kind string) (map[string]time.Time, error) {
	rows, err := s.pool.Query(ctx, "SELECT key, at FROM catalog_claims WHERE kind = $1", noNUL(kind))
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
	tag, err := s.pool.Exec(ctx, "INSERT INTO catalog_claims(kind, key, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
		noNUL(kind), noNUL(key), store.Nanos(at))
	if err != nil {
		return false, fmt.Errorf("cannot claim %s %q: %w", kind, key, err)
	}
	return tag.RowsAffected() == 1, nil
}
