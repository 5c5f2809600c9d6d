package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

var _ store.RetroJobs = (*Store)(nil)

// PutRetroJob creates or replaces a retro-hunt job.
func (s *Store) PutRetroJob(ctx context.Context, j vigil.RetroJob) error {
	if err := store.CheckRetroJob(j); err != nil {
		return err
	}
	body, err := store.RetroJobBody(j)
	if err != nil {
		return err
	}
	if _, err := s.w.ExecContext(ctx, `INSERT OR REPLACE INTO retro_jobs(id, started, body) VALUES (?, ?, ?)`,
		j.ID, store.Nanos(j.Started), body); err != nil {
		return fmt.Errorf("cannot store retro-hunt job %s: %w", j.ID, err)
	}
	return nil
}

// GetRetroJob returns one retro-hunt job; ENOTFOUND when there is none.
func (s *Store) GetRetroJob(ctx context.Context, id string) (vigil.RetroJob, error) {
	var body string
	err := s.r.QueryRowContext(ctx, "SELECT body FROM retro_jobs WHERE id = ?", id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return vigil.RetroJob{}, store.NotFound("retro-hunt", id)
	}
	if err != nil {
		return vigil.RetroJob{}, fmt.Errorf("cannot read retro-hunt job %s: %w", id, err)
	}
	return store.ParseRetroJobBody(body)
}

// ListRetroJobs returns the newest retro-hunt jobs first.
func (s *Store) ListRetroJobs(ctx context.Context, limit int) ([]vigil.RetroJob, error) {
	rows, err := s.r.QueryContext(ctx, "SELECT body FROM retro_jobs ORDER BY started DESC, id DESC LIMIT ?", store.RetroJobLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("cannot list retro-hunt jobs: %w", err)
	}
	defer rows.Close()
	var out []vigil.RetroJob
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("cannot read retro-hunt job: %w", err)
		}
		j, err := store.ParseRetroJobBody(body)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list retro-hunt jobs: %w", err)
	}
	return out, nil
}
