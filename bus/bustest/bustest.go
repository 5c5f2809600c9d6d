// Package bustest is the conformance suite of bus.Bus: every implementation
// runs Run against each of its backends (natsbus: embedded and external).
// It checks the contract of bus.Bus as written there: per-partition order,
// every group sees every event, redelivery after a handler error,
// back-pressure when the bus is full, durability across a restart, and a
// restarted group resuming where it acknowledged.
//
// It must not depend on any implementation: harnesses adapt their own
// configuration to Config.
package bustest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
)

// Config is what a test asks of a harness.
type Config struct {
	// Name identifies the bus's storage within one test: a bus opened
	// again with the same Name (after Close) finds what was stored.
	Name string
	// Groups are the event consumer groups the test uses. Events
	// published before a group first consumes must be kept for it, and
	// once every group acknowledged an event its room must be freed.
	Groups []string
	// Tiny asks for a bus that holds only tens of kilobytes of events, so
	// that a few publishes fill it.
	Tiny bool
}

// Open opens a bus for t. The harness closes it when t ends (Close must
// be idempotent: tests close some buses themselves) and removes its
// storage.
type Open func(t *testing.T, cfg Config) bus.Bus

// waitLimit guards against hangs only; no assertion depends on time.
const waitLimit = 60 * time.Second

// Run runs the suite.
func Run(t *testing.T, open Open) {
	t.Run("Order", func(t *testing.T) { testOrder(t, open) })
	t.Run("EveryGroup", func(t *testing.T) { testEveryGroup(t, open) })
	t.Run("Redelivery", func(t *testing.T) { testRedelivery(t, open) })
	t.Run("Backpressure", func(t *testing.T) { testBackpressure(t, open) })
	t.Run("Durability", func(t *testing.T) { testDurability(t, open) })
	t.Run("Resume", func(t *testing.T) { testResume(t, open) })
	t.Run("Alerts", func(t *testing.T) { testAlerts(t, open) })
	t.Run("Invalid", func(t *testing.T) { testInvalid(t, open) })
}

// Events returns n events over devices devices, with event i carrying
// "seq" = i and a per-device "dseq" counting that device's events from
// first. Every field of vigil.Event is set so that a round trip is checked.
func Events(run string, first, n, devices int) []vigil.Event {
	base := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	events := make([]vigil.Event, n)
	for k := range events {
		i := first + k
		events[k] = vigil.Event{
			ID:       fmt.Sprintf("%s-%08d", run, i),
			Time:     base.Add(time.Duration(i)*time.Millisecond + 7),
			Received: base.Add(time.Duration(i)*time.Millisecond + 3*time.Millisecond),
			DeviceID: fmt.Sprintf("dev-%03d", i%devices),
			Source:   "bustest",
			Kind:     vigil.KindAuth,
			Category: "authentication",
			Action:   "login",
			Outcome:  vigil.OutcomeFailure,
			Severity: vigil.SeverityMedium,
			Network: &vigil.Network{
				Transport: "tcp",
				SrcIP:     netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}),
				SrcPort:   uint16(40000 + i%20000),
				DstIP:     netip.MustParseAddr("2001:db8::1"),
				DstPort:   22,
			},
			Fields: map[string]any{
				"seq":       float64(i),
				"dseq":      float64(i / devices),
				"user.name": "admin",
				"tls":       i%2 == 0,
				"tags":      []string{"a", "b"},
				"padding":   "the quick brown fox jumps over the lazy dog, twice over: the quick brown fox",
			},
		}
	}
	return events
}

// collector records what a group's handler receives.
type collector struct {
	t          *testing.T
	partitions int
	mu         sync.Mutex
	byID       map[string]int           // deliveries per event id, successful calls only
	byDevice   map[string][]float64     // dseq in delivery order, successful calls only
	events     map[string]vigil.Event   // the last delivered copy
	active     []atomic.Int32           // handler calls in progress per partition
	fail       func(partition int) bool // whether to fail this call
	failed     int
	notify     chan struct{}
}

func newCollector(t *testing.T, partitions int) *collector {
	return &collector{
		t: t, partitions: partitions,
		byID:     map[string]int{},
		byDevice: map[string][]float64{},
		events:   map[string]vigil.Event{},
		active:   make([]atomic.Int32, partitions),
		notify:   make(chan struct{}, 1),
	}
}

