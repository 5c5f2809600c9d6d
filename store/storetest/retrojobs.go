package storetest

import (
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// testRetroJobs checks retro-hunt jobs: round trip of every member with
// full time precision (times read back in UTC), replace by id (progress
// writes), newest first with the limit, ENOTFOUND, EINVALID.
func testRetroJobs(t *testing.T, s store.Store) {
	if got, err := s.ListRetroJobs(ctx(t), 0); err != nil || len(got) != 0 {
		t.Fatalf("ListRetroJobs on an empty store: %v, %v", got, err)
	}
	if _, err := s.GetRetroJob(ctx(t), "nope"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("GetRetroJob of a missing one: %v, want ENOTFOUND", err)
	}
	a := vigil.RetroJob{ID: "job-a", State: vigil.RetroRunning, Started: base.In(elsewhere), Updated: base.Add(time.Second),
		Spec: vigil.RetroJobSpec{RulesName: "builtin", Since: base.Add(-7 * 24 * time.Hour), Until: base.In(elsewhere)}, Total: 10_000_000}
	b := vigil.RetroJob{ID: "job-b", State: vigil.RetroDone, Started: base.Add(time.Nanosecond), Finished: base.Add(time.Minute), Updated: base.Add(time.Minute),
		Spec:  vigil.RetroJobSpec{Indicators: []string{"203.0.113.7", "évil.example"}, IndicatorSource: "feed \x00 x", IntelCount: 3},
		Total: 42, Scanned: 42, Matched: 40, Alerts: 2, Progress: 1}
	c := vigil.RetroJob{ID: "job-c", State: vigil.RetroFailed, Started: base, Error: "cannot read: disk"}
	for _, j := range []vigil.RetroJob{a, b, c} {
		must(t, s.PutRetroJob(ctx(t), j), "PutRetroJob "+j.ID)
	}
	utc := func(j vigil.RetroJob) vigil.RetroJob {
		for _, t := range []*time.Time{&j.Started, &j.Finished, &j.Updated, &j.Spec.Since, &j.Spec.Until} {
			if !t.IsZero() {
				*t = t.UTC()
			}
		}
		return j
	}
	got, err := s.GetRetroJob(ctx(t), b.ID)
	must(t, err, "GetRetroJob")
	deepEqual(t, "job b", got, utc(b))
	list, err := s.ListRetroJobs(ctx(t), 0)
	must(t, err, "ListRetroJobs")
	// Newest first; a and c started at the same time: by id, descending.
	deepEqual(t, "jobs", list, []vigil.RetroJob{utc(b), utc(c), utc(a)})
	list, err = s.ListRetroJobs(ctx(t), 2)
	must(t, err, "ListRetroJobs limit 2")
	deepEqual(t, "jobs limit 2", list, []vigil.RetroJob{utc(b), utc(c)})

	// Progress replaces the job.
	a.Scanned, a.Matched, a.Progress, a.Updated = 5_000_000, 4_000_000, 0.5, base.Add(time.Hour)
	must(t, s.PutRetroJob(ctx(t), a), "PutRetroJob progress")
	got, err = s.GetRetroJob(ctx(t), a.ID)
	must(t, err, "GetRetroJob after progress")
	deepEqual(t, "job a after progress", got, utc(a))
	if list, _ := s.ListRetroJobs(ctx(t), 0); len(list) != 3 {
		t.Errorf("%d jobs after a progress write, want 3", len(list))
	}

	for name, j := range map[string]vigil.RetroJob{
		"no id":    {State: vigil.RetroDone, Started: base},
		"no state": {ID: "x", Started: base},
		"no start": {ID: "x", State: vigil.RetroDone},
	} {
		if err := s.PutRetroJob(ctx(t), j); vigil.ErrorCode(err) != vigil.EINVALID {
			t.Errorf("PutRetroJob with %s: %v, want EINVALID", name, err)
		}
	}
}
