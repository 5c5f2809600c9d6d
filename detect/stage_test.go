package detect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
)

// memBus is a small in-process bus.Bus with the contract's delivery rules
// (per-partition order, redelivery of a batch whose handler failed), and a
// journal of publications and acknowledgements so tests can check their
// order. The NATS implementation is tested in bus/natsbus.
type memBus struct {
	parts int
	queue []chan []vigil.Event

	mu         sync.Mutex
	journal    []string
	alerts     []vigil.Alert
	failAlerts int // fail that many PublishAlerts calls
	published  chan struct{}
}

var _ bus.Bus = (*memBus)(nil)

func newMemBus(parts int) *memBus {
	b := &memBus{parts: parts, published: make(chan struct{}, 100)}
	for range parts {
		b.queue = append(b.queue, make(chan []vigil.Event, 100))
	}
	return b
}

func (b *memBus) PublishEvents(ctx context.Context, events []vigil.Event) error {
	byPart := map[int][]vigil.Event{}
	for _, ev := range events {
		p := bus.Partition(ev.DeviceID, b.parts)
		byPart[p] = append(byPart[p], ev)
	}
	for p, evs := range byPart {
		b.queue[p] <- evs
	}
	return nil
}

func (b *memBus) PublishAlerts(ctx context.Context, alerts []vigil.Alert) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failAlerts > 0 {
		b.failAlerts--
		b.journal = append(b.journal, "alerts refused")
		return bus.ErrBackpressure
	}
	for _, a := range alerts {
		b.journal = append(b.journal, "alert "+a.RuleID+" "+strings.Join(a.EventIDs, ","))
	}
	b.alerts = append(b.alerts, alerts...)
	select {
	case b.published <- struct{}{}:
	default:
	}
	return nil
}

func (b *memBus) ConsumeEvents(ctx context.Context, group string, h bus.EventHandler) error {
	var wg sync.WaitGroup
	for p := range b.parts {
		wg.Go(func() {
			for {
				var batch []vigil.Event
				select {
				case <-ctx.Done():
					return
				case batch = <-b.queue[p]:
				}
				for h(ctx, p, batch) != nil {
					if ctx.Err() != nil {
						return
					}
				}
				b.mu.Lock()
				for _, ev := range batch {
					b.journal = append(b.journal, "ack "+ev.ID)
				}
				b.mu.Unlock()
			}
		})
	}
	wg.Wait()
	return nil
}

func (b *memBus) ConsumeAlerts(ctx context.Context, group string, h bus.AlertHandler) error {
	<-ctx.Done()
	return nil
}

func (b *memBus) Partitions() int { return b.parts }
func (b *memBus) Close() error    { return nil }

func (b *memBus) snapshot() ([]string, []vigil.Alert) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.journal...), append([]vigil.Alert(nil), b.alerts...)
}

// fnDetector is a Detector made of a function.
type fnDetector struct {
	name string
	fn   func(ev *vigil.Event, emit func(vigil.Alert))
	tick func(now time.Time, emit func(vigil.Alert))
}

func (d *fnDetector) Name() string { return d.name }
func (d *fnDetector) Detect(_ context.Context, _ int, ev *vigil.Event, emit func(vigil.Alert)) {
	d.fn(ev, emit)
}

type tickDetector struct{ fnDetector }

func (d *tickDetector) Tick(_ context.Context, now time.Time, emit func(vigil.Alert)) {
	d.tick(now, emit)
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// onKind raises an alert of rule kind for every event of that kind.
func onKind(name, kind string) *fnDetector {
	return &fnDetector{name: name, fn: func(ev *vigil.Event, emit func(vigil.Alert)) {
		if ev.Kind == kind {
			emit(vigil.Alert{RuleID: kind, Tags: []string{"attack.t1110", "attack.credential_access"}})
		}
	}}
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				return m.GetHistogram().GetSampleSum()
			}
		}
	}
	return 0
}

