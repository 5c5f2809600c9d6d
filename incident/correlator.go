package incident

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// DefaultWindow is the grouping window when Options.Window is zero: an
// alert joins an incident last updated at most this long before it.
const DefaultWindow = 30 * time.Minute

// MaxAlertIDs bounds Incident.AlertIDs. Alerts beyond it still join the
// incident (their IncidentID is set, so store.AlertFilter.IncidentID finds
// them all); only the list on the incident stops growing.
const MaxAlertIDs = 1000

// pruneEvery is how many assignments pass between two sweeps of the index
// for incidents too old to be joined.
const pruneEvery = 256

// Options configure a Correlator. Zero values take the defaults.
type Options struct {
	// Window is the grouping window (DefaultWindow when zero).
	Window time.Duration
	// Clock gives the time for Contain and Resolve calls without one, for
	// alerts without a time, and for choosing which open incidents to load
	// at start (those updated within two windows of now).
	Clock vigil.Clock
	// Logger gets the correlator's logs (component=incident).
	Logger *slog.Logger
	// Registerer registers the metrics; nil registers none.
	Registerer prometheus.Registerer
	// OwnAddrs are the server's own addresses (or networks): like
	// loopback, link-local, multicast, broadcast and unspecified
	// addresses, they are in the traffic of every device and never join
	// alerts into one incident.
	OwnAddrs []netip.Prefix
	// Priority, when set, gives every alert assigned and every incident
	// stored its priority (vigil.Priority), computed again whenever the
	// incident changes; nil leaves priorities unset.
	Priority *Prioritizer
	// Shared tells that other nodes write the same incidents (a
	// cluster): the index is then only a guide, and every incident an
	// alert joins, contains or resolves is read from the store first, so
	// a containment or resolution made on another node, or alerts it
	// joined, are not overwritten. One node at a time assigns alerts (the
	// cluster's lease of the alert stage); it calls Reload when it takes
	// over.
	Shared bool
}

// Correlator assigns alerts to incidents and keeps incidents' timestamps.
// It is safe for concurrent use; it implements alert.IncidentAssigner.
type Correlator struct {
	st     store.Incidents
	window time.Duration
	clock  vigil.Clock
	log    *slog.Logger
	own    []netip.Prefix
	prio   *Prioritizer
	shared bool

	mu sync.Mutex
	// live holds the incidents that may still be joined, by id. The
	// pointers are replaced, never mutated, once stored.
	live     map[string]*vigil.Incident
	byDevice map[string]map[string]struct{}
	byEntity map[string]map[string]struct{}
	latest   time.Time // latest alert time seen, for pruning
	assigned int

	created prometheus.Counter
	joined  prometheus.Counter
	closed  *prometheus.CounterVec
}

