package graph_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus/natsbus"
	"github.com/vigil-iot/vigil/graph"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/sqlite"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fleetEvents returns n events of a fleet of devices: logins from one
// address to every device, connections between neighbours.
func fleetEvents(n, devices int) []vigil.Event {
	evs := make([]vigil.Event, 0, n)
	attacker := netip.MustParseAddr("203.0.113.66")
	for i := range n {
		d := (i / 4) % devices // every device gets every kind
		at := t0.Add(time.Duration(i) * time.Millisecond)
		ev := vigil.Event{ID: fmt.Sprintf("e%06d", i), Time: at, DeviceID: fmt.Sprintf("dev-%03d", d)}
		switch i % 4 {
		case 0:
			ev.Kind, ev.Action, ev.Outcome = vigil.KindAuth, "login", vigil.OutcomeFailure
			ev.Network = &vigil.Network{SrcIP: attacker}
			ev.Fields = map[string]any{"user.name": "root"}
		case 1:
			ev.Kind, ev.Action = vigil.KindNetwork, "connect"
			ev.Network = &vigil.Network{Transport: "tcp", SrcIP: netip.AddrFrom4([4]byte{10, 0, 0, byte(d)}), DstIP: netip.AddrFrom4([4]byte{10, 0, 0, byte((d + 1) % devices)}), DstPort: 1883}
		case 2:
			ev.Kind = vigil.KindHealth
			ev.Fields = map[string]any{"host.cpu.pct": 12.5}
		case 3:
			ev.Kind, ev.Action = "mqtt", "publish"
			ev.Fields = map[string]any{"mqtt.topic": fmt.Sprintf("site/%03d/telemetry", d)}
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestStageOnEmbeddedBus(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := natsbus.Open(ctx, natsbus.Config{DataDir: t.TempDir(), Partitions: 4, FetchWait: 100 * time.Millisecond, Groups: []string{graph.Group}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st := openStore(t)
	s, err := graph.NewStage(b, st, graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n, devices = 2000, 10
	if err := b.PublishEvents(ctx, fleetEvents(n, devices)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	// Every fourth event is a failed login from the attacker to one of
	// the devices: n/4 in all, n/4/devices per device.
	deadline := time.Now().Add(30 * time.Second)
	for {
		rels, err := st.GraphRelations(ctx, store.GraphFilter{Keys: []string{"ip:203.0.113.66"}, Rels: []string{"logged_in_to"}})
		if err != nil {
			t.Fatal(err)
		}
		total := int64(0)
		for _, r := range rels {
			total += r.Count
		}
		if len(rels) == devices && total == n/4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %d logged_in_to relations, %d logins, want %d and %d", len(rels), total, devices, n/4)
		}
		time.Sleep(20 * time.Millisecond)
	}
	v, err := graph.Walk(ctx, st, graph.Query{Entity: "dev-003", Depth: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Roots) != 1 || v.Roots[0] != "device:dev-003" {
		t.Fatalf("roots %v", v.Roots)
	}
	// Depth 2 reaches, through the attacker's address, every other device.
	reached := 0
	for _, e := range v.Entities {
		if typ, _, _ := store.SplitEntityKey(e.Key); typ == store.EntityDevice {
			reached++
		}
	}
	if reached != devices {
		t.Errorf("depth 2 from dev-003 reaches %d devices, want %d", reached, devices)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
}

// TestWalk checks depth, since, limit and how an entity is named.
func TestWalk(t *testing.T) {
	ctx := t.Context()
	st := openStore(t)
	x := graph.DefaultExtractor()
	batch := graph.NewBatch()
	evs := fleetEvents(400, 10)
	for i := range evs {
		x.Add(batch, &evs[i])
	}
	if err := st.PutGraph(ctx, batch.Flush()); err != nil {
		t.Fatal(err)
	}
	f := func(q graph.Query, wantRels int, wantTrunc bool) graph.View {
		t.Helper()
		v, err := graph.Walk(ctx, st, q)
		if err != nil {
			t.Fatalf("Walk(%+v): %v", q, err)
		}
		if len(v.Relations) != wantRels || v.Truncated != wantTrunc {
			t.Fatalf("Walk(%+v): %d relations, truncated %v; want %d, %v", q, len(v.Relations), v.Truncated, wantRels, wantTrunc)
		}
		return v
	}
	// dev-001: failed_login_as root, logged_in_to from the attacker,
	// talked_to 10.0.0.2, published_to its topic.
	f(graph.Query{Entity: "device:dev-001"}, 4, false)
	f(graph.Query{Entity: "device:dev-001", Limit: 2}, 2, true)
	// Since after the last event: nothing.
	f(graph.Query{Entity: "device:dev-001", Since: t0.Add(time.Hour)}, 0, false)
	// The attacker's address by value alone.
	v := f(graph.Query{Entity: "203.0.113.66"}, 11, false)
	if v.Roots[0] != "ip:203.0.113.66" {
		t.Errorf("roots %v", v.Roots)
	}
	for q, code := range map[string]string{"": vigil.EINVALID, "nothing-here": vigil.ENOTFOUND, "ip:192.0.2.1": vigil.ENOTFOUND} {
		if _, err := graph.Walk(ctx, st, graph.Query{Entity: q}); vigil.ErrorCode(err) != code {
			t.Errorf("Walk(%q): %v, want %s", q, err, code)
		}
	}
	if _, err := graph.Walk(ctx, st, graph.Query{Entity: "dev-001", Depth: graph.MaxDepth + 1}); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("Walk too deep: %v, want EINVALID", err)
	}
}

// BenchmarkGraph measures the graph's cost per event: extraction and
// aggregation in memory, then one PutGraph per batch of 500 events into
// SQLite, on a fleet of 200 devices (ns/op is per event).
func BenchmarkGraph(b *testing.B) {
	st := openStore(b)
	x := graph.DefaultExtractor()
	evs := fleetEvents(100000, 200)
	batch := graph.NewBatch()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		x.Add(batch, &evs[i%len(evs)])
		if batch.Events() == 500 || i == b.N-1 {
			if err := st.PutGraph(context.Background(), batch.Flush()); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportCPU(b, cpu)
}

// reportCPU reports the CPU time per op since start: unlike ns/op, it
// does not grow when other processes load the machine.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkExtract measures extraction and aggregation alone (ns/op per
// event).
func BenchmarkExtract(b *testing.B) {
	x := graph.DefaultExtractor()
	evs := fleetEvents(100000, 200)
	batch := graph.NewBatch()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; i < b.N; i++ {
		x.Add(batch, &evs[i%len(evs)])
		if batch.Events() == 500 {
			batch.Flush()
		}
	}
	reportCPU(b, cpu)
}

func TestRetention(t *testing.T) {
	st := openStore(t)
	x := graph.DefaultExtractor()
	b := graph.NewBatch()
	evs := fleetEvents(40, 10) // t0 .. t0+39ms
	for i := range evs {
		x.Add(b, &evs[i])
	}
	if err := st.PutGraph(t.Context(), b.Flush()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	// Keep 20 ms before a clock at t0+40ms: what was last seen before t0+20ms goes.
	go func() {
		done <- graph.RunRetention(ctx, st, 20*time.Millisecond, time.Hour, fixedClock(t0.Add(40*time.Millisecond)), nil)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rels, err := st.GraphRelations(t.Context(), store.GraphFilter{Keys: []string{"ip:203.0.113.66"}})
		if err != nil {
			t.Fatal(err)
		}
		old := 0
		for _, r := range rels {
			if r.LastSeen.Before(t0.Add(20 * time.Millisecond)) {
				old++
			}
		}
		if old == 0 && len(rels) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %d relations last seen before the cut remain", old)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunRetention: %v", err)
	}
	if err := graph.RunRetention(t.Context(), st, 0, time.Hour, nil, nil); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("RunRetention without an age: %v", err)
	}
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// TestStageAcksEventsWithoutRelations checks that a batch that shows
// nothing (health samples, events without a time) is acknowledged too.
func TestStageAcksEventsWithoutRelations(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := natsbus.Open(ctx, natsbus.Config{DataDir: t.TempDir(), Partitions: 2, FetchWait: 100 * time.Millisecond, Groups: []string{graph.Group}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st := openStore(t)
	s, err := graph.NewStage(b, st, graph.Options{FlushEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	health := []vigil.Event{{ID: "h1", Time: t0, DeviceID: "d1", Kind: vigil.KindHealth}, {ID: "h2", Time: t0, DeviceID: "d2", Kind: vigil.KindHealth}}
	if err := b.PublishEvents(ctx, health); err != nil {
		t.Fatal(err)
	}
	login := vigil.Event{ID: "l1", Time: t0, DeviceID: "d1", Kind: vigil.KindAuth, Outcome: "success", Fields: map[string]any{"user.name": "root"}}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	if err := b.PublishEvents(ctx, []vigil.Event{login}); err != nil {
		t.Fatal(err)
	}
	// The login after the health samples shows: nothing blocked on them.
	deadline := time.Now().Add(20 * time.Second)
	for {
		rels, err := st.GraphRelations(ctx, store.GraphFilter{Keys: []string{"device:d1"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(rels) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the login after health samples never reached the graph")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v", err)
	}
}
