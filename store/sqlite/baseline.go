package sqlite

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/vigil-iot/vigil/store"
)

// PutBaseline stores the learned baseline's state of a partition,
// replacing the one stored.
func (s *Store) PutBaseline(ctx context.Context, b store.Baseline) error {
	if err := store.CheckBaseline(b); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, "INSERT OR REPLACE INTO baselines(part, updated, state) VALUES (?, ?, ?)",
		b.Partition, b.Saved.UnixNano(), b.State)
	if err != nil {
		return fmt.Errorf("cannot put baseline of partition %d: %w", b.Partition, err)
	}
	return nil
}

// GetBaseline returns the state of a partition; ENOTFOUND when none is
// stored.
func (s *Store) GetBaseline(ctx context.Context, partition int) (store.Baseline, error) {
	b := store.Baseline{Partition: partition}
	var saved int64
	err := s.r.QueryRowContext(ctx, "SELECT state, updated FROM baselines WHERE part = ?", partition).Scan(&b.State, &saved)
	if isNoRows(err) {
		return store.Baseline{}, store.NotFound("baseline of partition", strconv.Itoa(partition))
	} else if err != nil {
		return store.Baseline{}, fmt.Errorf("cannot get baseline of partition %d: %w", partition, err)
	}
	b.Saved = time.Unix(0, saved).UTC()
	return b, nil
}
