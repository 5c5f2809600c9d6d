package graph

import (
	"context"
	"fmt"
	"log/slog"
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
	st := &Stage{bus: b, store: s, x: opts.Extractor, group: opts.Group, log: opts.Logger.With("component", "graph")}
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

// Run consumes the bus until ctx ends (nil) or the bus fails. Each
// delivered batch of events is aggregated in memory and merged into the
// store in one PutGraph; the batch is acknowledged after that returned,
// so a failed write is retried with the batch. A batch the store rejects
// as invalid is logged and acknowledged (no retry can fix it).
func (st *Stage) Run(ctx context.Context) error {
	st.log.Info("graph stage started", "group", st.group)
	// The handler runs concurrently for different partitions, never for
	// the same one: one batch per partition.
	batches := make([]*Batch, st.bus.Partitions())
	for i := range batches {
		batches[i] = NewBatch()
	}
	err := st.bus.ConsumeEvents(ctx, st.group, func(ctx context.Context, partition int, events []vigil.Event) error {
		if partition < 0 || partition >= len(batches) {
			return fmt.Errorf("cannot merge the graph: partition %d of %d", partition, len(batches))
		}
		b := batches[partition]
		for i := range events {
			st.x.Add(b, &events[i])
		}
		st.events.Add(float64(len(events)))
		gb := b.Flush()
		if len(gb.Relations) == 0 && len(gb.Entities) == 0 {
			return nil
		}
		err := st.store.PutGraph(ctx, gb)
		switch {
		case err == nil:
			st.relations.Add(float64(len(gb.Relations)))
			return nil
		case vigil.ErrorCode(err) == vigil.EINVALID:
			st.log.Warn("graph batch rejected by the store", "partition", partition, "events", len(events), "err", err)
			return nil
		}
		return fmt.Errorf("cannot merge the graph of %d events of partition %d: %w", len(events), partition, err)
	})
	if err != nil {
		return fmt.Errorf("cannot consume events for the graph: %w", err)
	}
	return nil
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
