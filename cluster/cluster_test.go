package cluster_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/bus/natsbus"
	"github.com/vigil-iot/vigil/bus/natsbus/natstest"
	"github.com/vigil-iot/vigil/cluster"
)

func TestOwnerBalanced(t *testing.T) {
	members := []string{"a", "b", "c"}
	count := map[string]int{}
	for p := range 300 {
		count[cluster.Owner(members, "detect", p)]++
	}
	for _, n := range members {
		if count[n] < 70 || count[n] > 130 {
			t.Errorf("node %s owns %d of 300 partitions: %v", n, count[n], count)
		}
	}
	// Removing a node moves only its partitions.
	for p := range 300 {
		before := cluster.Owner(members, "detect", p)
		after := cluster.Owner([]string{"a", "b"}, "detect", p)
		if before != "c" && before != after {
			t.Fatalf("partition %d moved from %s to %s when c left", p, before, after)
		}
	}
	if got := cluster.Owner(nil, "detect", 0); got != "" {
		t.Errorf("owner among no members = %q", got)
	}
}

// tracker records who runs which partition and fails the test when two
// nodes run one partition at once.
type tracker struct {
	t     *testing.T
	mu    sync.Mutex
	owner map[int]string
}

func (tr *tracker) run(node string) func(ctx context.Context, p int) {
	return func(ctx context.Context, p int) {
		tr.mu.Lock()
		if o, ok := tr.owner[p]; ok {
			tr.t.Errorf("partition %d run by %s while %s runs it", p, node, o)
		}
		tr.owner[p] = node
		tr.mu.Unlock()
		<-ctx.Done()
		tr.mu.Lock()
		delete(tr.owner, p)
		tr.mu.Unlock()
	}
}

func (tr *tracker) snapshot() map[int]string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := map[int]string{}
	for p, n := range tr.owner {
		out[p] = n
	}
	return out
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLeases runs three nodes, each with its own NATS connection, over
// eight partitions: every partition gets exactly one owner, a node that
// stops hands its partitions over, and a node whose connection dies is
// fenced before the survivors take its partitions.
func TestLeases(t *testing.T) {
	url := natstest.URL(t)
	prefix := natstest.UniquePrefix(t, url)
	const parts = 8
	ttl, renew := 3*time.Second, 600*time.Millisecond
	tr := &tracker{t: t, owner: map[int]string{}}

	type node struct {
		name   string
		bus    *natsbus.Bus
		cancel func()
		done   chan struct{}
	}
	start := func(name string) *node {
		ctx, cancel := context.WithCancel(context.Background())
		b, err := natsbus.Open(ctx, natsbus.Config{URL: url, Prefix: prefix, Partitions: parts})
		if err != nil {
			t.Fatal(err)
		}
		kv, err := b.KeyValue(ctx, cluster.Bucket, ttl)
		if err != nil {
			t.Fatal(err)
		}
		m, err := cluster.New(cluster.Config{KV: kv, Node: name, TTL: ttl, Renew: renew})
		if err != nil {
			t.Fatal(err)
		}
		n := &node{name: name, bus: b, cancel: cancel, done: make(chan struct{})}
		var wg sync.WaitGroup
		wg.Go(func() { m.Run(ctx) })
		wg.Go(func() {
			if err := m.Own(ctx, "detect", parts, tr.run(name)); err != nil {
				t.Error(err)
			}
		})
		go func() { wg.Wait(); close(n.done) }()
		t.Cleanup(func() { cancel(); <-n.done; b.Close() })
		return n
	}
	owners := func() map[string]int {
		c := map[string]int{}
		for _, n := range tr.snapshot() {
			c[n]++
		}
		return c
	}
	all := func(names ...string) func() bool {
		return func() bool {
			snap := tr.snapshot()
			if len(snap) != parts {
				return false
			}
			c := owners()
			for _, n := range names {
				if c[n] == 0 {
					return false
				}
			}
			return len(c) == len(names)
		}
	}

	start("node-a")
	waitFor(t, "node-a to own every partition", 20*time.Second, all("node-a"))
	b := start("node-b")
	c := start("node-c")
	waitFor(t, "three nodes to share the partitions", 30*time.Second, all("node-a", "node-b", "node-c"))
	t.Logf("three nodes: %v", owners())

	// A node that stops releases its leases at once.
	c.cancel()
	<-c.done
	waitFor(t, "node-c's partitions to move", 30*time.Second, all("node-a", "node-b"))

	// A node whose connection dies cannot renew: it stops its workers
	// (fenced) before the lease expires and the survivor takes over.
	b.bus.Close()
	killed := time.Now()
	waitFor(t, "node-a to own every partition after node-b lost NATS", 30*time.Second, all("node-a"))
	t.Logf("failover after losing NATS: %s (TTL %s)", time.Since(killed).Round(10*time.Millisecond), ttl)
}
