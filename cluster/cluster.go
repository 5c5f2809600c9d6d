package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/metrics"
)

// Defaults of Config.
const (
	DefaultTTL   = 6 * time.Second
	DefaultRenew = 1500 * time.Millisecond
)

// Bucket is the name of the key-value bucket of membership and leases
// (natsbus prefixes it: VIGIL_CLUSTER).
const Bucket = "CLUSTER"

// Config configures a Membership.
type Config struct {
	// KV is the bucket of heartbeats and leases; its TTL must be TTL.
	KV jetstream.KeyValue
	// Node names this node, unique in the cluster and stable across its
	// restarts (a restarted node takes its own leases back at once).
	Node string
	// TTL is how long a heartbeat or lease lives without renewal: the
	// time a dead node's partitions wait. DefaultTTL when zero.
	TTL time.Duration
	// Renew is the period of heartbeats and renewals; DefaultRenew when
	// zero. It must be less than TTL/2.
	Renew time.Duration
	// Clock gives the time of renewals; vigil.SystemClock when nil.
	Clock vigil.Clock
	// Logger receives the logs (component=cluster); discarded when nil.
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Membership is this node's membership of the cluster: it announces the
// node (Run) and takes the partitions the node should own (Own).
type Membership struct {
	kv    jetstream.KeyValue
	node  string
	ttl   time.Duration
	renew time.Duration
	clock vigil.Clock
	log   *slog.Logger

	mu     sync.Mutex
	seen   map[string]time.Time // node → when its last heartbeat arrived
	synced bool                 // the watch read the heartbeats present

	mMembers  prometheus.Gauge
	mOwned    *prometheus.GaugeVec
	mAcquired *prometheus.CounterVec
	mReleased *prometheus.CounterVec
}

// New returns the membership of cfg.Node. It does no I/O.
func New(cfg Config) (*Membership, error) {
	if cfg.KV == nil {
		return nil, vigil.Errorf(vigil.EINVALID, "cluster: no key-value bucket")
	}
	if cfg.Node == "" {
		return nil, vigil.Errorf(vigil.EINVALID, "cluster: no node name")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Renew <= 0 {
		cfg.Renew = DefaultRenew
	}
	if cfg.Renew*2 >= cfg.TTL {
		return nil, vigil.Errorf(vigil.EINVALID, "cluster: renew %s must be less than half the lease TTL %s", cfg.Renew, cfg.TTL)
	}
	if cfg.Clock == nil {
		cfg.Clock = vigil.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Membership{
		kv: cfg.KV, node: cfg.Node, ttl: cfg.TTL, renew: cfg.Renew, clock: cfg.Clock,
		log:  cfg.Logger.With("component", "cluster", "node", cfg.Node),
		seen: map[string]time.Time{},
		mMembers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_cluster_members", Help: "Live cluster nodes this node sees (itself included).",
		}),
		mOwned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_cluster_owned", Help: "Partitions of a resource this node owns and processes.",
		}, []string{"resource"}),
		mAcquired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_cluster_acquired_total", Help: "Partitions this node acquired.",
		}, []string{"resource"}),
		mReleased: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_cluster_released_total", Help: "Partitions this node gave up, by reason: rebalance (another node should own it), fenced (the lease could not be renewed), stop.",
		}, []string{"resource", "reason"}),
	}
	var err error
	if m.mMembers, err = metrics.Register(cfg.Registerer, m.mMembers); err != nil {
		return nil, err
	}
	if m.mOwned, err = metrics.Register(cfg.Registerer, m.mOwned); err != nil {
		return nil, err
	}
	if m.mAcquired, err = metrics.Register(cfg.Registerer, m.mAcquired); err != nil {
		return nil, err
	}
	if m.mReleased, err = metrics.Register(cfg.Registerer, m.mReleased); err != nil {
		return nil, err
	}
	return m, nil
}

// Node returns this node's name.
func (m *Membership) Node() string { return m.node }

