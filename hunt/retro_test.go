package hunt

import (
	"bufio"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect/sigma"
	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/rules"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/sqlite"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

func builtinPack(t testing.TB) *sigma.RuleSet {
	t.Helper()
	pack, err := fs.Sub(rules.Sigma, "sigma")
	if err != nil {
		t.Fatal(err)
	}
	rs, errs := sigma.LoadSources([]sigma.Source{{Name: "builtin:sigma", FS: pack}}, nil)
	if len(errs) > 0 {
		t.Fatalf("built-in pack: %v", errs)
	}
	return rs
}

// packEvents reads the built-in pack's test events (positive and negative).
func packEvents(t testing.TB) []vigil.Event {
	t.Helper()
	files, _ := filepath.Glob("../rules/testdata/*/*.jsonl")
	if len(files) == 0 {
		t.Fatal("no rule test events under ../rules/testdata")
	}
	var out []vigil.Event
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e vigil.Event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.ID == "" || e.Time.IsZero() {
				continue
			}
			store.NormalizeFields(e.Fields)
			out = append(out, e)
		}
		fh.Close()
	}
	return out
}

type collector struct {
	mu     sync.Mutex
	alerts []vigil.Alert
}

func (c *collector) publish(_ context.Context, as []vigil.Alert) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.alerts = append(c.alerts, as...)
	return nil
}

func alertKeys(as []vigil.Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.RuleID+" "+a.DeviceID+" "+a.DedupKey)
	}
	slices.Sort(out)
	return out
}

// TestRetroHuntMatchesLiveDetection: a retro-hunt of the built-in pack
// over stored events raises the alerts live detection raises on the same
// events in the same order, each marked retro.
func TestRetroHuntMatchesLiveDetection(t *testing.T) { retroMatchesLive(t, openStore(t), 0) }

// TestRetroHuntMatchesLiveDetectionSealed: the same with most events
// sealed into segments (small ones here), read from their columns, the
// rest as rows.
func TestRetroHuntMatchesLiveDetectionSealed(t *testing.T) { retroMatchesLive(t, openStore(t), 37) }

// TestRetroHuntMatchesLiveDetectionPostgres: the same over PostgreSQL,
// whose stored JSON (jsonb as text) is spaced and ordered differently.
func TestRetroHuntMatchesLiveDetectionPostgres(t *testing.T) {
	retroMatchesLive(t, openPostgres(t), 0)
	retroMatchesLive(t, openPostgres(t), 37)
}

// retroMatchesLive runs the check, with the events sealed into segments
// of segRows first (0: not sealed).
func retroMatchesLive(t *testing.T, s eventStore, segRows int) {
	evs := packEvents(t)
	if err := s.PutEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	if segRows > 0 {
		// The pack's events are about half rows the columns do not
		// rebuild: read each from the row store rather than whole
		// segments, so that both ways are taken.
		maxInexact = 1
		t.Cleanup(func() { maxInexact = 8 })
		n, err := seal(t.Context(), s, int64(len(evs)), segRows)
		if err != nil || n < 3 {
			t.Fatalf("sealed %d segments: %v", n, err)
		}
	}
	stored, err := s.EventsAfter(t.Context(), 0, len(evs)+1)
	if err != nil {
		t.Fatal(err)
	}
	clock := fixedClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	rs := builtinPack(t)
	live := sigma.NewDetector(rs, sigma.DetectorOptions{Clock: clock})
	var want []vigil.Alert
	// Live detection partitions by device: so does the retro-hunt.
	const parts = 3
	for i := range stored {
		live.Detect(t.Context(), retroPartition(stored[i].Event.DeviceID, parts), &stored[i].Event, func(a vigil.Alert) {
			a.DedupKey = "retro|" + a.DedupKey
			want = append(want, a)
		})
	}
	live.Tick(t.Context(), time.Unix(0, 1<<62), func(a vigil.Alert) { a.DedupKey = "retro|" + a.DedupKey; want = append(want, a) })
	if len(want) < 20 {
		t.Fatalf("live detection raised %d alerts on the pack's test events; want many", len(want))
	}

	var got collector
	r := &Retro{Src: s, Store: s, Publish: got.publish, Clock: clock, Partitions: parts}
	id, err := r.Start(t.Context(), RetroSpec{Rules: builtinPack(t), RulesName: "builtin"})
	if err != nil {
		t.Fatal(err)
	}
	r.Wait()
	job, err := r.Job(t.Context(), id)
	if err != nil || job.State != "done" || job.Progress != 1 || job.Scanned != int64(len(evs)) || job.Alerts != len(got.alerts) {
		t.Fatalf("job = %+v, %v", job, err)
	}
	if g, w := alertKeys(got.alerts), alertKeys(want); !slices.Equal(g, w) {
		t.Errorf("retro alerts differ from live ones:\n got %d %v\nwant %d %v", len(g), g, len(w), w)
	}
	for _, a := range got.alerts {
		if !a.Retro {
			t.Fatalf("alert %s not marked retro", a.RuleID)
		}
	}
	if _, err := r.Job(t.Context(), "nope"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("Job(nope) = %v", err)
	}
}

