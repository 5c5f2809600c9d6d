package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

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
	if _, err := s.w.ExecContext(ctx, `INSERT INTO update_plans(id, state, created, plan) VALUES (?, ?, ?, ?)
		ON CONFLICT(id) DO UPDATE SET state = excluded.state, plan = excluded.plan`, p.ID, p.State, store.Nanos(p.Created), string(b)); err != nil {
		return fmt.Errorf("cannot put update plan %s: %w", p.ID, err)
	}
	return nil
}

// GetUpdatePlan returns a plan.
func (s *Store) GetUpdatePlan(ctx context.Context, id string) (vigil.UpdatePlan, error) {
	var b string
	err := s.r.QueryRowContext(ctx, "SELECT plan FROM update_plans WHERE id = ?", id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return vigil.UpdatePlan{}, store.NotFound("update plan", id)
	} else if err != nil {
		return vigil.UpdatePlan{}, fmt.Errorf("cannot get update plan %s: %w", id, err)
	}
	var p vigil.UpdatePlan
	if err := json.Unmarshal([]byte(b), &p); err != nil {
		return vigil.UpdatePlan{}, fmt.Errorf("cannot decode update plan %s: %w", id, err)
	}
	return p, nil
}

// ListUpdatePlans returns the plans in the given states (none: all).
func (s *Store) ListUpdatePlans(ctx context.Context, states ...string) ([]vigil.UpdatePlan, error) {
	q, args := "SELECT plan FROM update_plans", []any{}
	if len(states) > 0 {
		q += " WHERE state IN (?" + strings.Repeat(", ?", len(states)-1) + ")"
		for _, st := range states {
			args = append(args, st)
		}
	}
	rows, err := s.r.QueryContext(ctx, q+" ORDER BY created, id", args...)
	if err != nil {
		return nil, fmt.Errorf("cannot list update plans: %w", err)
	}
	defer rows.Close()
	var out []vigil.UpdatePlan
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("cannot list update plans: %w", err)
		}
		var p vigil.UpdatePlan
		if err := json.Unmarshal([]byte(b), &p); err != nil {
			return nil, fmt.Errorf("cannot decode update plan: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list update plans: %w", err)
	}
	return out, nil
}
