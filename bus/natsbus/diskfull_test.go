package natsbus_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus/bustest"
	"github.com/vigil-iot/vigil/internal/testfs"
)

// TestDiskFullRecovery runs the embedded bus on a small tmpfs that the
// test fills up (a full disk is a real write failure, even for root):
// publishing fails and WriteErr reports it; once space is back, the bus
// restarts its embedded server by itself, WriteErr is nil again,
// publishing and consuming work, and every event acknowledged before,
// during or after the fault is consumed, by a consumer group that ran
// through the fault and by one that starts after it. nats-server keeps the write
// error of a stream until it restarts: without the restart, every
// publish after the fault times out.
func TestDiskFullRecovery(t *testing.T) {
	mnt := testfs.Tmpfs(t, "8m")

	cfg := testConfig(t)
	cfg.DataDir = filepath.Join(mnt, "nats")
	cfg.Groups = []string{"g", "late"} // late consumes only after the recovery
	cfg.Partitions = 2
	cfg.MaxEventBytes = 2 << 20 // the server allows 75% of the free space in all
	cfg.MaxAlertBytes = 256 << 10
	cfg.PublishTimeout = 2 * time.Second
	cfg.HealthInterval = 100 * time.Millisecond
	b := open(t, cfg)

	var mu sync.Mutex
	seen := map[string]map[string]bool{"g": {}, "late": {}} // group → event ids
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	consume := func(group string) {
		wg.Go(func() {
			err := b.ConsumeEvents(ctx, group, func(_ context.Context, _ int, events []vigil.Event) error {
				mu.Lock()
				defer mu.Unlock()
				for _, e := range events {
					seen[group][e.ID] = true
				}
				return nil
			})
			if err != nil {
				t.Errorf("ConsumeEvents %s: %v", group, err)
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	consume("g")
	// waitFor polls cond; the deadline is a guard against a hang, not a
	// measure.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting: %s", what)
			}
		}
	}
	var acked []vigil.Event // every event whose publish returned nil
	next := 0
	publish := func(n int) error {
		events := bustest.Events("full", next, n, 10)
		next += n
		err := b.PublishEvents(context.Background(), events)
		if err == nil {
			acked = append(acked, events...)
		}
		return err
	}
	allConsumed := func(group string) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, e := range acked {
				if !seen[group][e.ID] {
					return false
				}
			}
			return true
		}
	}

	if err := publish(100); err != nil {
		t.Fatal(err)
	}
	waitFor("the first events consumed", allConsumed("g"))
	if err := b.WriteErr(); err != nil {
		t.Fatalf("WriteErr before the fault: %v", err)
	}

	filler := testfs.Fill(t, mnt)
	var pubErr error
	for range 50 { // a block may have had room for a few more
		if pubErr = publish(100); pubErr != nil {
			break
		}
	}
	if pubErr == nil {
		t.Fatal("publishing on a full disk kept succeeding")
	}
	t.Logf("publish on a full disk: %v", pubErr)
	waitFor("WriteErr while the disk is full", func() bool { return b.WriteErr() != nil })
	t.Logf("WriteErr on a full disk: %v", b.WriteErr())

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor("WriteErr nil once the disk has room", func() bool { return b.WriteErr() == nil })
	waitFor("a publish succeeds again", func() bool { return publish(100) == nil })
	if err := b.WriteErr(); err != nil {
		t.Errorf("WriteErr after a successful publish: %v", err)
	}
	waitFor("every acknowledged event consumed by the group that ran through the fault", allConsumed("g"))
	consume("late")
	waitFor("every acknowledged event consumed by the group started after the recovery", allConsumed("late"))
	t.Logf("%d events acknowledged and consumed", len(acked))
}

// TestWriteErrAfterPublishFailure checks that a failed publish makes
// WriteErr report it, and that a later successful publish clears it: here
// the streams are deleted behind the bus's back, then created again by
// another bus on the same server.
func TestWriteErrAfterPublishFailure(t *testing.T) {
	cfg := testConfig(t)
	cfg.DataDir = filepath.Join(t.TempDir(), "nats")
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.PublishTimeout = 2 * time.Second
	b := open(t, cfg)
	ctx := context.Background()
	if err := b.PublishEvents(ctx, bustest.Events("pf", 0, 10, 3)); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteErr(); err != nil {
		t.Fatalf("WriteErr after a successful publish: %v", err)
	}
	if err := b.DeleteStreams(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishEvents(ctx, bustest.Events("pf", 10, 10, 3)); err == nil {
		t.Fatal("publish without a stream succeeded")
	}
	if err := b.WriteErr(); err == nil {
		t.Fatal("WriteErr is nil after a failed publish")
	} else {
		t.Logf("WriteErr after a failed publish: %v", err)
	}
	other := testConfig(t)
	other.URL = b.ClientURL()
	open(t, other) // creates the streams again
	if err := b.PublishEvents(ctx, bustest.Events("pf", 20, 10, 3)); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteErr(); err != nil {
		t.Errorf("WriteErr after a publish succeeded again: %v", err)
	}
}
