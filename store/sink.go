package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
)

// SinkGroup is the bus consumer group of the event sink. A bus that keeps
// events only until every group has them (natsbus Config.Groups) must list
// it, so that events published before the sink first runs are kept for it.
const SinkGroup = "store"

// RunEventSink is the pipeline stage that persists events: it consumes the
// bus in consumer group SinkGroup and stores each batch with PutEvents
// until ctx ends (nil) or the bus fails.
//
// A batch is acknowledged only after PutEvents returned, so an
// acknowledged event is stored. When PutEvents fails the handler returns
// the error and the bus hands the batch again later; duplicates are
// skipped by the store. Events the store rejects as invalid (EINVALID:
// the rest of their batch is stored) are logged and acknowledged, since
// no retry can make them valid.
func RunEventSink(ctx context.Context, b bus.Bus, s Events, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "store.sink")
	log.Info("event sink started", "group", SinkGroup, "partitions", b.Partitions())
	err := b.ConsumeEvents(ctx, SinkGroup, func(ctx context.Context, partition int, events []vigil.Event) error {
		err := s.PutEvents(ctx, events)
		switch {
		case err == nil:
			return nil
		case vigil.ErrorCode(err) == vigil.EINVALID:
			log.Warn("events rejected by the store", "partition", partition, "batch", len(events), "err", err)
			return nil
		}
		return fmt.Errorf("cannot store %d events of partition %d: %w", len(events), partition, err)
	})
	if err != nil {
		return fmt.Errorf("cannot consume events to store: %w", err)
	}
	return nil
}

// RunRetention deletes events older than keep (by clock's time) right
// away and then every period, until ctx ends; it returns nil then. A pass
// that fails is logged and tried again at the next period. keep and every
// must be positive (EINVALID otherwise).
func RunRetention(ctx context.Context, s Events, keep, every time.Duration, clock vigil.Clock, log *slog.Logger) error {
	if keep <= 0 || every <= 0 {
		return vigil.Errorf(vigil.EINVALID, "event retention needs a positive age and period, got keep=%s every=%s", keep, every)
	}
	if clock == nil {
		clock = vigil.SystemClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "store.retention")
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		cut := clock.Now().Add(-keep)
		n, err := s.DeleteEventsBefore(ctx, cut)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Error("cannot apply event retention", "before", cut, "err", err)
		case n > 0:
			log.Info("old events deleted", "before", cut, "deleted", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