func (c *collector) handle(_ context.Context, p int, events []vigil.Event) error {
	if p < 0 || p >= c.partitions {
		c.t.Errorf("handler called with partition %d of %d", p, c.partitions)
		return nil
	}
	if n := c.active[p].Add(1); n != 1 {
		c.t.Errorf("handler called concurrently for partition %d", p)
	}
	defer c.active[p].Add(-1)
	if len(events) == 0 {
		c.t.Errorf("handler called with no events")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil && c.fail(p) {
		c.failed++
		return errors.New("bustest: handler failure on purpose")
	}
	for _, e := range events {
		if got := bus.Partition(e.DeviceID, c.partitions); got != p {
			c.t.Errorf("event %s of device %s delivered on partition %d, want %d", e.ID, e.DeviceID, p, got)
		}
		c.byID[e.ID]++
		d, _ := e.Fields["dseq"].(float64)
		c.byDevice[e.DeviceID] = append(c.byDevice[e.DeviceID], d)
		c.events[e.ID] = e
	}
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return nil
}

// count returns the number of distinct events received.
func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byID)
}

// waitFor waits until n distinct events were received.
func (c *collector) waitFor(n int) {
	c.t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for c.count() < n {
		select {
		case <-c.notify:
		case <-deadline.C:
			c.t.Fatalf("received %d distinct events after %s, want %d", c.count(), waitLimit, n)
		}
	}
}

// waitForAll waits until every event of want was received.
func (c *collector) waitForAll(want []vigil.Event) {
	c.t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	missing := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		n := 0
		for _, e := range want {
			if c.byID[e.ID] == 0 {
				n++
			}
		}
		return n
	}
	for {
		n := missing()
		if n == 0 {
			return
		}
		select {
		case <-c.notify:
		case <-deadline.C:
			c.t.Fatalf("%d of %d events not received after %s", n, len(want), waitLimit)
		}
	}
}

// checkExactlyInOrder checks that want were received, each exactly once,
// each device's events in publish order.
func (c *collector) checkExactlyInOrder(want []vigil.Event) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byID) != len(want) {
		c.t.Errorf("received %d distinct events, want %d", len(c.byID), len(want))
	}
	perDevice := map[string][]float64{}
	for _, e := range want {
		if n := c.byID[e.ID]; n != 1 {
			c.t.Errorf("event %s delivered %d times, want once", e.ID, n)
		}
		perDevice[e.DeviceID] = append(perDevice[e.DeviceID], e.Fields["dseq"].(float64))
	}
	for dev, seq := range perDevice {
		if got := c.byDevice[dev]; !slices.Equal(got, seq) {
			c.t.Errorf("device %s: events in order %v, want %v", dev, got, seq)
		}
	}
}

// consume runs ConsumeEvents in the background; stop cancels it and waits
// for it to return nil.
func consume(t *testing.T, b bus.Bus, group string, h bus.EventHandler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.ConsumeEvents(ctx, group, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("ConsumeEvents(%s) returned %v after cancel, want nil", group, err)
				}
			case <-time.After(waitLimit):
				t.Errorf("ConsumeEvents(%s) did not return %s after cancel", group, waitLimit)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func publish(t *testing.T, b bus.Bus, events []vigil.Event, batch int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for i := 0; i < len(events); i += batch {
		if err := b.PublishEvents(ctx, events[i:min(i+batch, len(events))]); err != nil {
			t.Fatalf("PublishEvents: %v", err)
		}
	}
}

func testOrder(t *testing.T, open Open) {
	b := open(t, Config{Name: "order", Groups: []string{"g"}})
	events := Events("order", 0, 3000, 37)
	// Several publishers at once, each owning some devices, so that
	// batches of different devices interleave on the partitions.
	// Small and large batches, so that an implementation that merges
	// concurrent publishes is exercised too.
	var wg sync.WaitGroup
	for w := range 8 {
		var mine []vigil.Event
		for _, e := range events {
			if bus.Partition(e.DeviceID, 8) == w {
				mine = append(mine, e)
			}
		}
		wg.Go(func() { publish(t, b, mine, []int{1, 3, 97, 7}[w%4]) })
	}
	wg.Wait()
	c := newCollector(t, b.Partitions())
	consume(t, b, "g", c.handle)
	c.waitFor(len(events))
	c.checkExactlyInOrder(events)
	// Every field survives the bus.
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, want := range events[:50] {
		got := c.events[want.ID]
		if !got.Time.Equal(want.Time) || !got.Received.Equal(want.Received) {
			t.Errorf("event %s: times %v, %v, want %v, %v", want.ID, got.Time, got.Received, want.Time, want.Received)
		}
		got.Time, got.Received, want.Time, want.Received = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("event %s:\n got %+v\nwant %+v", want.ID, got, want)
		}
	}
}