// Run writes this node's heartbeat every Renew and watches the others'
// until ctx ends, then deletes its heartbeat so that the others rebalance
// at once. It returns nil when ctx ends.
func (m *Membership) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { m.watch(ctx) })
	defer wg.Wait()
	key := "m." + keyPart(m.node)
	t := time.NewTicker(m.renew)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, m.ttl/2)
		if _, err := m.kv.Put(rctx, key, []byte(m.node)); err != nil && ctx.Err() == nil {
			m.log.Warn("cannot write heartbeat", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), m.renew)
			_ = m.kv.Delete(dctx, key)
			cancel()
			return nil
		case <-t.C:
		}
	}
}

// watch follows the heartbeats: one watcher for the node's life, rather
// than a listing of the bucket (an ephemeral consumer, replicated) per
// look. An expired heartbeat sends no update, so a node counts as live
// while its last heartbeat arrived less than TTL ago.
func (m *Membership) watch(ctx context.Context) {
	for ctx.Err() == nil {
		w, err := m.kv.WatchFiltered(ctx, []string{"m.>"})
		if err != nil {
			m.log.Warn("cannot watch members; retrying", "err", err)
			if !sleep(ctx, m.renew) {
				return
			}
			continue
		}
		for e := range w.Updates() {
			if e == nil {
				m.mu.Lock()
				m.synced = true
				m.mu.Unlock()
				continue
			}
			node := string(e.Value())
			m.mu.Lock()
			if e.Operation() == jetstream.KeyValuePut && node != "" {
				m.seen[node] = m.clock.Now()
			} else {
				delete(m.seen, strings.TrimPrefix(e.Key(), "m."))
				for n := range m.seen {
					if "m."+keyPart(n) == e.Key() {
						delete(m.seen, n)
					}
				}
			}
			m.mu.Unlock()
		}
		_ = w.Stop()
		// The channel closed: the watcher ended (ctx, or the connection).
		if !sleep(ctx, m.renew/4) {
			return
		}
	}
}

