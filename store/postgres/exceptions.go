package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// PutException creates or replaces an exception.
func (s *Store) PutException(ctx context.Context, e vigil.Exception) error {
	if err := e.Check(); err != nil {
		return err
	}
	body, err := encode("exception", e.ID, e)
	if err != nil {
		return err
	}
	last := int64(0)
	if !e.LastSuppressed.IsZero() {
		last = store.Nanos(e.LastSuppressed)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO exceptions(id, created, suppressed, last_suppressed, last_alert, body)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (id) DO UPDATE SET created = excluded.created, suppressed = excluded.suppressed,
			last_suppressed = excluded.last_suppressed, last_alert = excluded.last_alert, body = excluded.body`,
		noNUL(e.ID), store.Nanos(e.Created), e.Suppressed, last, noNUL(e.LastAlert), body)
	if err != nil {
		return fmt.Errorf("cannot put exception %q: %w", e.ID, err)
	}
	return nil
}

const exceptionCols = "suppressed, last_suppressed, last_alert, body"

func scanException(sc interface{ Scan(...any) error }) (vigil.Exception, error) {
	var (
		n, last int64
		what    string
		body    []byte
	)
	if err := sc.Scan(&n, &last, &what, &body); err != nil {
		return vigil.Exception{}, err
	}
	e, err := decode[vigil.Exception]("exception", body)
	if err != nil {
		return e, err
	}
	e.Created, e.Expires = e.Created.UTC(), e.Expires.UTC()
	e.Suppressed, e.LastAlert, e.LastSuppressed = n, what, time.Time{}
	if last != 0 {
		e.LastSuppressed = time.Unix(0, last).UTC()
	}
	return e, nil
}

// GetException returns one exception; ENOTFOUND when it does not exist.
func (s *Store) GetException(ctx context.Context, id string) (vigil.Exception, error) {
	e, err := scanException(s.pool.QueryRow(ctx, "SELECT "+exceptionCols+" FROM exceptions WHERE id = $1", noNUL(id)))
	if isNoRows(err) {
		return e, store.NotFound("exception", id)
	} else if err != nil {
		return e, fmt.Errorf("cannot get exception %q: %w", id, err)
	}
	return e, nil
}

// ListExceptions returns every exception by Created then id.
func (s *Store) ListExceptions(ctx context.Context) ([]vigil.Exception, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+exceptionCols+" FROM exceptions ORDER BY created, id")
	if err != nil {
		return nil, fmt.Errorf("cannot list exceptions: %w", err)
	}
	defer rows.Close()
	var out []vigil.Exception
	for rows.Next() {
		e, err := scanException(rows)
		if err != nil {
			return nil, fmt.Errorf("cannot read exception: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list exceptions: %w", err)
	}
	return out, nil
}

// DeleteException removes an exception; ENOTFOUND when it does not exist.
func (s *Store) DeleteException(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, "DELETE FROM exceptions WHERE id = $1", noNUL(id))
	if err != nil {
		return fmt.Errorf("cannot delete exception %q: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return store.NotFound("exception", id)
	}
	return nil
}

// RecordSuppressed counts n more alerts the exception kept from being
// raised, the latest at at.
func (s *Store) RecordSuppressed(ctx context.Context, id string, n int64, at time.Time, what string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE exceptions SET suppressed = suppressed + $1,
		last_alert = CASE WHEN $2 >= last_suppressed THEN $3 ELSE last_alert END,
		last_suppressed = GREATEST(last_suppressed, $2) WHERE id = $4`,
		n, store.Nanos(at), noNUL(what), noNUL(id))
	if err != nil {
		return fmt.Errorf("cannot count what exception %q suppressed: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return store.NotFound("exception", id)
	}
	return nil
}
