package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestUntilReady: a step that times out while JetStream is busy is tried
// again; a refusal is returned at once; the wait is bounded.
func TestUntilReady(t *testing.T) {
	b := &Bus{log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()

	calls := 0
	err := b.untilReady(ctx, "test", time.Minute, func(context.Context) error {
		calls++
		if calls < 3 {
			return fmt.Errorf("cannot create stream X: %w", context.DeadlineExceeded)
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("busy twice then ready: err %v after %d calls, want nil after 3", err, calls)
	}

	calls = 0
	refused := errors.New("insufficient resources")
	if err := b.untilReady(ctx, "test", time.Minute, func(context.Context) error { calls++; return refused }); !errors.Is(err, refused) || calls != 1 {
		t.Fatalf("refusal: err %v after %d calls, want the refusal after 1", err, calls)
	}

	calls = 0
	if err := b.untilReady(ctx, "test", 300*time.Millisecond, func(context.Context) error { calls++; return nats.ErrNoResponders }); !errors.Is(err, nats.ErrNoResponders) || calls > 2 {
		t.Fatalf("always busy: err %v after %d calls, want no responders after at most 2", err, calls)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	calls = 0
	if err := b.untilReady(cctx, "test", time.Minute, func(context.Context) error { calls++; return context.DeadlineExceeded }); err == nil || calls != 1 {
		t.Fatalf("cancelled: err %v after %d calls, want an error after 1", err, calls)
	}
}