func testEveryGroup(t *testing.T, open Open) {
	b := open(t, Config{Name: "groups", Groups: []string{"store", "detect"}})
	events := Events("groups", 0, 2000, 20)
	publish(t, b, events[:1000], 250)
	cs, cd := newCollector(t, b.Partitions()), newCollector(t, b.Partitions())
	consume(t, b, "store", cs.handle)
	consume(t, b, "detect", cd.handle)
	publish(t, b, events[1000:], 250) // while they consume
	cs.waitFor(len(events))
	cd.waitFor(len(events))
	cs.checkExactlyInOrder(events)
	cd.checkExactlyInOrder(events)
}

func testRedelivery(t *testing.T, open Open) {
	b := open(t, Config{Name: "redelivery", Groups: []string{"g"}})
	events := Events("redelivery", 0, 1200, 12)
	publish(t, b, events[:400], 50)
	c := newCollector(t, b.Partitions())
	// Fail the first two calls of every partition, while newer events
	// keep arriving: they must not overtake the failed batch. (Not later
	// calls: on a loaded machine a partition may get all its events in
	// one call.)
	calls := make([]int, b.Partitions())
	c.fail = func(p int) bool {
		calls[p]++
		return calls[p] <= 2
	}
	consume(t, b, "g", c.handle)
	publish(t, b, events[400:], 20)
	c.waitFor(len(events))
	c.checkExactlyInOrder(events)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed == 0 {
		t.Error("the handler never failed")
	}
}

