package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

const (
	upsertEntity = `INSERT INTO graph_entities(key, value, first_seen, last_seen, n) VALUES (?, ?, ?, ?, ?)
ON CONFLICT(key) DO UPDATE SET
	first_seen = min(first_seen, excluded.first_seen),
	last_seen = max(last_seen, excluded.last_seen),
	n = n + excluded.n`
	upsertRelation = `INSERT INTO graph_relations(src, rel, dst, first_seen, last_seen, n, first_event, last_event) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(src, rel, dst) DO UPDATE SET
	first_event = CASE WHEN excluded.first_seen < first_seen THEN excluded.first_event ELSE first_event END,
	first_seen = min(first_seen, excluded.first_seen),
	last_event = CASE WHEN excluded.last_seen >= last_seen THEN excluded.last_event ELSE last_event END,
	last_seen = max(last_seen, excluded.last_seen),
	n = n + excluded.n`
)

// PutGraph merges a batch into the entity graph in one transaction.
func (s *Store) PutGraph(ctx context.Context, b store.GraphBatch) error {
	if err := store.CheckGraphBatch(b); err != nil {
		return err
	}
	b = store.MergeGraph(b)
	if len(b.Entities) == 0 && len(b.Relations) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cannot put graph: %w", err)
	}
	defer tx.Rollback()
	if len(b.Entities) > 0 {
		st, err := tx.PrepareContext(ctx, upsertEntity)
		if err != nil {
			return fmt.Errorf("cannot put graph entities: %w", err)
		}
		defer st.Close()
		for _, e := range b.Entities {
			_, v, _ := store.SplitEntityKey(e.Key)
			if _, err := st.ExecContext(ctx, e.Key, v, e.FirstSeen.UnixNano(), e.LastSeen.UnixNano(), e.Count); err != nil {
				return fmt.Errorf("cannot put graph entity %s: %w", e.Key, err)
			}
		}
	}
	if len(b.Relations) > 0 {
		st, err := tx.PrepareContext(ctx, upsertRelation)
		if err != nil {
			return fmt.Errorf("cannot put graph relations: %w", err)
		}
		defer st.Close()
		for _, r := range b.Relations {
			if _, err := st.ExecContext(ctx, r.From, r.Rel, r.To, r.FirstSeen.UnixNano(), r.LastSeen.UnixNano(), r.Count, r.FirstEvent, r.LastEvent); err != nil {
				return fmt.Errorf("cannot put graph relation %s %s %s: %w", r.From, r.Rel, r.To, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot commit graph: %w", err)
	}
	return nil
}

// GraphRelations returns the relations from or to any of f.Keys, most
// recently seen first.
func (s *Store) GraphRelations(ctx context.Context, f store.GraphFilter) ([]store.Relation, error) {
	limit, err := store.CheckGraphFilter(f)
	if err != nil {
		return nil, err
	}
	in := placeholders(len(f.Keys))
	args := make([]any, 0, 2*len(f.Keys)+len(f.Rels)+2)
	for range 2 {
		for _, k := range f.Keys {
			args = append(args, k)
		}
	}
	cond := []string{"(src IN (" + in + ") OR dst IN (" + in + "))"}
	if !f.Since.IsZero() {
		cond = append(cond, "last_seen >= ?")
		args = append(args, f.Since.UnixNano())
	}
	if len(f.Rels) > 0 {
		cond = append(cond, "rel IN ("+placeholders(len(f.Rels))+")")
		for _, r := range f.Rels {
			args = append(args, r)
		}
	}
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, `SELECT src, rel, dst, first_seen, last_seen, n, first_event, last_event FROM graph_relations
		WHERE `+strings.Join(cond, " AND ")+` ORDER BY last_seen DESC, src, rel, dst LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot query graph: %w", err)
	}
	defer rows.Close()
	var out []store.Relation
	for rows.Next() {
		var r store.Relation
		var first, last int64
		if err := rows.Scan(&r.From, &r.Rel, &r.To, &first, &last, &r.Count, &r.FirstEvent, &r.LastEvent); err != nil {
			return nil, fmt.Errorf("cannot read graph relation: %w", err)
		}
		r.FirstSeen, r.LastSeen = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot query graph: %w", err)
	}
	return out, nil
}

// GetEntities returns the stored entities among keys, in key order.
func (s *Store) GetEntities(ctx context.Context, keys []string) ([]store.Entity, error) {
	if len(keys) > store.MaxGraphKeys {
		return nil, vigil.Errorf(vigil.EINVALID, "%d entity keys, at most %d", len(keys), store.MaxGraphKeys)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	rows, err := s.r.QueryContext(ctx, "SELECT key, first_seen, last_seen, n FROM graph_entities WHERE key IN ("+placeholders(len(keys))+") ORDER BY key", args...)
	if err != nil {
		return nil, fmt.Errorf("cannot get graph entities: %w", err)
	}
	return scanEntities(rows)
}

// FindEntities returns entities whose value is value, whatever their type.
func (s *Store) FindEntities(ctx context.Context, value string, limit int) ([]store.Entity, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, store.MaxGraphKeys)
	rows, err := s.r.QueryContext(ctx, "SELECT key, first_seen, last_seen, n FROM graph_entities WHERE value = ? ORDER BY key LIMIT ?", value, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot find graph entities: %w", err)
	}
	return scanEntities(rows)
}

func scanEntities(rows *sql.Rows) ([]store.Entity, error) {
	defer rows.Close()
	var out []store.Entity
	for rows.Next() {
		var e store.Entity
		var first, last int64
		if err := rows.Scan(&e.Key, &first, &last, &e.Count); err != nil {
			return nil, fmt.Errorf("cannot read graph entity: %w", err)
		}
		e.FirstSeen, e.LastSeen = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read graph entities: %w", err)
	}
	return out, nil
}

// placeholders returns n comma-separated question marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// DeleteGraphBefore removes the relations and entities last seen before t.
func (s *Store) DeleteGraphBefore(ctx context.Context, t time.Time) (int64, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("cannot apply graph retention: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, "DELETE FROM graph_relations WHERE last_seen < ?", t.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("cannot apply graph retention: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, "DELETE FROM graph_entities WHERE last_seen < ?", t.UnixNano()); err != nil {
		return 0, fmt.Errorf("cannot apply graph retention: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("cannot apply graph retention: %w", err)
	}
	return n, nil
}