// NewCorrelator returns a correlator over st and loads the incidents that
// can still be joined (status open or contained, updated within two
// windows of the clock's now) into its index.
func NewCorrelator(ctx context.Context, st store.Incidents, opts Options) (*Correlator, error) {
	c := &Correlator{
		st:       st,
		window:   opts.Window,
		clock:    opts.Clock,
		log:      opts.Logger,
		own:      opts.OwnAddrs,
		prio:     opts.Priority,
		shared:   opts.Shared,
		live:     map[string]*vigil.Incident{},
		byDevice: map[string]map[string]struct{}{},
		byEntity: map[string]map[string]struct{}{},
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_incidents_created_total",
			Help: "Incidents opened.",
		}),
		joined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_incident_alerts_joined_total",
			Help: "Alerts that joined an existing incident.",
		}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_incidents_closed_total",
			Help: "Incidents resolved, by final status.",
		}, []string{"status"}),
	}
	if c.window <= 0 {
		c.window = DefaultWindow
	}
	if c.clock == nil {
		c.clock = vigil.SystemClock{}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("component", "incident")
	if r := opts.Registerer; r != nil {
		for _, m := range []prometheus.Collector{c.created, c.joined, c.closed} {
			if err := r.Register(m); err != nil {
				return nil, fmt.Errorf("cannot register incident metrics: %w", err)
			}
		}
	}
	if err := c.load(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// load fills the index from the store.
func (c *Correlator) load(ctx context.Context) error {
	since := c.clock.Now().Add(-2 * c.window)
	for _, status := range []vigil.IncidentStatus{vigil.IncidentOpen, vigil.IncidentContained} {
		f := store.IncidentFilter{Status: status, UpdatedSince: since, Page: store.Page{Limit: 1000}}
		for {
			list, next, err := c.st.ListIncidents(ctx, f)
			if err != nil {
				return fmt.Errorf("cannot load %s incidents: %w", status, err)
			}
			for i := range list {
				inc := list[i]
				c.index(&inc)
				if inc.Updated.After(c.latest) {
					c.latest = inc.Updated
				}
			}
			if next == "" || len(list) == 0 {
				break
			}
			f.Cursor = next
		}
	}
	c.log.Info("incident index loaded", "incidents", len(c.live), "since", since)
	return nil
}

// Window returns the grouping window in use.
func (c *Correlator) Window() time.Duration { return c.window }

// Assign puts the alert into an incident and sets a.IncidentID: the
// incident the alert already names when it can still take it (a merged
// alert comes back with its incident), else the most recently updated
// joinable incident on the same device or sharing an entity, else a new
// one. The incident is stored before Assign returns; a.IncidentID is set
// only when it was. Errors: EINVALID for an alert without an id; otherwise
// the store's error.
func (c *Correlator) Assign(ctx context.Context, a *vigil.Alert) error {
	if a == nil || a.ID == "" {
		return vigil.Errorf(vigil.EINVALID, "cannot assign an alert without an id to an incident")
	}
	t := c.alertTime(a)

	c.mu.Lock()
	defer c.mu.Unlock()

	var inc *vigil.Incident
	if a.IncidentID != "" {
		inc = c.live[a.IncidentID]
		if inc == nil {
			got, err := c.st.GetIncident(ctx, a.IncidentID)
			switch {
			case vigil.ErrorCode(err) == vigil.ENOTFOUND:
			case err != nil:
				return fmt.Errorf("cannot read incident %s of alert %s: %w", a.IncidentID, a.ID, err)
			case joinable(got.Status):
				inc = &got
			}
		}
	}
	if inc != nil && c.shared {
		got, err := c.fresh(ctx, inc.ID)
		if err != nil {
			return err
		}
		inc = got
	}
	for inc == nil {
		if inc = c.match(a, t); inc == nil || !c.shared {
			break
		}
		got, err := c.fresh(ctx, inc.ID)
		if err != nil {
			return err
		}
		inc = got // nil when closed elsewhere: unindexed, match again
	}
	isNew := inc == nil
	if isNew {
		inc = &vigil.Incident{ID: vigil.NewID(), Status: vigil.IncidentOpen}
	}
	n := c.merge(*inc, a, t)
	if c.prio != nil {
		ap := c.prio.Alert(ctx, a, &n)
		a.Priority = &ap
		_, why := AlertConfidence(a)
		ip := c.prio.Incident(ctx, &n, ap.Confidence, why)
		n.Priority = &ip
	}
	if err := c.st.PutIncident(ctx, n); err != nil {
		return fmt.Errorf("cannot store incident %s for alert %s: %w", n.ID, a.ID, err)
	}
	c.index(&n)
	a.IncidentID = n.ID
	if isNew {
		c.created.Inc()
		c.log.Info("incident opened", "incident", n.ID, "alert", a.ID, "device", a.DeviceID, "title", n.Title)
	} else {
		c.joined.Inc()
	}
	if t.After(c.latest) {
		c.latest = t
	}
	if c.assigned++; c.assigned%pruneEvery == 0 {
		c.prune()
	}
	return nil
}

// Contain records that the incident was contained at at (the clock's now
// when zero): Contained keeps the earliest such time and an open incident
// becomes contained. A contained incident can still take alerts.
// Errors: ENOTFOUND, ECONFLICT when the incident is already closed.
func (c *Correlator) Contain(ctx context.Context, id string, at time.Time) error {
	if at.IsZero() {
		at = c.clock.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	inc, err := c.get(ctx, id)
	if err != nil {
		return err
	}
	if !joinable(inc.Status) {
		return vigil.Errorf(vigil.ECONFLICT, "cannot contain incident %s: it is already %s", id, inc.Status)
	}
	n := clone(inc)
	if n.Contained.IsZero() || at.Before(n.Contained) {
		n.Contained = at
	}
	n.Status = vigil.IncidentContained
	if at.After(n.Updated) {
		n.Updated = at
	}
	c.reprioritize(ctx, &n)
	if err := c.st.PutIncident(ctx, n); err != nil {
		return fmt.Errorf("cannot store incident %s: %w", id, err)
	}
	if _, ok := c.live[id]; ok {
		c.index(&n)
	}
	c.log.Info("incident contained", "incident", id, "at", n.Contained, "time_to_contain", n.TimeToContain())
	return nil
}

// Resolve closes the incident with status (resolved or false_positive) at
// at (the clock's now when zero). A closed incident takes no more alerts.
// Resolving an incident again with the same status does nothing.
// Errors: EINVALID for another status, ENOTFOUND, ECONFLICT when it was
// closed with another status.
func (c *Correlator) Resolve(ctx context.Context, id string, status vigil.IncidentStatus, at time.Time) error {
	return c.ResolveBecause(ctx, id, status, "", "", at)
}

// MaxResolution bounds the reason given when closing an incident, in bytes.
const MaxResolution = 2000

// ResolveBecause is Resolve with the reason the closer gave and who they
// are, kept with the incident (Incident.Resolution, ResolvedBy). EINVALID
// also for a reason longer than MaxResolution.
func (c *Correlator) ResolveBecause(ctx context.Context, id string, status vigil.IncidentStatus, reason, by string, at time.Time) error {
	if len(reason) > MaxResolution {
		return vigil.Errorf(vigil.EINVALID, "cannot resolve incident %s: the reason is %d bytes, at most %d", id, len(reason), MaxResolution)
	}
	if status != vigil.IncidentResolved && status != vigil.IncidentFalsePositive {
		return vigil.Errorf(vigil.EINVALID, "cannot resolve incident %s as %q: want %q or %q",
			id, status, vigil.IncidentResolved, vigil.IncidentFalsePositive)
	}
	if at.IsZero() {
		at = c.clock.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	inc, err := c.get(ctx, id)
	if err != nil {
		return err
	}
	if inc.Status == status {
		return nil
	}
	if !joinable(inc.Status) {
		return vigil.Errorf(vigil.ECONFLICT, "cannot resolve incident %s: it is already %s", id, inc.Status)
	}
	n := clone(inc)
	n.Status = status
	n.Resolved = at
	n.Resolution, n.ResolvedBy = reason, by
	if at.After(n.Updated) {
		n.Updated = at
	}
	c.reprioritize(ctx, &n)
	if err := c.st.PutIncident(ctx, n); err != nil {
		return fmt.Errorf("cannot store incident %s: %w", id, err)
	}
	c.unindex(id)
	c.closed.WithLabelValues(string(status)).Inc()
	c.log.Info("incident closed", "incident", id, "status", status, "at", at)
	return nil
}

// reprioritize computes n's priority again (its devices' criticality and
// exposure may have changed), keeping the confidence of its alerts.
func (c *Correlator) reprioritize(ctx context.Context, n *vigil.Incident) {
	if c.prio == nil {
		return
	}
	p := c.prio.Incident(ctx, n, 0, "")
	n.Priority = &p
}

// fresh reads a joinable incident from the store for a shared
// correlator, updating the index; it returns nil (and unindexes it) when
// the incident was closed or is gone. Callers hold c.mu.
func (c *Correlator) fresh(ctx context.Context, id string) (*vigil.Incident, error) {
	got, err := c.st.GetIncident(ctx, id)
	if vigil.ErrorCode(err) == vigil.ENOTFOUND {
		c.unindex(id)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read incident %s: %w", id, err)
	}
	if !joinable(got.Status) {
		c.unindex(id)
		return nil, nil
	}
	c.index(&got)
	return &got, nil
}

// Reload empties the index and loads it from the store again, as
// NewCorrelator does: a node of a cluster that takes the alert stage over
// calls it to see the incidents the previous owner opened.
func (c *Correlator) Reload(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = map[string]*vigil.Incident{}
	c.byDevice = map[string]map[string]struct{}{}
	c.byEntity = map[string]map[string]struct{}{}
	return c.load(ctx)
}

// get returns the incident from the index or the store (the store only,
// when shared). Callers hold c.mu.
func (c *Correlator) get(ctx context.Context, id string) (vigil.Incident, error) {
	if inc, ok := c.live[id]; ok && !c.shared {
		return *inc, nil
	}
	inc, err := c.st.GetIncident(ctx, id)
	if err != nil {
		if vigil.ErrorCode(err) == vigil.ENOTFOUND {
			return inc, err
		}
		return inc, fmt.Errorf("cannot read incident %s: %w", id, err)
	}
	return inc, nil
}

// match returns the joinable incident for a, or nil. Callers hold c.mu.
func (c *Correlator) match(a *vigil.Alert, t time.Time) *vigil.Incident {
	var best *vigil.Incident
	consider := func(ids map[string]struct{}) {
		for id := range ids {
			inc := c.live[id]
			if inc == nil || !c.inWindow(inc, t) {
				continue
			}
			if best == nil || inc.Updated.After(best.Updated) ||
				(inc.Updated.Equal(best.Updated) && inc.ID < best.ID) {
				best = inc
			}
		}
	}
	if a.DeviceID != "" {
		consider(c.byDevice[a.DeviceID])
	}
	for _, e := range a.Entities {
		if c.groups(e) {
			consider(c.byEntity[e])
		}
	}
	return best
}

// groups reports whether entity e may join alerts into one incident. An
// address that is in the traffic of many unrelated devices may not:
// loopback, link-local, multicast, broadcast, unspecified, and the
// server's own addresses (a sensor alert about ::1 is not about the agent
// whose alert also names ::1).
func (c *Correlator) groups(e string) bool {
	v, ok := strings.CutPrefix(e, "ip:")
	if !ok {
		return true
	}
	addr, err := netip.ParseAddr(v)
	if err != nil {
		return true
	}
	addr = addr.Unmap()
	if addr.IsLoopback() || addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() ||
		addr.IsInterfaceLocalMulticast() || addr.IsMulticast() || addr.IsUnspecified() ||
		addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	for _, p := range c.own {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

// inWindow reports whether an alert at t may join inc: no later than one
// window after its last update, and no earlier than one window before its
// detection (alerts may arrive a little out of order).
func (c *Correlator) inWindow(inc *vigil.Incident, t time.Time) bool {
	if t.After(inc.Updated.Add(c.window)) {
		return false
	}
	return !t.Before(inc.Detected.Add(-c.window))
}

// index puts inc into the index under its devices and entities, replacing
// an older version. Callers hold c.mu.
func (c *Correlator) index(inc *vigil.Incident) {
	c.live[inc.ID] = inc
	for _, d := range inc.DeviceIDs {
		addKey(c.byDevice, d, inc.ID)
	}
	for _, e := range inc.Entities {
		if c.groups(e) {
			addKey(c.byEntity, e, inc.ID)
		}
	}
}

// unindex drops an incident from the index. Callers hold c.mu.
func (c *Correlator) unindex(id string) {
	inc, ok := c.live[id]
	if !ok {
		return
	}
	delete(c.live, id)
	for _, d := range inc.DeviceIDs {
		delKey(c.byDevice, d, id)
	}
	for _, e := range inc.Entities {
		delKey(c.byEntity, e, id)
	}
}

// prune drops incidents that no alert near the latest one can join.
// Callers hold c.mu.
func (c *Correlator) prune() {
	cutoff := c.latest.Add(-2 * c.window)
	for id, inc := range c.live {
		if inc.Updated.Before(cutoff) {
			c.unindex(id)
		}
	}
}

// alertTime is the time an alert counts at for grouping: its latest known
// moment (Created or LastEventTime), or the clock's now without either.
func (c *Correlator) alertTime(a *vigil.Alert) time.Time {
	t := a.Created
	if a.LastEventTime.After(t) {
		t = a.LastEventTime
	}
	if t.IsZero() {
		t = c.clock.Now()
	}
	return t
}

// merge returns inc with a joined at time t. Entities that do not group
// (see groups) are left out of the incident's.
func (c *Correlator) merge(inc vigil.Incident, a *vigil.Alert, t time.Time) vigil.Incident {
	n := clone(inc)
	first := len(n.AlertIDs) == 0
	if !slices.Contains(n.AlertIDs, a.ID) && len(n.AlertIDs) < MaxAlertIDs {
		n.AlertIDs = append(n.AlertIDs, a.ID)
	}
	if a.DeviceID != "" {
		n.DeviceIDs = addUnique(n.DeviceIDs, a.DeviceID)
	}
	for _, e := range a.Entities {
		if c.groups(e) {
			n.Entities = addUnique(n.Entities, e)
		}
	}
	for _, tq := range a.Techniques {
		n.Techniques = addUnique(n.Techniques, tq)
	}
	if first || a.Severity > n.Severity {
		n.Severity = a.Severity
		n.Title = c.title(a)
	}
	detected := a.Created
	if detected.IsZero() {
		detected = t
	}
	// Detection is the first live alert's: a replayed alert does not move
	// a live incident's detection, and the first live alert to join an
	// incident of replayed ones sets it.
	switch {
	case first || n.Detected.IsZero():
		n.Detected = detected
	case a.Replayed && !n.Replayed:
	case !a.Replayed && n.Replayed:
		n.Detected = detected
	case detected.Before(n.Detected):
		n.Detected = detected
	}
	fe := a.FirstEventTime
	if fe.IsZero() {
		fe = detected
	}
	if n.FirstEventTime.IsZero() || fe.Before(n.FirstEventTime) {
		n.FirstEventTime = fe
	}
	// Time to detect runs from the first live evidence's receipt; an
	// incident of replayed alerts only has none.
	if first {
		n.FirstReceived, n.Replayed = a.FirstReceived, a.Replayed
	} else {
		r := vigil.Alert{FirstReceived: n.FirstReceived, Replayed: n.Replayed}
		r.MergeReceipt(a)
		n.FirstReceived, n.Replayed = r.FirstReceived, r.Replayed
	}
	if t.After(n.Updated) {
		n.Updated = t
	}
	return n
}

// title names an incident after an alert: "<title> on <device>", or
// "<title> involving <entity>" with its first entity that groups.
func (c *Correlator) title(a *vigil.Alert) string {
	s := a.Title
	if s == "" {
		s = a.RuleID
	}
	if s == "" {
		s = a.Detector + " alert"
	}
	switch {
	case a.DeviceID != "":
		return s + " on " + a.DeviceID
	}
	for _, e := range a.Entities {
		if c.groups(e) {
			return s + " involving " + e
		}
	}
	return s
}

// joinable reports whether an incident in that status can take alerts.
func joinable(s vigil.IncidentStatus) bool {
	return s == vigil.IncidentOpen || s == vigil.IncidentContained
}

// clone copies an incident so that changing its lists leaves inc alone.
func clone(inc vigil.Incident) vigil.Incident {
	inc.DeviceIDs = slices.Clone(inc.DeviceIDs)
	inc.Entities = slices.Clone(inc.Entities)
	inc.AlertIDs = slices.Clone(inc.AlertIDs)
	inc.Techniques = slices.Clone(inc.Techniques)
	return inc
}

func addUnique(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func addKey(m map[string]map[string]struct{}, key, id string) {
	ids := m[key]
	if ids == nil {
		ids = map[string]struct{}{}
		m[key] = ids
	}
	ids[id] = struct{}{}
}

func delKey(m map[string]map[string]struct{}, key, id string) {
	if ids := m[key]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(m, key)
		}
	}
}
