package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// The batch is written with unnest: one statement per table whatever its
// size. MergeGraph made its keys unique and sorted, so that no statement
// touches a row twice and concurrent writers lock rows in one order.
const (
	upsertEntities = `INSERT INTO graph_entities(key, value, first_seen, last_seen, n)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])
ON CONFLICT (key) DO UPDATE SET
	first_seen = LEAST(graph_entities.first_seen, excluded.first_seen),
	last_seen = GREATEST(graph_entities.last_seen, excluded.last_seen),
	n = graph_entities.n + excluded.n`
	upsertRelations = `INSERT INTO graph_relations(src, rel, dst, first_seen, last_seen, n, first_event, last_event)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[], $8::text[])
ON CONFLICT (src, rel, dst) DO UPDATE SET
	first_event = CASE WHEN excluded.first_seen < graph_relations.first_seen THEN excluded.first_event ELSE graph_relations.first_event END,
	first_seen = LEAST(graph_relations.first_seen, excluded.first_seen),
	last_event = CASE WHEN excluded.last_seen >= graph_relations.last_seen THEN excluded.last_event ELSE graph_relations.last_event END,
	last_seen = GREATEST(graph_relations.last_seen, excluded.last_seen),
	n = graph_relations.n + excluded.n`
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
	n := len(b.Entities)
	keys, values := make([]string, n), make([]string, n)
	efirst, elast, ecount := make([]int64, n), make([]int64, n), make([]int64, n)
	for i, e := range b.Entities {
		_, v, _ := store.SplitEntityKey(e.Key)
		keys[i], values[i] = noNUL(e.Key), noNUL(v)
		efirst[i], elast[i], ecount[i] = e.FirstSeen.UnixNano(), e.LastSeen.UnixNano(), e.Count
	}
	n = len(b.Relations)
	src, rel, dst, fev, lev := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	rfirst, rlast, rcount := make([]int64, n), make([]int64, n), make([]int64, n)
	for i, r := range b.Relations {
		src[i], rel[i], dst[i], fev[i], lev[i] = noNUL(r.From), noNUL(r.Rel), noNUL(r.To), noNUL(r.FirstEvent), noNUL(r.LastEvent)
		rfirst[i], rlast[i], rcount[i] = r.FirstSeen.UnixNano(), r.LastSeen.UnixNano(), r.Count
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if len(keys) > 0 {
			if _, err := tx.Exec(ctx, upsertEntities, keys, values, efirst, elast, ecount); err != nil {
				return fmt.Errorf("entities: %w", err)
			}
		}
		if len(src) > 0 {
			if _, err := tx.Exec(ctx, upsertRelations, src, rel, dst, rfirst, rlast, rcount, fev, lev); err != nil {
				return fmt.Errorf("relations: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot put graph: %w", err)
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
	var q query
	keys := q.arg(f.Keys)
	q.and("(src = ANY(" + keys + ") OR dst = ANY(" + keys + "))")
	if !f.Since.IsZero() {
		q.and("last_seen >= " + q.arg(f.Since.UnixNano()))
	}
	if len(f.Rels) > 0 {
		q.and("rel = ANY(" + q.arg(f.Rels) + ")")
	}
	rows, err := s.pool.Query(ctx, `SELECT src, rel, dst, first_seen, last_seen, n, first_event, last_event FROM graph_relations`+
		q.whereClause()+` ORDER BY last_seen DESC, src COLLATE "C", rel COLLATE "C", dst COLLATE "C" LIMIT `+q.arg(limit), q.args...)
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
	rows, err := s.pool.Query(ctx, "SELECT key, first_seen, last_seen, n FROM graph_entities WHERE key = ANY($1) ORDER BY key COLLATE \"C\"", keys)
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
	rows, err := s.pool.Query(ctx, "SELECT key, first_seen, last_seen, n FROM graph_entities WHERE value = $1 ORDER BY key COLLATE \"C\" LIMIT $2", noNUL(value), limit)
	if err != nil {
		return nil, fmt.Errorf("cannot find graph entities: %w", err)
	}
	return scanEntities(rows)
}

func scanEntities(rows pgx.Rows) ([]store.Entity, error) {
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

// DeleteGraphBefore removes the relations and entities last seen before t.
func (s *Store) DeleteGraphBefore(ctx context.Context, t time.Time) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM graph_relations WHERE last_seen < $1", t.UnixNano())
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		_, err = tx.Exec(ctx, "DELETE FROM graph_entities WHERE last_seen < $1", t.UnixNano())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("cannot apply graph retention: %w", err)
	}
	return n, nil
}