func TestEvaluateFillsDefaults(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewStage(nil, []Detector{onKind("det", "auth")}, StageOptions{Clock: fixedClock{t0}, Registerer: reg})
	evs := []vigil.Event{
		{ID: "e1", DeviceID: "cam-1", Kind: "health", Time: t0.Add(-time.Second)},
		{ID: "e2", DeviceID: "cam-1", Kind: "auth", Time: t0.Add(-time.Second), Received: t0.Add(-150 * time.Millisecond)},
	}
	alerts := s.Evaluate(context.Background(), 0, evs)
	if len(alerts) != 1 {
		t.Fatalf("%d alerts, want 1", len(alerts))
	}
	a := alerts[0]
	if a.ID == "" || !a.Created.Equal(t0) || a.Detector != "det" || a.Count != 1 ||
		a.DedupKey != "det:auth:cam-1" || a.DeviceID != "cam-1" ||
		strings.Join(a.Techniques, ",") != "T1110" || strings.Join(a.EventIDs, ",") != "e2" ||
		!a.FirstEventTime.Equal(evs[1].Time) || !a.LastEventTime.Equal(evs[1].Time) {
		t.Errorf("defaults not filled: %+v", a)
	}
	if v := metricValue(t, reg, "vigil_detect_latency_seconds"); v < 0.149 || v > 0.151 {
		t.Errorf("latency sum %v, want 0.15", v)
	}
	if v := metricValue(t, reg, "vigil_detect_events_total"); v != 2 {
		t.Errorf("events_total %v, want 2", v)
	}
	if v := metricValue(t, reg, "vigil_detect_alerts_total", "detector", "det"); v != 1 {
		t.Errorf("alerts_total %v, want 1", v)
	}

	// Values the detector sets are kept.
	s = NewStage(nil, []Detector{&fnDetector{name: "det", fn: func(ev *vigil.Event, emit func(vigil.Alert)) {
		emit(vigil.Alert{ID: "a1", RuleID: "r", DedupKey: "k", Techniques: []string{"T0836"}, Tags: []string{"attack.t1110"}, Count: 3, DeviceID: "other"})
	}}}, StageOptions{Clock: fixedClock{t0}})
	a = s.Evaluate(context.Background(), 0, evs[:1])[0]
	if a.ID != "a1" || a.DedupKey != "k" || a.Techniques[0] != "T0836" || a.Count != 3 || a.DeviceID != "other" {
		t.Errorf("detector's values overwritten: %+v", a)
	}
}

// TestEvaluateSkipsRedelivered checks that an event id evaluated once in a
// partition is not evaluated again.
func TestEvaluateSkipsRedelivered(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := NewStage(nil, []Detector{onKind("det", "auth")}, StageOptions{Registerer: reg})
	evs := []vigil.Event{{ID: "e1", Kind: "auth"}, {ID: "e2", Kind: "auth"}, {Kind: "auth"}}
	if n := len(s.Evaluate(context.Background(), 0, evs)); n != 3 {
		t.Fatalf("%d alerts, want 3", n)
	}
	// Events without id cannot be recognised: evaluated again.
	if n := len(s.Evaluate(context.Background(), 0, evs)); n != 1 {
		t.Errorf("redelivery raised %d alerts, want 1", n)
	}
	// Another partition has its own memory.
	if n := len(s.Evaluate(context.Background(), 1, evs[:1])); n != 1 {
		t.Errorf("other partition raised %d alerts, want 1", n)
	}
	if v := metricValue(t, reg, "vigil_detect_duplicate_events_total"); v != 2 {
		t.Errorf("duplicates %v, want 2", v)
	}
	// The memory is bounded.
	for i := range dedupWindow + 10 {
		s.Evaluate(context.Background(), 2, []vigil.Event{{ID: fmt.Sprint(i)}})
	}
	if ps := s.part(2); len(ps.seen) != dedupWindow {
		t.Errorf("remembers %d ids, want %d", len(ps.seen), dedupWindow)
	}
	if n := len(s.Evaluate(context.Background(), 2, []vigil.Event{{ID: "0", Kind: "auth"}})); n != 1 {
		t.Errorf("a forgotten id was not evaluated")
	}
}

