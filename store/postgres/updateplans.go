package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// PutUpdatePlan creates or replaces a plan.
func (s *Store) PutUpdatePlan(ctx context.Context, p vigil.UpdatePlan) error {
	if err := store.CheckUpdatePlan(p); err != nil {
		return err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("cannot put update plan %s: %w", p.ID, err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO update_plans(id, state, created, plan) VALUES ($1, $2, $3, $4)
		ON CONFLICT(id) DO UPDATE SET state = excluded.state, plan = excluded.plan`, noNUL(p.ID), p.State, store.Nanos(p.Created), b); err != nil {
		return fmt.Errorf("cannot put update plan %s: %w", p.ID, err)
	}
	return nil
}

// GetUpdatePlan returns a plan.
func (s *Store) GetUpdatePlan(ctx context.Context, id string) (vigil.UpdatePlan, error) {
	var b []byte
	err := s.pool.QueryRow(ctx, "SELECT plan FROM update_plans WHERE id = $1", noNUL(id)).Scan(&b)
	if isNoRows(err) {
		return vigil.UpdatePlan{}, store.NotFound("update plan", id)
	} else if err != nil {
		return vigil.UpdatePlan{}, fmt.Errorf("cannot get update plan %s: %w", id, err)
	}
	var p vigil.UpdatePlan
	if err := json.Unmarshal(b, &p); err != nil {
		return vigil.UpdatePlan{}, fmt.Errorf("cannot decode update plan %s: %w", id, err)
	}
	return p, nil
}

// ListUpdatePlans returns the plans in the given states (none: all).
func (s *Store) ListUpdatePlans(ctx context.Context, states ...string) ([]vigil.UpdatePlan, error) {
	q, args := "SELECT plan FROM update_plans", []any{}
	if len(states) > 0 {
		q += " WHERE state = ANY($1)"
		args = append(args, states)
	}
	rows, err := s.pool.Query(ctx, q+" ORDER BY created, id", args...)
	if err != nil {
		return nil, fmt.Errorf("cannot list update plans: %w", err)
	}
	defer rows.Close()
	var out []vigil.UpdatePlan
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("cannot list update plans: %w", err)
		}
		var p vigil.UpdatePlan
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("cannot decode update plan: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list update plans: %w", err)
	}
	return out, nil
}
