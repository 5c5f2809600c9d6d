package detect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil/metrics"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
)

// DefaultGroup is the bus consumer group of the detection stage.
const DefaultGroup = "detect"

// DefaultTickInterval is how often the stage calls Ticker.Tick.
const DefaultTickInterval = 10 * time.Second

// dedupWindow is how many recent event ids the stage remembers per
// partition to skip redelivered events (the bus delivers at least once).
const dedupWindow = 8192

// StageOptions configures a Stage. The zero value is usable.
type StageOptions struct {
	// Group is the bus consumer group; DefaultGroup when empty.
	Group string
	// TickInterval is the period of Ticker.Tick calls; DefaultTickInterval
	// when zero.
	TickInterval time.Duration
	// Clock stamps Alert.Created and the time given to Tick;
	// vigil.SystemClock when nil.
	Clock vigil.Clock
	// Logger receives the stage's logs (component=detect); discarded when nil.
	Logger *slog.Logger
	// Registerer receives the stage's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// RetryBackoff is the first wait before retrying a failed alert
	// publication (doubling up to 5 s); 100 ms when zero.
	RetryBackoff time.Duration
	// ReplayAfter: an event received more than this after its own time is
	// replayed or backfilled data, and so is one whose source marks it
	// (field event.replayed true, as a sensor reading a capture file
	// does); its alerts are marked Replayed and count in no time to
	// detect. DefaultReplayAfter when zero.
	ReplayAfter time.Duration
	// Owner, when set, spreads the partitions over the nodes of a cluster
	// (the bus must implement bus.PartitionConsumer): the stage consumes
	// only the partitions this node owns, restoring the Stateful
	// detectors' state of a partition from Checkpoints when it acquires
	// it and dropping it when it gives it up. Nil: every partition.
	Owner Owner
	// Checkpoints, when set, receives the state of the Stateful detectors
	// of a partition after every batch that changed it, before the batch
	// is acknowledged: an acknowledged event is in the checkpoint, so the
	// node that takes the partition over continues the windows where they
	// were.
	Checkpoints Checkpoints
	// OnAcquire and OnRelease, when set, run when this node acquires a
	// partition (before its first event; an error gives the partition
	// back, to be tried again) and when it gave it up (after its last
	// event): the learned baseline restores and saves its state there.
	OnAcquire func(ctx context.Context, partition int) error
	OnRelease func(ctx context.Context, partition int)
}

// DefaultReplayAfter is StageOptions.ReplayAfter when zero.
const DefaultReplayAfter = time.Hour

// Stage drives detectors: it consumes events from the bus, runs every
// detector over each event in partition order and publishes the alerts
// they raise before the events are acknowledged, so an acknowledged event
// has always been evaluated and its alerts are durable.
//
// A Stage does not store events or alerts, deduplicate alerts (the alert
// stage merges them by DedupKey) or build incidents.
type Stage struct {
	bus       bus.Bus
	detectors []Detector
	names     []string
	tickers   []tickerEntry
	enrichers []enricherEntry
	group     string
	interval  time.Duration
	clock     vigil.Clock
	log       *slog.Logger
	backoff   time.Duration
	replay    time.Duration
	m         *stageMetrics

	owner       Owner
	checkpoints Checkpoints
	stateful    []statefulEntry
	onAcquire   func(ctx context.Context, partition int) error
	onRelease   func(ctx context.Context, partition int)

	mu    sync.Mutex
	parts map[int]*partState

	stackLogged sync.Map // detector name → struct{}: a panic's stack is logged once per detector
}

// Enricher is implemented by detectors that add fields to events for the
// others to use (the learned baseline sets baseline.new_peer, ... so Sigma
// rules can match them).
//
// Contract: the stage calls Enrich on every enricher, in detector order,
// before any detector's Detect sees the event, with the same partition
// rules as Detect. Enrich may add fields to ev.Fields (making the map when
// it is nil) under its own prefix, and remove fields under that prefix
// that came with the event (a source must not speak for it); it must not
// change or remove other fields, nor keep ev after it returns. The event is the stage's
// own decoded copy: what Enrich adds is seen by the detectors and carried
// into nothing else (the store keeps the event as ingested).
type Enricher interface {
	Enrich(ctx context.Context, partition int, ev *vigil.Event)
}