// TestPanicRecovered checks that a panicking detector is logged and
// counted and does not stop the others or the stage.
func TestPanicRecovered(t *testing.T) {
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	boom := &fnDetector{name: "boom", fn: func(ev *vigil.Event, emit func(vigil.Alert)) {
		emit(vigil.Alert{RuleID: "before-panic"})
		if ev.ID == "e2" {
			panic("rule r7: index out of range")
		}
	}}
	s := NewStage(nil, []Detector{boom, onKind("ok", "auth")}, StageOptions{
		Registerer: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	evs := []vigil.Event{{ID: "e1", Kind: "auth"}, {ID: "e2", Kind: "auth"}, {ID: "e3", Kind: "auth"}}
	alerts := s.Evaluate(context.Background(), 0, evs)
	if len(alerts) != 6 {
		t.Errorf("%d alerts, want 6 (each event: one per detector)", len(alerts))
	}
	if v := metricValue(t, reg, "vigil_detect_errors_total", "detector", "boom", "reason", "panic"); v != 1 {
		t.Errorf("panics counted %v, want 1", v)
	}
	for _, want := range []string{"component=detect", "detector=boom", "event=e2", "rule r7", "stack="} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestRunPublishesBeforeAck runs the stage on a bus and checks that every
// alert is published before the event that raised it is acknowledged,
// including when the bus refuses alerts for a while.
func TestRunPublishesBeforeAck(t *testing.T) {
	b := newMemBus(2)
	b.failAlerts = 2
	reg := prometheus.NewRegistry()
	s := NewStage(b, []Detector{onKind("det", "auth")}, StageOptions{Registerer: reg, RetryBackoff: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	var evs []vigil.Event
	for i := range 20 {
		kind := "health"
		if i%4 == 0 {
			kind = "auth"
		}
		evs = append(evs, vigil.Event{ID: fmt.Sprintf("e%02d", i), DeviceID: fmt.Sprintf("d%d", i%3), Kind: kind})
	}
	if err := b.PublishEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	for {
		journal, _ := b.snapshot()
		if strings.Count(strings.Join(journal, "\n"), "ack ") == len(evs) {
			break
		}
		select {
		case <-b.published:
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	journal, alerts := b.snapshot()
	if len(alerts) != 5 {
		t.Errorf("%d alerts published, want 5", len(alerts))
	}
	// An alert names the event that raised it; its ack must come after.
	pos := map[string]int{}
	for i, j := range journal {
		pos[j] = i
	}
	for _, a := range alerts {
		id := a.EventIDs[0]
		ack, ok := pos["ack "+id]
		if !ok {
			t.Errorf("event %s never acknowledged", id)
			continue
		}
		published, ok := pos["alert auth "+id]
		if !ok || published > ack {
			t.Errorf("event %s acknowledged before its alert was published:\n%s", id, strings.Join(journal, "\n"))
		}
	}
	if v := metricValue(t, reg, "vigil_detect_errors_total", "reason", "publish"); v != 2 {
		t.Errorf("publish errors %v, want 2", v)
	}
}

// TestHandleFailureRedelivers checks that when alerts cannot be published
// before the context ends, the handler fails (no ack) and the redelivered
// events are evaluated again rather than skipped as duplicates.
func TestHandleFailureRedelivers(t *testing.T) {
	b := newMemBus(1)
	b.failAlerts = 1 << 30
	s := NewStage(b, []Detector{onKind("det", "auth")}, StageOptions{RetryBackoff: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	evs := []vigil.Event{{ID: "e1", Kind: "auth"}}
	err := s.handle(ctx, 0, evs)
	if !errors.Is(err, bus.ErrBackpressure) {
		t.Fatalf("handle: %v, want the bus's error", err)
	}
	if n := len(s.Evaluate(context.Background(), 0, evs)); n != 1 {
		t.Errorf("redelivered event raised %d alerts, want 1", n)
	}
}

// TestTick checks that tickers get the clock's time and their alerts get
// defaults, and that Run publishes them.
func TestTick(t *testing.T) {
	var got time.Time
	td := &tickDetector{fnDetector{name: "silence",
		fn: func(*vigil.Event, func(vigil.Alert)) {},
		tick: func(now time.Time, emit func(vigil.Alert)) {
			got = now
			emit(vigil.Alert{RuleID: "device-silent", DeviceID: "cam-9"})
		}}}
	s := NewStage(nil, []Detector{td, onKind("det", "auth")}, StageOptions{Clock: fixedClock{t0}})
	alerts := s.Tick(context.Background())
	if !got.Equal(t0) || len(alerts) != 1 || alerts[0].DedupKey != "silence:device-silent:cam-9" ||
		alerts[0].Detector != "silence" || !alerts[0].Created.Equal(t0) || alerts[0].ID == "" {
		t.Fatalf("tick: now=%v alerts=%+v", got, alerts)
	}

	b := newMemBus(1)
	s = NewStage(b, []Detector{td}, StageOptions{TickInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	<-b.published
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, alerts := b.snapshot(); len(alerts) == 0 || alerts[0].RuleID != "device-silent" {
		t.Errorf("tick alerts not published: %+v", alerts)
	}
}

// TestTwoStagesShareMetrics checks that two stages can register on one
// registry.
func TestTwoStagesShareMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s1 := NewStage(nil, []Detector{onKind("det", "auth")}, StageOptions{Registerer: reg})
	s2 := NewStage(nil, []Detector{onKind("det", "auth")}, StageOptions{Registerer: reg})
	s1.Evaluate(context.Background(), 0, []vigil.Event{{Kind: "auth"}})
	s2.Evaluate(context.Background(), 0, []vigil.Event{{Kind: "auth"}})
	if v := metricValue(t, reg, "vigil_detect_alerts_total", "detector", "det"); v != 2 {
		t.Errorf("alerts_total %v, want 2", v)
	}
}

// TestEvaluateMarksReceiptAndReplay checks that an alert carries when its
// evidence was received, and that evidence received long after its own
// time (a replayed capture, a backfill) or marked replayed by its source
// makes the alert Replayed, with no receipt time to measure detection from.
func TestEvaluateMarksReceiptAndReplay(t *testing.T) {
	s := NewStage(nil, []Detector{onKind("det", "auth")}, StageOptions{Clock: fixedClock{t0}, ReplayAfter: 10 * time.Minute})
	f := func(ev vigil.Event, first time.Time, wantReceived time.Time, wantReplayed bool) {
		t.Helper()
		s.forget(0, []vigil.Event{ev})
		var a vigil.Alert
		if first.IsZero() {
			a = s.Evaluate(context.Background(), 0, []vigil.Event{ev})[0]
		} else {
			// A detector that saw earlier evidence sets FirstEventTime.
			st := NewStage(nil, []Detector{&fnDetector{name: "det", fn: func(ev *vigil.Event, emit func(vigil.Alert)) {
				emit(vigil.Alert{RuleID: "r", FirstEventTime: first, LastEventTime: ev.Time})
			}}}, StageOptions{Clock: fixedClock{t0}, ReplayAfter: 10 * time.Minute})
			a = st.Evaluate(context.Background(), 0, []vigil.Event{ev})[0]
		}
		if !a.FirstReceived.Equal(wantReceived) || a.Replayed != wantReplayed {
			t.Errorf("event %s: first_received %v replayed %v, want %v %v", ev.ID, a.FirstReceived, a.Replayed, wantReceived, wantReplayed)
		}
	}
	live := vigil.Event{ID: "live", DeviceID: "cam-1", Kind: "auth", Time: t0.Add(-time.Second), Received: t0.Add(-500 * time.Millisecond)}
	f(live, time.Time{}, live.Received, false)
	// Evidence over 2 minutes: the first of it came in 2 minutes earlier.
	f(live, live.Time.Add(-2*time.Minute), live.Received.Add(-2*time.Minute), false)
	// Delivered late but within the bound: live.
	late := live
	late.ID, late.Received = "late", live.Time.Add(9*time.Minute)
	f(late, time.Time{}, late.Received, false)
	// A capture of six years ago, replayed now.
	old := live
	old.ID, old.Time = "pcap", time.Date(2020, 5, 1, 8, 0, 0, 0, time.UTC)
	f(old, time.Time{}, time.Time{}, true)
	// A source that says it replays.
	marked := live
	marked.ID, marked.Fields = "marked", map[string]any{"event.replayed": true}
	f(marked, time.Time{}, time.Time{}, true)
	// No receipt time (an event that did not come through ingest): unknown.
	none := live
	none.ID, none.Received = "none", time.Time{}
	f(none, time.Time{}, time.Time{}, false)
}

type enrichDetector struct{ fnDetector }

func (d *enrichDetector) Enrich(_ context.Context, _ int, ev *vigil.Event) {
	if ev.Fields == nil {
		ev.Fields = map[string]any{}
	}
	ev.Fields["test.enriched"] = true
}

// TestEnricherRunsFirst checks that every enricher runs before every
// detector, whatever their order: a detector listed before the enricher
// sees its fields.
func TestEnricherRunsFirst(t *testing.T) {
	var seen []bool
	check := &fnDetector{name: "check", fn: func(ev *vigil.Event, emit func(vigil.Alert)) {
		_, ok := ev.Fields["test.enriched"]
		seen = append(seen, ok)
	}}
	en := &enrichDetector{fnDetector{name: "enricher", fn: func(*vigil.Event, func(vigil.Alert)) {}}}
	s := NewStage(nil, []Detector{check, en}, StageOptions{})
	s.Evaluate(context.Background(), 0, []vigil.Event{{ID: "a", Kind: "auth"}, {ID: "b", Kind: "auth"}})
	if len(seen) != 2 || !seen[0] || !seen[1] {
		t.Fatalf("the detector before the enricher saw its fields: %v, want [true true]", seen)
	}
}

// TestAlertIDOfAnEvent: an alert raised on an event has the same id
// each time that event is evaluated, on any node (a node that takes a
// partition over replays what the dead owner had not checkpointed, and
// the alert stage then knows the alert); different events, rules or
// alerts of one rule on one event get different ids.
func TestAlertIDOfAnEvent(t *testing.T) {
	twice := &fnDetector{name: "det", fn: func(ev *vigil.Event, emit func(vigil.Alert)) {
		emit(vigil.Alert{RuleID: "r1"})
		emit(vigil.Alert{RuleID: "r1"})
		emit(vigil.Alert{RuleID: "r2"})
	}}
	evs := []vigil.Event{
		{ID: "e1", DeviceID: "cam-1", Received: t0},
		{ID: "e2", DeviceID: "cam-1", Received: t0},
	}
	ids := func(clock time.Time) []string {
		s := NewStage(nil, []Detector{twice}, StageOptions{Clock: fixedClock{clock}})
		var out []string
		for _, a := range s.Evaluate(context.Background(), 0, evs) {
			out = append(out, a.ID)
		}
		return out
	}
	first, again := ids(t0), ids(t0.Add(time.Hour))
	if !slices.Equal(first, again) {
		t.Fatalf("ids differ when the events are evaluated again:\n%v\n%v", first, again)
	}
	seen := map[string]bool{}
	for _, id := range first {
		if seen[id] {
			t.Fatalf("id %s given twice in %v", id, first)
		}
		seen[id] = true
		if len(id) != 32 {
			t.Fatalf("id %q is not 32 hex digits like vigil.NewID", id)
		}
	}
	if len(first) != 6 {
		t.Fatalf("%d alerts, want 6", len(first))
	}
}
