package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil"
)

// RetroJobs keeps retro-hunt jobs (package hunt runs them): their spec,
// state, progress and counts, written by the node that runs a job as it
// progresses and read by any node.
type RetroJobs interface {
	// PutRetroJob creates or replaces the job of j.ID. EINVALID when
	// j fails CheckRetroJob.
	PutRetroJob(ctx context.Context, j vigil.RetroJob) error
	// GetRetroJob returns one job. ENOTFOUND when there is none.
	GetRetroJob(ctx context.Context, id string) (vigil.RetroJob, error)
	// ListRetroJobs returns up to limit jobs (limit <= 0: MaxRetroJobs),
	// newest first (by Started, then by ID descending).
	ListRetroJobs(ctx context.Context, limit int) ([]vigil.RetroJob, error)
}

// MaxRetroJobs is how many jobs ListRetroJobs returns at most.
const MaxRetroJobs = 1000

// CheckRetroJob says what is wrong with a job, EINVALID: it needs an id,
// a state and a start time.
func CheckRetroJob(j vigil.RetroJob) error {
	switch {
	case j.ID == "":
		return vigil.Errorf(vigil.EINVALID, "retro-hunt job without an id")
	case j.State == "":
		return vigil.Errorf(vigil.EINVALID, "retro-hunt job %s without a state", j.ID)
	case j.Started.IsZero():
		return vigil.Errorf(vigil.EINVALID, "retro-hunt job %s without a start time", j.ID)
	}
	return nil
}

// RetroJobLimit is the number of jobs ListRetroJobs returns for limit.
func RetroJobLimit(limit int) int {
	if limit <= 0 || limit > MaxRetroJobs {
		return MaxRetroJobs
	}
	return limit
}

// RetroJobBody encodes a job as the stores keep it (JSON).
func RetroJobBody(j vigil.RetroJob) (string, error) {
	b, err := json.Marshal(j)
	if err != nil {
		return "", fmt.Errorf("cannot encode retro-hunt job %s: %w", j.ID, err)
	}
	return string(b), nil
}

// ParseRetroJobBody decodes what RetroJobBody encoded, times in UTC.
func ParseRetroJobBody(body string) (vigil.RetroJob, error) {
	var j vigil.RetroJob
	if err := json.Unmarshal([]byte(body), &j); err != nil {
		return j, fmt.Errorf("cannot read retro-hunt job: %w", err)
	}
	for _, t := range []*time.Time{&j.Started, &j.Finished, &j.Updated, &j.Spec.Since, &j.Spec.Until} {
		if !t.IsZero() {
			*t = t.UTC()
		}
	}
	return j, nil
}