type enricherEntry struct {
	name string
	e    Enricher
}

type statefulEntry struct {
	name string
	s    Stateful
}

type tickerEntry struct {
	name string
	t    Ticker
}

// partState is the stage's per-partition state. The bus never runs two
// handlers of one partition at once, so it needs no lock.
type partState struct {
	seen map[string]struct{}
	ring []string
	next int
	// states is the last state of each Stateful detector (by name) put
	// in the partition's checkpoint; ids are the events of the last batch
	// that changed one; unsaved tells that Checkpoints.Save has not
	// written them yet (it is tried again before the next batch).
	states  map[string][]byte
	ids     []string
	unsaved bool
}

// partCheckpoint is the checkpoint of a partition: one value, written at
// once, so that the state and the batch it includes cannot disagree.
type partCheckpoint struct {
	// IDs are the events of the batch the states include last: if the
	// node died before acknowledging it, the next owner gets it again and
	// skips these events rather than count them twice.
	IDs    []string          `json:"ids,omitempty"`
	States map[string][]byte `json:"states,omitempty"`
}

// NewStage returns a stage that runs detectors over the events of b.
func NewStage(b bus.Bus, detectors []Detector, opts StageOptions) *Stage {
	s := &Stage{
		bus:      b,
		group:    opts.Group,
		interval: opts.TickInterval,
		clock:    opts.Clock,
		log:      opts.Logger,
		backoff:  opts.RetryBackoff,
		replay:   opts.ReplayAfter,
		parts:    make(map[int]*partState),

		owner:       opts.Owner,
		checkpoints: opts.Checkpoints,
		onAcquire:   opts.OnAcquire,
		onRelease:   opts.OnRelease,
	}
	if s.group == "" {
		s.group = DefaultGroup
	}
	if s.interval <= 0 {
		s.interval = DefaultTickInterval
	}
	if s.clock == nil {
		s.clock = vigil.SystemClock{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "detect")
	if s.backoff <= 0 {
		s.backoff = 100 * time.Millisecond
	}
	if s.replay <= 0 {
		s.replay = DefaultReplayAfter
	}
	for _, d := range detectors {
		if d == nil {
			continue
		}
		s.detectors = append(s.detectors, d)
		s.names = append(s.names, d.Name())
		if e, ok := d.(Enricher); ok {
			s.enrichers = append(s.enrichers, enricherEntry{name: d.Name(), e: e})
		}
		if t, ok := d.(Ticker); ok {
			s.tickers = append(s.tickers, tickerEntry{name: d.Name(), t: t})
		}
		if st, ok := d.(Stateful); ok {
			s.stateful = append(s.stateful, statefulEntry{name: d.Name(), s: st})
		}
	}
	s.m = newStageMetrics(opts.Registerer)
	return s
}

// Run consumes events from the bus in the stage's consumer group until ctx
// ends, and calls Tick on the detectors that implement Ticker every
// TickInterval, from its own goroutine: Tick runs concurrently with Detect.
// It returns nil when ctx is done, or the bus's error.
func (s *Stage) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if len(s.tickers) > 0 {
		wg.Go(func() { s.tickLoop(ctx) })
	}
	s.log.Info("detection stage started", "group", s.group, "detectors", strings.Join(s.names, ","), "owned", s.owner != nil)
	var err error
	if s.owner != nil {
		err = s.runOwned(ctx)
	} else {
		err = s.bus.ConsumeEvents(ctx, s.group, s.handle)
	}
	cancel()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("cannot consume events: %w", err)
	}
	return nil
}

