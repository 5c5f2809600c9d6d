package postgres

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
	_, err := s.pool.Exec(ctx, `INSERT INTO saved_queries(author, name, query, shared, created) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (author, name) DO UPDATE SET query = excluded.query, shared = excluded.shared, created = excluded.created`,
		noNUL(q.Author), noNUL(q.Name), noNUL(q.Query), q.Shared, store.Nanos(q.Created))
	if err != nil {
		return fmt.Errorf("cannot save query %q: %w", q.Name, err)
	}
	return nil
}

// ListSavedQueries returns every saved query by name.
func (s *Store) ListSavedQueries(ctx context.Context) ([]store.SavedQuery, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, query, author, shared, created FROM saved_queries ORDER BY name COLLATE "C", author COLLATE "C"`)
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
	tag, err := s.pool.Exec(ctx, "DELETE FROM saved_queries WHERE author = $1 AND name = $2", noNUL(author), noNUL(name))
	if err != nil {
		return fmt.Errorf("cannot delete saved query %q: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return store.NotFound("saved query", name)
	}
	return nil
}