// Members returns the live nodes: this one and every node whose
// heartbeat arrived less than TTL ago, sorted. It fails until the watch
// of Run has read the heartbeats present.
func (m *Membership) Members(ctx context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.synced {
		return nil, fmt.Errorf("cannot list cluster members: not read yet")
	}
	now := m.clock.Now()
	out := []string{m.node}
	for n, at := range m.seen {
		if now.Sub(at) < m.ttl && n != m.node {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	m.mMembers.Set(float64(len(out)))
	return out, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Owner returns the node that should own partition p of resource among
// members (rendezvous hashing), "" when members is empty.
func Owner(members []string, resource string, p int) string {
	best, bestW := "", uint64(0)
	for _, n := range members {
		w := weight(n, resource, p)
		if best == "" || w > bestW || (w == bestW && n < best) {
			best, bestW = n, w
		}
	}
	return best
}

// weight is the rendezvous weight of a node for a partition: FNV-1a of
// the three, mixed by SplitMix64's finalizer so that similar names spread.
func weight(node, resource string, p int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(node))
	h.Write([]byte{0})
	h.Write([]byte(resource))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, int64(p), 10))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// lease is a partition this node holds.
type lease struct {
	rev      uint64
	renewed  time.Time     // start of the last successful create or renewal
	cancel   func()        // ends the run call
	done     chan struct{} // closed when run returned
	stopping string        // why run was cancelled; "" while it runs
	lost     bool          // the key is no longer ours: do not delete it
}

// Own processes the partitions 0..n-1 of resource that this node should
// own until ctx ends: for each partition it acquires, it calls run in a
// goroutine with a context that ends when the partition must be given
// up (another node should own it, the lease could not be renewed in time,
// or ctx ended), and releases the lease once run returned. run must
// return promptly when its context ends. Own returns nil when ctx ends,
// after every run call returned.
//
// Membership.Run must be running for the other nodes to see this one.
func (m *Membership) Own(ctx context.Context, resource string, n int, run func(ctx context.Context, p int)) error {
	if n <= 0 {
		return vigil.Errorf(vigil.EINVALID, "cluster: resource %s has no partitions", resource)
	}
	log := m.log.With("resource", resource)
	owned := m.mOwned.WithLabelValues(resource)
	held := map[int]*lease{}
	key := func(p int) string { return "l." + keyPart(resource) + "." + strconv.Itoa(p) }
	value := []byte(m.node)

	stop := func(p int, l *lease, reason string) {
		if l.stopping != "" {
			return
		}
		l.stopping = reason
		l.cancel()
		m.mReleased.WithLabelValues(resource, reason).Inc()
		log.Info("giving up partition", "partition", p, "reason", reason)
	}
	acquire := func(p int) {
		k := key(p)
		start := m.clock.Now()
		rctx, cancel := context.WithTimeout(ctx, m.renew)
		defer cancel()
		rev, err := m.kv.Create(rctx, k, value)
		if errors.Is(err, jetstream.ErrKeyExists) {
			// Ours from an earlier life of this node (same name): take it
			// back on its revision rather than wait for it to expire.
			e, gerr := m.kv.Get(rctx, k)
			if gerr != nil || string(e.Value()) != m.node {
				return
			}
			rev, err = m.kv.Update(rctx, k, value, e.Revision())
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Debug("cannot acquire partition", "partition", p, "err", err)
			}
			return
		}
		rctx2, cancel2 := context.WithCancel(ctx)
		l := &lease{rev: rev, renewed: start, cancel: cancel2, done: make(chan struct{})}
		held[p] = l
		owned.Inc()
		m.mAcquired.WithLabelValues(resource).Inc()
		log.Info("acquired partition", "partition", p)
		go func() {
			defer close(l.done)
			run(rctx2, p)
		}()
	}
	renew := func(p int, l *lease) {
		start := m.clock.Now()
		// A slow server (a loaded machine, a NATS election) gets until
		// the lease would be fenced, not one renewal period.
		rctx, cancel := context.WithTimeout(ctx, max(l.renewed.Add(m.ttl-m.renew).Sub(start), m.renew/2))
		rev, err := m.kv.Update(rctx, key(p), value, l.rev)
		cancel()
		if err == nil {
			l.rev, l.renewed = rev, start
			return
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyNotFound) {
			// Wrong revision: the lease expired and was taken, or deleted.
			l.lost = true
			stop(p, l, "fenced")
			log.Warn("lease lost", "partition", p, "err", err)
			return
		}
		if ctx.Err() == nil {
			log.Warn("cannot renew lease", "partition", p, "err", err)
		}
	}
	release := func(p int, l *lease) {
		delete(held, p)
		owned.Dec()
		if l.lost {
			return
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.renew)
		defer cancel()
		if err := m.kv.Delete(dctx, key(p), jetstream.LastRevision(l.rev)); err != nil {
			log.Debug("cannot delete lease; it will expire", "partition", p, "err", err)
		}
	}

	tick := min(m.renew/3, 500*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	lastMembers := time.Time{}
	var members []string
	for {
		if ctx.Err() != nil {
			for p, l := range held {
				stop(p, l, "stop")
			}
			for p, l := range held {
				<-l.done
				release(p, l)
			}
			return nil
		}
		now := m.clock.Now()
		if now.Sub(lastMembers) >= m.renew/2 || members == nil {
			rctx, cancel := context.WithTimeout(ctx, m.renew)
			ms, err := m.Members(rctx)
			cancel()
			if err == nil {
				members, lastMembers = ms, now
			} else if ctx.Err() == nil {
				log.Warn("cannot read members", "err", err)
			}
		}
		// Renewals run concurrently: one slow answer must not hold the
		// others back past their fencing deadline.
		var wg sync.WaitGroup
		for p, l := range held {
			select {
			case <-l.done:
				if l.stopping == "" { // run returned by itself
					l.stopping = "returned"
				}
				release(p, l)
				continue
			default:
			}
			if !l.lost && now.Sub(l.renewed) >= m.renew {
				wg.Go(func() { renew(p, l) })
			}
		}
		wg.Wait()
		for p, l := range held {
			switch {
			case l.lost:
			case m.clock.Now().Sub(l.renewed) > m.ttl-m.renew:
				stop(p, l, "fenced")
			case members != nil && Owner(members, resource, p) != m.node:
				stop(p, l, "rebalance")
			}
		}
		if members != nil {
			for p := range n {
				if _, ok := held[p]; !ok && Owner(members, resource, p) == m.node {
					acquire(p)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// keyPart makes s usable in a key: letters, digits, '-' and '_' are kept,
// anything else becomes '_'.
func keyPart(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}