func testBackpressure(t *testing.T, open Open) {
	b := open(t, Config{Name: "full", Groups: []string{"g"}, Tiny: true})
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var accepted []vigil.Event
	full := false
	for i := 0; i < 200 && !full; i++ {
		batch := Events("full", i*100, 100, 10)
		err := b.PublishEvents(ctx, batch)
		switch {
		case err == nil:
			accepted = append(accepted, batch...)
		case errors.Is(err, bus.ErrBackpressure):
			full = true
		default:
			t.Fatalf("PublishEvents on a full bus: %v, want an error matching bus.ErrBackpressure", err)
		}
	}
	if !full {
		t.Fatalf("published %d events on a tiny bus without back-pressure", len(accepted))
	}
	if len(accepted) == 0 {
		t.Fatal("the tiny bus took no event at all")
	}
	// Once the group has consumed what was accepted, there is room again.
	// (Events of the refused batch may be delivered too: a refused batch
	// is not assumed stored, but some of it may have been.)
	c := newCollector(t, b.Partitions())
	stop := consume(t, b, "g", c.handle)
	c.waitForAll(accepted)
	stop()
	deadline := time.Now().Add(waitLimit)
	for {
		err := b.PublishEvents(ctx, Events("full-after", 0, 100, 10))
		if err == nil {
			break
		}
		if !errors.Is(err, bus.ErrBackpressure) || time.Now().After(deadline) {
			t.Fatalf("PublishEvents after the group caught up: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // room is freed asynchronously
	}
}

func testDurability(t *testing.T, open Open) {
	cfg := Config{Name: "durable", Groups: []string{"g"}}
	b := open(t, cfg)
	events := Events("durable", 0, 1500, 25)
	publish(t, b, events, 300)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	b = open(t, cfg)
	c := newCollector(t, b.Partitions())
	consume(t, b, "g", c.handle)
	c.waitFor(len(events))
	c.checkExactlyInOrder(events)
}

func testResume(t *testing.T, open Open) {
	cfg := Config{Name: "resume", Groups: []string{"g"}}
	b := open(t, cfg)
	first := Events("resume", 0, 800, 16)
	publish(t, b, first, 100)
	c := newCollector(t, b.Partitions())
	stop := consume(t, b, "g", c.handle)
	c.waitFor(len(first))
	stop()
	c.checkExactlyInOrder(first)

	// The same group restarted on the same bus sees only what is new.
	second := Events("resume", 800, 400, 16)
	publish(t, b, second, 100)
	c2 := newCollector(t, b.Partitions())
	stop = consume(t, b, "g", c2.handle)
	c2.waitFor(len(second))
	stop()
	c2.checkExactlyInOrder(second)

	// And after a restart of the bus too.
	third := Events("resume", 1200, 400, 16)
	publish(t, b, third, 100)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	b = open(t, cfg)
	c3 := newCollector(t, b.Partitions())
	stop = consume(t, b, "g", c3.handle)
	c3.waitFor(len(third))
	stop()
	c3.checkExactlyInOrder(third)
}

func testAlerts(t *testing.T, open Open) {
	b := open(t, Config{Name: "alerts"})
	base := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	alerts := make([]vigil.Alert, 300)
	for i := range alerts {
		alerts[i] = vigil.Alert{
			ID: fmt.Sprintf("alert-%04d", i), DedupKey: fmt.Sprintf("k%d", i%7),
			Detector: "threshold", RuleID: "ssh-bruteforce", Title: "SSH brute force",
			Severity: vigil.SeverityHigh, Tags: []string{"attack.t1110"}, Techniques: []string{"T1110"},
			DeviceID: "cam-1", Entities: []string{"ip:10.0.0.7"}, EventIDs: []string{"e1", "e2"},
			FirstEventTime: base, LastEventTime: base.Add(time.Second), Created: base.Add(2 * time.Second),
			Count: 1, Fields: map[string]any{"n": 5.0},
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for i := 0; i < len(alerts); i += 60 {
		if err := b.PublishAlerts(ctx, alerts[i:i+60]); err != nil {
			t.Fatalf("PublishAlerts: %v", err)
		}
	}
	for _, group := range []string{"incident", "store"} {
		var mu sync.Mutex
		var got []vigil.Alert
		done := make(chan struct{})
		gctx, gcancel := context.WithCancel(ctx)
		ret := make(chan error, 1)
		go func() {
			ret <- b.ConsumeAlerts(gctx, group, func(_ context.Context, as []vigil.Alert) error {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, as...)
				if len(got) == len(alerts) {
					close(done)
				}
				return nil
			})
		}()
		select {
		case <-done:
		case <-time.After(waitLimit):
			t.Fatalf("group %s: alerts not delivered after %s", group, waitLimit)
		}
		gcancel()
		if err := <-ret; err != nil {
			t.Errorf("ConsumeAlerts returned %v after cancel, want nil", err)
		}
		mu.Lock()
		for i := range alerts {
			if !reflect.DeepEqual(got[i], alerts[i]) {
				t.Errorf("group %s: alert %d:\n got %+v\nwant %+v", group, i, got[i], alerts[i])
				break
			}
		}
		mu.Unlock()
	}
}

func testInvalid(t *testing.T, open Open) {
	b := open(t, Config{Name: "invalid"})
	ctx := context.Background()
	if err := b.PublishEvents(ctx, nil); err != nil {
		t.Errorf("PublishEvents(nil): %v", err)
	}
	if err := b.ConsumeEvents(ctx, "bad group.name", func(context.Context, int, []vigil.Event) error { return nil }); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("ConsumeEvents with a bad group name: %v, want an EINVALID error", err)
	}
	// An event too large for the bus is refused as invalid, whole batch.
	big := Events("invalid", 0, 2, 1)
	big[1].Fields["blob"] = string(make([]byte, 64<<20))
	if err := b.PublishEvents(ctx, big); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("PublishEvents with a 64 MiB event: %v, want an EINVALID error", err)
	}
	if b.Partitions() < 1 {
		t.Errorf("Partitions() = %d", b.Partitions())
	}
}