func TestRetroHuntRangeAndIndicators(t *testing.T) {
	s := openStore(t)
	evs := genEvents(3000, 5)
	if err := s.PutEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	since, until := t0.Add(1000*time.Second), t0.Add(2000*time.Second)
	ip := ""
	for _, e := range evs[1200:] {
		if e.Network != nil {
			ip = e.Network.SrcIP.String()
			break
		}
	}
	want := map[string]bool{}
	for _, e := range evs {
		if e.Network != nil && e.Network.SrcIP.String() == ip && !e.Time.Before(since) && e.Time.Before(until) {
			want[e.ID] = true
		}
	}
	var got collector
	r := &Retro{Src: s, Store: s, Publish: got.publish}
	id, err := r.Start(t.Context(), RetroSpec{Indicators: []string{ip, " "}, IndicatorSource: "test-feed", Since: since, Until: until})
	if err != nil {
		t.Fatal(err)
	}
	r.Wait()
	job, _ := r.Job(t.Context(), id)
	if job.State != "done" || job.Matched != 1000 {
		t.Fatalf("job = %+v; want done with 1000 events in range", job)
	}
	if len(got.alerts) != len(want) || len(want) == 0 {
		t.Fatalf("%d alerts, want %d", len(got.alerts), len(want))
	}
	for _, a := range got.alerts {
		if !want[a.EventIDs[0]] || !a.Retro || a.Fields["indicator.source"] != "test-feed" || a.Fields["indicator.field"] != "source.ip" {
			t.Errorf("alert %+v", a)
		}
	}
	// Intel indicators match as the live IOC detector does.
	got = collector{}
	r = &Retro{Src: s, Store: s, Publish: got.publish}
	if _, err := r.Start(t.Context(), RetroSpec{Intel: []feeds.Indicator{{ID: "f:1", Feed: "f", Type: feeds.TypeIP, Value: ip, Confidence: 80}}, Since: since, Until: until}); err != nil {
		t.Fatal(err)
	}
	r.Wait()
	if len(got.alerts) != len(want) {
		t.Fatalf("intel: %d alerts, want %d", len(got.alerts), len(want))
	}
	for _, a := range got.alerts {
		if !want[a.EventIDs[0]] || !a.Retro || a.Detector != "intel" {
			t.Errorf("intel alert %+v", a)
		}
	}
	if _, err := r.Start(t.Context(), RetroSpec{}); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("empty spec: %v", err)
	}
	if _, err := r.Start(t.Context(), RetroSpec{Indicators: []string{"x"}, Since: until, Until: since}); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("reversed range: %v", err)
	}
}

// TestRetroJobsInTheStore: a job is kept in the store, so a Retro over
// the same store after a restart (a new process: the file reopened)
// shows it with its counts; a running job that stopped writing its
// progress (its node went away) shows as interrupted.
func TestRetroJobsInTheStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	s, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	evs := genEvents(500, 5)
	if err := s.PutEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var got collector
	r := &Retro{Src: s, Store: s, Publish: got.publish, Clock: fixedClock(now)}
	id, err := r.Start(t.Context(), RetroSpec{Indicators: []string{evs[10].DeviceID}, IndicatorSource: "list"})
	if err != nil {
		t.Fatal(err)
	}
	r.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r = &Retro{Src: s, Store: s, Clock: fixedClock(now.Add(time.Hour))}
	job, err := r.Job(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if job.State != vigil.RetroDone || job.Scanned != 500 || job.Alerts != len(got.alerts) || job.Alerts == 0 ||
		job.Spec.IndicatorSource != "list" || len(job.Spec.Indicators) != 1 || !job.Started.Equal(now) {
		t.Fatalf("job after reopening = %+v (alerts published %d)", job, len(got.alerts))
	}
	// A job another node was running, silent for longer than RetroStale.
	lost := vigil.RetroJob{ID: "lost", State: vigil.RetroRunning, Started: now, Updated: now.Add(time.Hour - RetroStale - time.Second), Total: 9}
	if err := s.PutRetroJob(t.Context(), lost); err != nil {
		t.Fatal(err)
	}
	fresh := vigil.RetroJob{ID: "fresh", State: vigil.RetroRunning, Started: now, Updated: now.Add(time.Hour - time.Second), Total: 9}
	if err := s.PutRetroJob(t.Context(), fresh); err != nil {
		t.Fatal(err)
	}
	jobs, err := r.Jobs(t.Context())
	if err != nil || len(jobs) != 3 {
		t.Fatalf("Jobs = %v, %v; want 3", jobs, err)
	}
	states := map[string]string{}
	for _, j := range jobs {
		states[j.ID] = j.State
	}
	if states["lost"] != vigil.RetroInterrupted || states["fresh"] != vigil.RetroRunning || states[id] != vigil.RetroDone {
		t.Errorf("states = %v", states)
	}
}