// runOwned consumes the partitions the Owner gives this node, one
// bus.PartitionConsumer worker each.
func (s *Stage) runOwned(ctx context.Context) error {
	pc, ok := s.bus.(bus.PartitionConsumer)
	if !ok {
		return fmt.Errorf("cannot consume owned partitions: the bus consumes whole groups only")
	}
	return s.owner.Own(ctx, s.group, s.bus.Partitions(), func(ctx context.Context, p int) {
		if err := s.acquire(ctx, p); err != nil {
			if ctx.Err() == nil {
				s.log.Error("cannot restore partition; giving it back", "partition", p, "err", err)
				// Let the owner try again a little later.
				t := time.NewTimer(time.Second)
				select {
				case <-ctx.Done():
				case <-t.C:
				}
				t.Stop()
			}
			s.release(context.WithoutCancel(ctx), p)
			return
		}
		if err := pc.ConsumeEventPartition(ctx, s.group, p, s.handle); err != nil {
			s.log.Error("cannot consume partition", "partition", p, "err", err)
		}
		s.release(context.WithoutCancel(ctx), p)
	})
}

// acquire restores the state of partition p from its checkpoint.
func (s *Stage) acquire(ctx context.Context, p int) error {
	s.mu.Lock()
	delete(s.parts, p) // the recent ids of an earlier ownership are stale
	s.mu.Unlock()
	var cp partCheckpoint
	if s.checkpoints != nil {
		b, err := s.checkpoints.Load(ctx, s.group, p)
		if err != nil {
			return err
		}
		if len(b) > 0 {
			if err := json.Unmarshal(b, &cp); err != nil {
				// A checkpoint that cannot be read is lost, not a reason
				// to stop detecting on the partition.
				s.log.Error("cannot read checkpoint; starting empty", "partition", p, "err", err)
				cp = partCheckpoint{}
			}
		}
	}
	ps := s.part(p)
	ps.states = map[string][]byte{}
	for _, id := range cp.IDs {
		ps.remember(id)
	}
	for _, st := range s.stateful {
		st.s.DropPartition(p)
		state := cp.States[st.name]
		if err := s.restore(st, p, state); err != nil {
			s.log.Error("cannot restore checkpoint; starting empty", "detector", st.name, "partition", p, "err", err)
			st.s.DropPartition(p)
			continue
		}
		if state != nil {
			ps.states[st.name] = state
		}
	}
	if s.onAcquire != nil {
		if err := s.onAcquire(ctx, p); err != nil {
			return err
		}
	}
	s.log.Info("partition acquired", "partition", p, "restored", len(ps.states))
	return nil
}

// restore runs RestorePartition, turning a panic into an error: a bad
// checkpoint must not stop the node.
func (s *Stage) restore(st statefulEntry, p int, state []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.panicked(st.name, r, "partition", p, "step", "restore")
			err = fmt.Errorf("cannot restore partition %d: panic: %v", p, r)
		}
	}()
	return st.s.RestorePartition(p, state)
}

// release drops the state of partition p once its worker stopped.
func (s *Stage) release(ctx context.Context, p int) {
	if s.onRelease != nil {
		s.onRelease(ctx, p)
	}
	for _, st := range s.stateful {
		st.s.DropPartition(p)
	}
	s.mu.Lock()
	delete(s.parts, p)
	s.mu.Unlock()
	s.log.Info("partition released", "partition", p)
}

// handle is the bus handler: it evaluates a batch and returns only once
// the alerts it raised are published (and, with Checkpoints, the state it
// changed saved), so the batch is acknowledged after its alerts are
// durable.
func (s *Stage) handle(ctx context.Context, partition int, events []vigil.Event) error {
	if err := s.saveUnsaved(ctx, partition); err != nil {
		return err
	}
	alerts := s.Evaluate(ctx, partition, events)
	if len(alerts) > 0 {
		if err := s.publish(ctx, alerts); err != nil {
			// The batch will be redelivered: let it be evaluated again rather
			// than skipped as a duplicate, so its alerts are not lost.
			s.forget(partition, events)
			return err
		}
	}
	return s.checkpoint(ctx, partition, events)
}

