package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil/store"
)

// PutSavedQuery creates or replaces a saved hunt query.
func (s *Store) PutSavedQuery(ctx context.Context, q store.SavedQuery) error {
	if err := store.CheckSavedQuery(q); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, `INSERT OR REPLACE INTO saved_queries(author, name, query, shared, created) VALUES (?, ?, ?, ?, ?)`,
		q.Author, q.Name, q.Query, q.Shared, store.Nanos(q.Created))
	if err != nil {
		return fmt.Errorf("cannot save query %q: %w", q.Name, err)
	}
	return nil
}

// ListSavedQueries returns every saved query by name.
func (s *Store) ListSavedQueries(ctx context.Context) ([]store.SavedQuery, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT name, query, author, shared, created FROM saved_queries ORDER BY name, author")
	if err != nil {
		return nil, fmt.Errorf("cannot list saved queries: %w", err)
	}
	defer rows.Close()
	var out []store.SavedQuery
	for rows.Next() {
		var q store.SavedQuery
		var created int64
		if err := rows.Scan(&q.Name, &q.Query, &q.Author, &q.Shared, &created); err != nil {
			return nil, fmt.Errorf("cannot read saved query: %w", err)
		}
		q.Created = time.Unix(0, created).UTC()
		out = append(out, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list saved queries: %w", err)
	}
	return out, nil
}

// DeleteSavedQuery removes the saved query of an author; ENOTFOUND when
// there is none.
func (s *Store) DeleteSavedQuery(ctx context.Context, author, name string) error {
	res, err := s.w.ExecContext(ctx, "DELETE FROM saved_queries WHERE author = ? AND name = ?", author, name)
	if err != nil {
		return fmt.Errorf("cannot delete saved query %q: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("cannot delete saved query %q: %w", name, err)
	} else if n == 0 {
		return store.NotFound("saved query", name)
	}
	return nil
}
