package graph

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
	"github.com/vigil-iot/vigil/store"
)

// Group is the bus consumer group of the graph stage.
const Group = "graph"

// Options configures a Stage. The zero value is usable.
type Options struct {
	// Group is the consumer group (default Group).
	Group string
	// Extractor finds entities and relations (default DefaultExtractor).
	Extractor *Extractor
	// FlushEvery is how often what the partitions delivered is merged
	// into the store, in one PutGraph for all of them (default 500ms).
	FlushEvery time.Duration
	// MaxPending flushes at once when the pending relations reach it
	// (default 50,000).
	MaxPending int
	// Logger receives the stage's logs (component=graph is added).
	Logger *slog.Logger
	// Registerer receives the stage's metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// Stage consumes events and merges what they show into the graph.
type Stage struct {
	bus   bus.Bus
	store store.Graph
	x     *Extractor
	group string
	log   *slog.Logger
	every time.Duration
	max   int

	mu   sync.Mutex
	cur  *pending      // what the next flush writes
	kick chan struct{} // asks for a flush before the period

	events    prometheus.Counter
	relations prometheus.Counter
}

// NewStage returns the graph stage on b writing to s.
func NewStage(b bus.Bus, s store.Graph, opts Options) (*Stage, error) {
	if b == nil || s == nil {
		return nil, fmt.Errorf("cannot create graph stage: no bus or no store")
	}
	if opts.Group == "" {
		opts.Group = Group
	}
	if opts.Extractor == nil {
		opts.Extractor = DefaultExtractor()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = 500 * time.Millisecond
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 50000
	}
	st := &Stage{bus: b, store: s, x: opts.Extractor, group: opts.Group, log: opts.Logger.With("component", "graph"),
		every: opts.FlushEvery, max: opts.MaxPending, cur: newPending(), kick: make(chan struct{}, 1)}
	st.events = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "vigil", Subsystem: "graph", Name: "events_total",
		Help: "Events read by the graph stage.",
	})
	st.relations = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "vigil", Subsystem: "graph", Name: "relations_written_total",
		Help: "Relations merged into the graph (one per relation and batch).",
	})
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{st.events, st.relations} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("cannot register graph metrics: %w", err)
			}
		}
	}
	return st, nil
}

// pending is what the partitions delivered since the last flush, and the
// outcome of the flush that writes it.
type pending struct {
	b       *Batch
	waiters int           // handlers waiting for it
	done    chan struct{} // closed when written (or failed)
	err     error
}

func newPending() *pending { return &pending{b: NewBatch(), done: make(chan struct{})} }

// Run consumes the bus until ctx ends (nil) or the bus fails.
//
// Writes are grouped: each partition's delivered batch is aggregated into
// one in-memory batch shared by all partitions, which one PutGraph merges
// into the store every FlushEvery (sooner when MaxPending relations
// wait). A delivered batch is acknowledged only after the flush that
// holds it returned, so an acknowledged event is in the graph; when the
// flush fails, every batch it held is handed again. A flush the store
// rejects as invalid is logged and its batches acknowledged (no retry can
// fix it). One transaction per period for all partitions costs the
// store's single writer far less than one per delivered batch.
func (st *Stage) Run(ctx context.Context) error {
	st.log.Info("graph stage started", "group", st.group, "flush_every", st.every)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		st.flushLoop(ctx)
	}()
	err := st.bus.ConsumeEvents(ctx, st.group, func(ctx context.Context, partition int, events []vigil.Event) error {
		st.mu.Lock()
		p := st.cur
		p.waiters++
		for i := range events {
			st.x.Add(p.b, &events[i])
		}
		full := p.b.Len() >= st.max
		st.mu.Unlock()
		st.events.Add(float64(len(events)))
		if full {
			select {
			case st.kick <- struct{}{}:
			default:
			}
		}
		select {
		case <-p.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if p.err != nil {
			return fmt.Errorf("cannot merge the graph of %d events of partition %d: %w", len(events), partition, p.err)
		}
		return nil
	})
	cancel()
	<-flushed
	if err != nil {
		return fmt.Errorf("cannot consume events for the graph: %w", err)
	}
	return nil
}

// flushLoop writes the pending batch every period, or when kicked, until
// ctx ends.
func (st *Stage) flushLoop(ctx context.Context) {
	t := time.NewTicker(st.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// Handlers waiting return with ctx: their batches are handed
			// again to the next consumer.
			return
		case <-t.C:
		case <-st.kick:
		}
		st.mu.Lock()
		p := st.cur
		if p.waiters == 0 {
			st.mu.Unlock()
			continue
		}
		st.cur = newPending()
		st.mu.Unlock()
		gb := p.b.Flush()
		if len(gb.Relations) > 0 || len(gb.Entities) > 0 {
			err := st.store.PutGraph(ctx, gb)
			switch {
			case err == nil:
				st.relations.Add(float64(len(gb.Relations)))
			case vigil.ErrorCode(err) == vigil.EINVALID:
				st.log.Warn("graph batch rejected by the store", "relations", len(gb.Relations), "err", err)
			default:
				p.err = err
			}
		}
		close(p.done)
	}
}

// RunRetention removes from the graph what was last seen more than keep
// ago (by clock), right away and then every period, until ctx ends (nil).
// A pass that fails is logged and tried again at the next period. keep and
// every must be positive (EINVALID otherwise).
func RunRetention(ctx context.Context, g store.Graph, keep, every time.Duration, clock vigil.Clock, log *slog.Logger) error {
	if keep <= 0 || every <= 0 {
		return vigil.Errorf(vigil.EINVALID, "graph retention needs a positive age and period, got keep=%s every=%s", keep, every)
	}
	if clock == nil {
		clock = vigil.SystemClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "graph.retention")
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		cut := clock.Now().Add(-keep)
		n, err := g.DeleteGraphBefore(ctx, cut)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Error("cannot apply graph retention", "before", cut, "err", err)
		case n > 0:
			log.Info("old graph relations deleted", "before", cut, "deleted", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