// checkpoint saves the partition's checkpoint when the batch changed a
// Stateful detector's state. What cannot be saved is saved first on the
// next call; the batch is then redelivered, and its events are skipped as
// already evaluated.
func (s *Stage) checkpoint(ctx context.Context, partition int, events []vigil.Event) error {
	if s.checkpoints == nil {
		return nil
	}
	ps := s.part(partition)
	changed := false
	for _, st := range s.stateful {
		state, ch, err := st.s.SnapshotPartition(partition)
		if err != nil {
			s.m.errors.WithLabelValues(st.name, "checkpoint").Inc()
			s.log.Error("cannot snapshot detector state", "detector", st.name, "partition", partition, "err", err)
			continue
		}
		if !ch {
			continue
		}
		if ps.states == nil {
			ps.states = map[string][]byte{}
		}
		ps.states[st.name] = state
		changed = true
	}
	if changed {
		ps.ids = ps.ids[:0]
		for i := range events {
			if events[i].ID != "" {
				ps.ids = append(ps.ids, strings.Clone(events[i].ID))
			}
		}
		ps.unsaved = true
	}
	return s.saveUnsaved(ctx, partition)
}

func (s *Stage) saveUnsaved(ctx context.Context, partition int) error {
	if s.checkpoints == nil {
		return nil
	}
	ps := s.part(partition)
	if !ps.unsaved {
		return nil
	}
	b, err := json.Marshal(partCheckpoint{IDs: ps.ids, States: ps.states})
	if err == nil {
		err = s.checkpoints.Save(ctx, s.group, partition, b)
	}
	if err != nil {
		s.m.errors.WithLabelValues("", "checkpoint").Inc()
		return err
	}
	ps.unsaved = false
	s.m.checkpoints.Inc()
	return nil
}

// Evaluate runs every detector over events, in order (every Enricher's
// Enrich first, then every detector's Detect, event by event), as if they came from
// the bus partition partition, and returns the alerts raised with their
// defaults filled. It does not publish them. Events whose id was already
// evaluated in this partition recently are skipped (the bus redelivers).
// Calls for different partitions may be concurrent; calls for one
// partition must not be.
func (s *Stage) Evaluate(ctx context.Context, partition int, events []vigil.Event) []vigil.Alert {
	ps := s.part(partition)
	var (
		out    []vigil.Alert
		cur    *vigil.Event
		name   string
		raised map[string]int // alerts raised on cur, by detector and rule
	)
	emit := func(a vigil.Alert) {
		if a.ID == "" && cur.ID != "" {
			// The same alert on the same event gets the same id, so that
			// evaluating the event again (a node died before its
			// checkpoint was saved) raises nothing new (alert.Deduper).
			key := name + "\x00" + a.RuleID
			if raised == nil {
				raised = map[string]int{}
			}
			n := raised[key]
			raised[key] = n + 1
			at := cur.Received
			if at.IsZero() {
				at = cur.Time
			}
			a.ID = vigil.DerivedID(at, name, a.RuleID, cur.DeviceID, cur.ID, strconv.Itoa(n))
		}
		s.fill(&a, name, cur)
		out = append(out, a)
		s.m.alerts.WithLabelValues(name).Inc()
		if !cur.Received.IsZero() {
			s.m.latency.Observe(max(a.Created.Sub(cur.Received), 0).Seconds())
		}
	}
	for i := range events {
		cur = &events[i]
		clear(raised)
		if !ps.remember(cur.ID) {
			s.m.duplicates.Inc()
			continue
		}
		s.m.events.Inc()
		for _, en := range s.enrichers {
			s.enrich(ctx, en, partition, cur)
		}
		for j, d := range s.detectors {
			name = s.names[j]
			s.call(ctx, d, name, partition, cur, emit)
		}
	}
	return out
}

// call runs one detector on one event, recovering a panic.
func (s *Stage) call(ctx context.Context, d Detector, name string, partition int, ev *vigil.Event, emit func(vigil.Alert)) {
	defer func() {
		if r := recover(); r != nil {
			s.panicked(name, r, "partition", partition, "event", ev.ID, "device", ev.DeviceID)
		}
	}()
	d.Detect(ctx, partition, ev, emit)
}

