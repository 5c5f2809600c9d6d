package sqlite

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
	_, err = s.w.ExecContext(ctx, `INSERT OR REPLACE INTO exceptions(id, created, suppressed, last_suppressed, last_alert, body)
		VALUES (?, ?, ?, ?, ?, ?)`, e.ID, store.Nanos(e.Created), e.Suppressed, last, e.LastAlert, body)
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
		body    string
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
	e, err := scanException(s.r.QueryRowContext(ctx, "SELECT "+exceptionCols+" FROM exceptions WHERE id = ?", id))
	if isNoRows(err) {
		return e, store.NotFound("exception", id)
	} else if err != nil {
		return e, fmt.Errorf("cannot get exception %q: %w", id, err)
	}
	return e, nil
}

// ListExceptions returns every exception by Created then id.
func (s *Store) ListExceptions(ctx context.Context) ([]vigil.Exception, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT "+exceptionCols+" FROM exceptions ORDER BY created, id")
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
	res, err := s.w.ExecContext(ctx, "DELETE FROM exceptions WHERE id = ?", id)
	if err != nil {
		return fmt.Errorf("cannot delete exception %q: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("cannot delete exception %q: %w", id, err)
	} else if n == 0 {
		return store.NotFound("exception", id)
	}
	return nil
}

// RecordSuppressed counts n more alerts the exception kept from being
// raised, the latest at at.
func (s *Store) RecordSuppressed(ctx context.Context, id string, n int64, at time.Time, what string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE exceptions SET suppressed = suppressed + ?,
		last_alert = CASE WHEN ? >= last_suppressed THEN ? ELSE last_alert END,
		last_suppressed = MAX(last_suppressed, ?) WHERE id = ?`,
		n, store.Nanos(at), what, store.Nanos(at), id)
	if err != nil {
		return fmt.Errorf("cannot count what exception %q suppressed: %w", id, err)
	}
	if c, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("cannot count what exception %q suppressed: %w", id, err)
	} else if c == 0 {
		return store.NotFound("exception", id)
	}
	return nil
}
