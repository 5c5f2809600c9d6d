package natsbus

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// busy tells whether err is JetStream being momentarily unable to answer
// — a request that timed out, nobody answering the API yet, a stream or
// the meta layer electing a leader — rather than a refusal. On a busy or
// recovering cluster, creating a replicated stream can take longer than
// one request's timeout; asking again then succeeds.
func busy(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var api *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
		(errors.As(err, &api) && api.Code == 503)
}

// untilReady runs step until it succeeds, fails with an error that is not
// busy, ctx ends, or wait has passed since the first try; between tries
// it logs what it waits for and backs off from 250 ms to 5 s.
func (b *Bus) untilReady(ctx context.Context, what string, wait time.Duration, step func(context.Context) error) error {
	deadline := time.Now().Add(wait)
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := step(ctx)
		if !busy(ctx, err) || time.Now().Add(delay).After(deadline) {
			return err
		}
		b.log.Warn("JetStream busy; trying again", "step", what, "attempt", attempt, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(2*delay, 5*time.Second)
	}
}