// enrich runs one enricher on one event, recovering a panic.
func (s *Stage) enrich(ctx context.Context, en enricherEntry, partition int, ev *vigil.Event) {
	defer func() {
		if r := recover(); r != nil {
			s.panicked(en.name, r, "partition", partition, "event", ev.ID, "device", ev.DeviceID, "step", "enrich")
		}
	}()
	en.e.Enrich(ctx, partition, ev)
}

func (s *Stage) panicked(name string, r any, attrs ...any) {
	s.m.errors.WithLabelValues(name, "panic").Inc()
	attrs = append(attrs, "detector", name, "panic", fmt.Sprint(r))
	if _, logged := s.stackLogged.LoadOrStore(name, struct{}{}); !logged {
		attrs = append(attrs, "stack", string(debug.Stack()))
	}
	s.log.Error("detector panicked", attrs...)
}

// fill sets the defaults of an alert raised by detector name on ev (nil for
// an alert raised by Tick).
func (s *Stage) fill(a *vigil.Alert, name string, ev *vigil.Event) {
	if a.ID == "" {
		a.ID = vigil.NewID()
	}
	if a.Created.IsZero() {
		a.Created = s.clock.Now()
	}
	if a.Detector == "" {
		a.Detector = name
	}
	if len(a.Techniques) == 0 {
		a.Techniques = vigil.TechniquesFromTags(a.Tags)
	}
	if a.Count == 0 {
		a.Count = 1
	}
	if ev != nil {
		if a.DeviceID == "" {
			a.DeviceID = ev.DeviceID
		}
		if len(a.EventIDs) == 0 && ev.ID != "" {
			a.EventIDs = []string{ev.ID}
		}
		if a.FirstEventTime.IsZero() {
			a.FirstEventTime = ev.Time
		}
		if a.LastEventTime.IsZero() {
			a.LastEventTime = ev.Time
		}
		s.receipt(a, ev)
		// The alert carries how its evidence was authenticated: the
		// response engine contains automatically only on trusted evidence.
		a.AddProvenance(ev.Provenance)
	}
	if a.DedupKey == "" {
		a.DedupKey = a.Detector + ":" + a.RuleID + ":" + a.DeviceID
	}
}

// receipt sets when the evidence of a, raised on ev, was received, or
// marks it replayed. ev is the event that completed the detection; the
// first evidence was received the span of the evidence's own times before
// it (at most), as the delay from source to Vigil is the same for both.
func (s *Stage) receipt(a *vigil.Alert, ev *vigil.Event) {
	if !a.FirstReceived.IsZero() || a.Replayed || ev.Received.IsZero() {
		return
	}
	if replayed(ev) || ev.Received.Sub(ev.Time) > s.replay {
		a.Replayed = true
		return
	}
	first := ev.Received
	if span := ev.Time.Sub(a.FirstEventTime); !a.FirstEventTime.IsZero() && span > 0 {
		first = first.Add(-span)
	}
	a.FirstReceived = first
}

