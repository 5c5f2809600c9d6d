package alert

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// DefaultDedupWindow is the dedup window when DedupOptions.Window is zero.
const DefaultDedupWindow = 10 * time.Minute

// MaxEventIDs bounds Alert.EventIDs: a merged alert keeps its first
// MaxEventIDs evidence events; Count still counts every merge.
const MaxEventIDs = 100

// defaultCacheSize is how many dedup keys the Deduper remembers by default.
const defaultCacheSize = 10000

// recentIDs is how many merged incoming alert ids are remembered per dedup
// key to recognize a redelivered alert.
const recentIDs = 32

// Outcome says what Merge made of an incoming alert.
type Outcome int

// Outcomes of Merge.
const (
	// Created: no alert with the key in the window; the incoming one is new.
	Created Outcome = iota + 1
	// Merged: the incoming alert was merged into an earlier one.
	Merged
	// Redelivered: the very same alert (same id) was already stored or
	// merged; storing it again would count it twice, so nothing changes.
	Redelivered
)

// String names the outcome.
func (o Outcome) String() string {
	switch o {
	case Created:
		return "created"
	case Merged:
		return "merged"
	case Redelivered:
		return "redelivered"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// DedupOptions configure a Deduper. Zero values take the defaults.
type DedupOptions struct {
	// Window: an alert merges into one with the same DedupKey created at
	// most this long before it (DefaultDedupWindow when zero). The window
	// runs from the first alert's Created, so a long attack yields one
	// alert per window, not one alert forever.
	Window time.Duration
	// CacheSize is how many dedup keys are kept in memory (default 10000).
	CacheSize int
	// Incidents, when set, is read to tell whether an earlier alert was
	// cleared: an alert whose incident is resolved or a false positive
	// takes no more repeats, which start a new alert. It is also what
	// ends an UntilCleared alert; without it such alerts merge within
	// the window like the others.
	Incidents IncidentReader
}

// IncidentReader reads incidents; store.Incidents is one.
type IncidentReader interface {
	// GetIncident returns one incident; ENOTFOUND when it does not exist.
	GetIncident(ctx context.Context, id string) (vigil.Incident, error)
}

// Deduper merges repeated alerts. It reads store.Alerts on a cache miss and
// writes through Save; it assumes it is the only writer of alerts (one alert
// stage, as the bus gives alerts a single partition). Safe for concurrent use.
type Deduper struct {
	st        store.Alerts
	window    time.Duration
	cacheSize int
	incidents IncidentReader

	mu     sync.Mutex
	cache  map[string]*cached // by dedup key: the newest alert stored with it
	latest time.Time          // newest Created seen, for eviction
}

type cached struct {
	a   vigil.Alert
	ids []string // ids of incoming alerts already merged into a
}

// Result is an incoming alert after Merge: the alert to store and what
// happened to it.
type Result struct {
	// Alert is the alert to assign and store: the incoming alert, or the
	// earlier one it was merged into.
	Alert   vigil.Alert
	Outcome Outcome
	// incoming is the id of the alert that arrived.
	incoming string
}

// NewDeduper returns a Deduper over st.
func NewDeduper(st store.Alerts, opts DedupOptions) *Deduper {
	d := &Deduper{st: st, window: opts.Window, cacheSize: opts.CacheSize, incidents: opts.Incidents, cache: map[string]*cached{}}
	if d.window <= 0 {
		d.window = DefaultDedupWindow
	}
	if d.cacheSize <= 0 {
		d.cacheSize = defaultCacheSize
	}
	return d
}

// Window returns the dedup window in use.
func (d *Deduper) Window() time.Duration { return d.window }

// Merge decides what to store for a: when an alert with a.DedupKey was
// created within the window before a.Created (at any time before, for an
// UntilCleared alert) and was not cleared since (its incident resolved or
// a false positive), a copy of it with a merged in (Count grows, EventIDs
// appended up to MaxEventIDs, LastEventTime extended, the earliest
// FirstEventTime kept, Severity raised to the higher, tags, techniques,
// entities and fields united, the first explanation kept with the
// evidence excerpts of both up to vigil.MaxEvidenceExcerpts); else a itself. Merge stores nothing: call
// Save with the result. a must be normalized (see Normalize).
func (d *Deduper) Merge(ctx context.Context, a vigil.Alert) (Result, error) {
	d.mu.Lock()
	c, ok := d.cache[a.DedupKey]
	d.mu.Unlock()
	since := a.Created.Add(-d.window)
	if a.UntilCleared && d.incidents != nil {
		since = time.Time{}
	}
	if !ok {
		got, err := d.st.FindAlertByDedupKey(ctx, a.DedupKey, since)
		switch {
		case vigil.ErrorCode(err) == vigil.ENOTFOUND:
		case err != nil:
			return Result{}, fmt.Errorf("cannot look up alerts with dedup key %q: %w", a.DedupKey, err)
		default:
			c = &cached{a: got, ids: []string{got.ID}}
			d.mu.Lock()
			if cur, ok := d.cache[a.DedupKey]; !ok || cur.a.Created.Before(got.Created) {
				d.cache[a.DedupKey] = c
			}
			d.mu.Unlock()
		}
	}
	if c != nil && (slices.Contains(c.ids, a.ID) || sameEvidence(c.a, a)) {
		return Result{Alert: c.a, Outcome: Redelivered, incoming: a.ID}, nil
	}
	if c == nil || c.a.Created.Before(since) {
		return Result{Alert: a, Outcome: Created, incoming: a.ID}, nil
	}
	cleared, err := d.cleared(ctx, &c.a)
	if err != nil {
		return Result{}, err
	}
	if cleared {
		return Result{Alert: a, Outcome: Created, incoming: a.ID}, nil
	}
	return Result{Alert: mergeInto(c.a, a), Outcome: Merged, incoming: a.ID}, nil
}

// sameEvidence reports whether every evidence event of a is already
// among old's: a is then the same detection made again (its events
// evaluated again by another node after a failover), not a repeat to
// count. An alert without event ids is never the same.
func sameEvidence(old, a vigil.Alert) bool {
	if len(a.EventIDs) == 0 || old.RuleID != a.RuleID {
		return false
	}
	for _, id := range a.EventIDs {
		if !slices.Contains(old.EventIDs, id) {
			return false
		}
	}
	return true
}

// cleared reports whether alert a was cleared: its incident is resolved
// or a false positive. An incident no longer stored clears it too.
func (d *Deduper) cleared(ctx context.Context, a *vigil.Alert) (bool, error) {
	if d.incidents == nil || a.IncidentID == "" {
		return false, nil
	}
	inc, err := d.incidents.GetIncident(ctx, a.IncidentID)
	switch {
	case vigil.ErrorCode(err) == vigil.ENOTFOUND:
		return true, nil
	case err != nil:
		return false, fmt.Errorf("cannot read incident %s of alert %s: %w", a.IncidentID, a.ID, err)
	}
	return inc.Status == vigil.IncidentResolved || inc.Status == vigil.IncidentFalsePositive, nil
}

// Save stores r.Alert and remembers it as the newest alert of its dedup
// key. Saving a Redelivered result stores nothing.
func (d *Deduper) Save(ctx context.Context, r Result) error {
	if r.Outcome == Redelivered {
		return nil
	}
	if err := d.st.PutAlert(ctx, r.Alert); err != nil {
		return fmt.Errorf("cannot store alert %s: %w", r.Alert.ID, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.cache[r.Alert.DedupKey]
	if c == nil || c.a.ID != r.Alert.ID {
		if c != nil && r.Alert.Created.Before(c.a.Created) {
			return nil // an older alert of the key: the cache keeps the newest
		}
		c = &cached{}
		d.cache[r.Alert.DedupKey] = c
	}
	c.a = r.Alert
	if !slices.Contains(c.ids, r.Alert.ID) {
		c.ids = append(c.ids, r.Alert.ID)
	}
	if r.incoming != "" && !slices.Contains(c.ids, r.incoming) {
		c.ids = append(c.ids, r.incoming)
	}
	if len(c.ids) > recentIDs {
		// Keep the stored alert's own id first, then the newest merged ids.
		c.ids = append(c.ids[:1], c.ids[len(c.ids)-recentIDs+1:]...)
	}
	if r.Alert.Created.After(d.latest) {
		d.latest = r.Alert.Created
	}
	if len(d.cache) > d.cacheSize {
		d.evict()
	}
	return nil
}

// Process merges and saves a in one step, for callers that assign no
// incident in between.
func (d *Deduper) Process(ctx context.Context, a vigil.Alert) (Result, error) {
	r, err := d.Merge(ctx, a)
	if err != nil {
		return r, err
	}
	return r, d.Save(ctx, r)
}

// evict drops keys whose alert left the window, then, when still over
// size, arbitrary keys down to 90% (a dropped key costs one store lookup).
// Callers hold d.mu.
func (d *Deduper) evict() {
	cutoff := d.latest.Add(-d.window)
	for k, c := range d.cache {
		if c.a.Created.Before(cutoff) {
			delete(d.cache, k)
		}
	}
	for k := range d.cache {
		if len(d.cache) <= d.cacheSize*9/10 {
			break
		}
		delete(d.cache, k)
	}
}

// mergeInto returns a copy of old with a merged in.
func mergeInto(old, a vigil.Alert) vigil.Alert {
	m := old
	if m.Count < 1 {
		m.Count = 1
	}
	m.Count += max(a.Count, 1)
	m.EventIDs = slices.Clone(old.EventIDs)
	for _, id := range a.EventIDs {
		if len(m.EventIDs) >= MaxEventIDs {
			break
		}
		if !slices.Contains(m.EventIDs, id) {
			m.EventIDs = append(m.EventIDs, id)
		}
	}
	m.Provenance = slices.Clone(old.Provenance)
	for _, p := range a.Provenance {
		m.AddProvenance(p)
	}
	if a.LastEventTime.After(m.LastEventTime) {
		m.LastEventTime = a.LastEventTime
	}
	if !a.FirstEventTime.IsZero() && (m.FirstEventTime.IsZero() || a.FirstEventTime.Before(m.FirstEventTime)) {
		m.FirstEventTime = a.FirstEventTime
	}
	if a.Severity > m.Severity {
		m.Severity = a.Severity
	}
	m.MergeReceipt(&a)
	// The first explanation stays; later evidence adds excerpts, bounded.
	m.MergeExplanation(&a)
	m.Tags = union(old.Tags, a.Tags)
	m.Techniques = union(old.Techniques, a.Techniques)
	m.Entities = union(old.Entities, a.Entities)
	if len(a.Fields) > 0 {
		m.Fields = maps.Clone(old.Fields)
		if m.Fields == nil {
			m.Fields = map[string]any{}
		}
		for k, v := range a.Fields {
			if _, ok := m.Fields[k]; !ok {
				m.Fields[k] = v
			}
		}
	}
	if m.DeviceID == "" {
		m.DeviceID = a.DeviceID
	}
	return m
}

// union returns a followed by the elements of b not in a, sharing no
// memory with a.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Normalize fills what a detector may leave out and checks the rest: an id
// (vigil.NewID), Created (now), Count (1), DedupKey (detector, rule and
// device: "<detector>|<rule_id>|<device_id>"), techniques from ATT&CK tags,
// and EventIDs cut to MaxEventIDs. Errors: EINVALID for an alert with
// neither rule id nor title, or a severity out of range.
func Normalize(a *vigil.Alert, now time.Time) error {
	if a.RuleID == "" && a.Title == "" {
		return vigil.Errorf(vigil.EINVALID, "alert %q from detector %q has neither rule_id nor title", a.ID, a.Detector)
	}
	if a.Severity < 0 || a.Severity > vigil.SeverityCritical {
		return vigil.Errorf(vigil.EINVALID, "alert %q (rule %q) has severity %d out of range 0..5", a.ID, a.RuleID, int(a.Severity))
	}
	if a.ID == "" {
		a.ID = vigil.NewID()
	}
	if a.Created.IsZero() {
		a.Created = now
	}
	if a.Count < 1 {
		a.Count = 1
	}
	if a.DedupKey == "" {
		a.DedupKey = a.Detector + "|" + a.RuleID + "|" + a.DeviceID
	}
	if len(a.Techniques) == 0 {
		a.Techniques = vigil.TechniquesFromTags(a.Tags)
	}
	if len(a.EventIDs) > MaxEventIDs {
		a.EventIDs = a.EventIDs[:MaxEventIDs:MaxEventIDs]
	}
	if a.LastEventTime.IsZero() {
		a.LastEventTime = a.FirstEventTime
	}
	return nil
}
