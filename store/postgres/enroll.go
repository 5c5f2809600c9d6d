package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

const enrollTokenCols = "id, class, hash, created, expires, used, used_by"

// CreateEnrollToken stores a new enrollment token; ECONFLICT when its id
// or hash is taken.
func (s *Store) CreateEnrollToken(ctx context.Context, t store.EnrollToken) error {
	if err := store.CheckEnrollToken(t); err != nil {
		return err
	}
	res, err := s.pool.Exec(ctx, "INSERT INTO enroll_tokens("+enrollTokenCols+") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
		t.ID, t.Class, t.Hash, store.Nanos(t.Created), store.Nanos(t.Expires), store.OptNanos(t.Used), t.UsedBy)
	if err != nil {
		return fmt.Errorf("cannot create enrollment token %q: %w", t.ID, err)
	}
	if res.RowsAffected() == 0 {
		return vigil.Errorf(vigil.ECONFLICT, "an enrollment token with id %q or the same secret exists", t.ID)
	}
	return nil
}

func scanEnrollToken(sc interface{ Scan(...any) error }) (store.EnrollToken, error) {
	var (
		t                      store.EnrollToken
		created, expires, used int64
	)
	if err := sc.Scan(&t.ID, &t.Class, &t.Hash, &created, &expires, &used, &t.UsedBy); err != nil {
		return store.EnrollToken{}, err
	}
	t.Created, t.Expires, t.Used = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC(), store.FromOptNanos(used)
	return t, nil
}

// GetEnrollToken returns the enrollment token with a hash; ENOTFOUND when
// none.
func (s *Store) GetEnrollToken(ctx context.Context, hash string) (store.EnrollToken, error) {
	t, err := scanEnrollToken(s.pool.QueryRow(ctx, "SELECT "+enrollTokenCols+" FROM enroll_tokens WHERE hash = $1", hash))
	if isNoRows(err) {
		return store.EnrollToken{}, vigil.Errorf(vigil.ENOTFOUND, "no enrollment token with that hash")
	} else if err != nil {
		return store.EnrollToken{}, fmt.Errorf("cannot get enrollment token: %w", err)
	}
	return t, nil
}

// ConsumeEnrollToken marks a usable token used, in one conditional
// UPDATE: of racing callers exactly one changes the row.
func (s *Store) ConsumeEnrollToken(ctx context.Context, hash, deviceID string, now time.Time) (store.EnrollToken, error) {
	t, err := scanEnrollToken(s.pool.QueryRow(ctx, "UPDATE enroll_tokens SET used = $1, used_by = $2 WHERE hash = $3 AND used = 0 AND expires > $4 RETURNING "+enrollTokenCols,
		store.Nanos(now), deviceID, hash, store.Nanos(now)))
	if isNoRows(err) {
		return store.EnrollToken{}, vigil.Errorf(vigil.ENOTFOUND, "no usable enrollment token with that hash")
	} else if err != nil {
		return store.EnrollToken{}, fmt.Errorf("cannot use enrollment token: %w", err)
	}
	return t, nil
}

// ListEnrollTokens returns every enrollment token, oldest first.
func (s *Store) ListEnrollTokens(ctx context.Context) ([]store.EnrollToken, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+enrollTokenCols+" FROM enroll_tokens ORDER BY created, id")
	if err != nil {
		return nil, fmt.Errorf("cannot list enrollment tokens: %w", err)
	}
	defer rows.Close()
	var out []store.EnrollToken
	for rows.Next() {
		t, err := scanEnrollToken(rows)
		if err != nil {
			return nil, fmt.Errorf("cannot list enrollment tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list enrollment tokens: %w", err)
	}
	return out, nil
}

// DeleteEnrollToken removes an enrollment token by id; ENOTFOUND when
// none.
func (s *Store) DeleteEnrollToken(ctx context.Context, id string) error {
	res, err := s.pool.Exec(ctx, "DELETE FROM enroll_tokens WHERE id = $1", id)
	if err != nil {
		return fmt.Errorf("cannot delete enrollment token %q: %w", id, err)
	}
	if res.RowsAffected() == 0 {
		return vigil.Errorf(vigil.ENOTFOUND, "no enrollment token %q", id)
	}
	return nil
}

// Revoke records a revocation, keeping the later time of a key revoked
// again.
func (s *Store) Revoke(ctx context.Context, r store.Revocation) error {
	if err := store.CheckRevocation(r); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, "INSERT INTO revocations(kind, ref, at) VALUES ($1, $2, $3) ON CONFLICT(kind, ref) DO UPDATE SET at = GREATEST(revocations.at, excluded.at)",
		r.Kind, r.Key, store.Nanos(r.At)); err != nil {
		return fmt.Errorf("cannot revoke %s %q: %w", r.Kind, r.Key, err)
	}
	return nil
}

// Revoked returns the revocations of a device and of a serial.
func (s *Store) Revoked(ctx context.Context, deviceID, serial string) ([]store.Revocation, error) {
	return s.revocations(ctx, "SELECT kind, ref, at FROM revocations WHERE (kind = 'device' AND ref = $1) OR (kind = 'serial' AND ref = $2) ORDER BY kind, ref", deviceID, serial)
}

// ListRevocations returns every revocation, by kind then key.
func (s *Store) ListRevocations(ctx context.Context) ([]store.Revocation, error) {
	return s.revocations(ctx, "SELECT kind, ref, at FROM revocations ORDER BY kind, ref")
}

func (s *Store) revocations(ctx context.Context, q string, args ...any) ([]store.Revocation, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read revocations: %w", err)
	}
	defer rows.Close()
	var out []store.Revocation
	for rows.Next() {
		var (
			r  store.Revocation
			at int64
		)
		if err := rows.Scan(&r.Kind, &r.Key, &at); err != nil {
			return nil, fmt.Errorf("cannot read revocations: %w", err)
		}
		r.At = time.Unix(0, at).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read revocations: %w", err)
	}
	return out, nil
}