// replayed reports whether ev's source marked it as replayed (field
// event.replayed true).
func replayed(ev *vigil.Event) bool {
	switch v := ev.Fields["event.replayed"].(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// publish publishes alerts, retrying with backoff until it succeeds or ctx
// ends: giving up would either lose the alerts or make the bus redeliver
// events the detectors already counted.
func (s *Stage) publish(ctx context.Context, alerts []vigil.Alert) error {
	wait := s.backoff
	for {
		err := s.bus.PublishAlerts(ctx, alerts)
		if err == nil {
			return nil
		}
		s.m.errors.WithLabelValues("", "publish").Inc()
		if ctx.Err() != nil {
			return fmt.Errorf("cannot publish %d alerts: %w", len(alerts), err)
		}
		level := slog.LevelWarn
		if !errors.Is(err, bus.ErrBackpressure) {
			level = slog.LevelError
		}
		s.log.Log(ctx, level, "cannot publish alerts, retrying", "alerts", len(alerts), "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("cannot publish %d alerts: %w", len(alerts), err)
		case <-t.C:
		}
		wait = min(wait*2, 5*time.Second)
	}
}

func (s *Stage) tickLoop(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		alerts := s.Tick(ctx)
		if len(alerts) == 0 {
			continue
		}
		if err := s.publish(ctx, alerts); err != nil {
			s.log.Error("alerts raised by Tick lost", "alerts", len(alerts), "err", err)
		}
	}
}

// Tick calls Tick on every detector that implements Ticker with the
// clock's time and returns the alerts raised, with their defaults filled.
// It does not publish them. Run calls it every TickInterval.
func (s *Stage) Tick(ctx context.Context) []vigil.Alert {
	now := s.clock.Now()
	var out []vigil.Alert
	for _, te := range s.tickers {
		func() {
			defer func() {
				if r := recover(); r != nil {
					s.panicked(te.name, r, "tick", now)
				}
			}()
			te.t.Tick(ctx, now, func(a vigil.Alert) {
				s.fill(&a, te.name, nil)
				out = append(out, a)
				s.m.alerts.WithLabelValues(te.name).Inc()
			})
		}()
	}
	return out
}

func (s *Stage) part(partition int) *partState {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.parts[partition]
	if ps == nil {
		ps = &partState{seen: make(map[string]struct{}), ring: make([]string, dedupWindow)}
		s.parts[partition] = ps
	}
	return ps
}

// remember records id and reports whether it is new. Events without an id
// are always new.
func (ps *partState) remember(id string) bool {
	if id == "" {
		return true
	}
	if _, ok := ps.seen[id]; ok {
		return false
	}
	id = strings.Clone(id) // the event's memory may be reused after Detect
	if old := ps.ring[ps.next]; old != "" {
		delete(ps.seen, old)
	}
	ps.ring[ps.next] = id
	ps.next = (ps.next + 1) % len(ps.ring)
	ps.seen[id] = struct{}{}
	return true
}

// forget removes the ids of events from the partition's recent ids.
func (s *Stage) forget(partition int, events []vigil.Event) {
	ps := s.part(partition)
	for i := range events {
		delete(ps.seen, events[i].ID)
	}
}

type stageMetrics struct {
	events      prometheus.Counter
	duplicates  prometheus.Counter
	alerts      *prometheus.CounterVec
	errors      *prometheus.CounterVec
	latency     prometheus.Histogram
	checkpoints prometheus.Counter
}

func newStageMetrics(reg prometheus.Registerer) *stageMetrics {
	m := &stageMetrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_detect_events_total",
			Help: "Events evaluated by the detection stage.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_detect_duplicate_events_total",
			Help: "Redelivered events skipped because they were already evaluated.",
		}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_detect_alerts_total",
			Help: "Alerts raised, by detector.",
		}, []string{"detector"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_detect_errors_total",
			Help: "Detection stage errors: detector panics (reason=panic), failed alert publications (reason=publish), failed checkpoints (reason=checkpoint).",
		}, []string{"detector", "reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_detect_latency_seconds",
			Help:    "Time from an event's ingestion (Event.Received) to the alert it raised (Alert.Created).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_detect_checkpoints_total",
			Help: "Checkpoints of a detector's partition state saved (cluster mode).",
		}),
	}
	if reg != nil {
		m.checkpoints = register(reg, m.checkpoints)
		m.events = register(reg, m.events)
		m.duplicates = register(reg, m.duplicates)
		m.alerts = register(reg, m.alerts)
		m.errors = register(reg, m.errors)
		m.latency = register(reg, m.latency)
	}
	return m
}

// register registers c, or returns the collector already registered under
// the same description (two stages in one process share their metrics).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	c, err := metrics.Register(reg, c)
	if err != nil {
		panic(fmt.Sprintf("cannot register detect metric: %v", err))
	}
	return c
}
