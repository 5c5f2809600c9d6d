package natsbus

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// TestDeleteGroup checks that with interest retention, the events a
// deleted group had not acknowledged leave the stream.
func TestDeleteGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := Open(ctx, Config{
		DataDir: t.TempDir(), Groups: []string{"a", "gone"}, Partitions: 3,
		FetchWait: 200 * time.Millisecond,
		Logger:    slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.PublishEvents(ctx, benchEvents(300)); err != nil {
		t.Fatal(err)
	}
	msgs := func() uint64 {
		t.Helper()
		s, err := b.js.Stream(ctx, b.eventsStream)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.Msgs
	}
	// Group a consumes everything; "gone" never runs.
	cctx, ccancel := context.WithCancel(ctx)
	got := make(chan int, 100)
	done := make(chan error, 1)
	go func() {
		done <- b.ConsumeEvents(cctx, "a", func(_ context.Context, _ int, ev []vigil.Event) error {
			got <- len(ev)
			return nil
		})
	}()
	for n := 0; n < 300; {
		n += <-got
	}
	ccancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := msgs(); n == 0 {
		t.Fatal("the stream is empty while group gone has not consumed")
	}
	if err := b.DeleteGroup(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	for msgs() > 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if n := msgs(); n != 0 {
		t.Errorf("%d messages left after deleting the only group that had not acknowledged them", n)
	}
}
