package heartbeat

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

func TestSilentDeviceAlertsOnceAndRearms(t *testing.T) {
	d := New(Options{Silence: time.Minute})
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	report := func(dev string, at time.Time) {
		ev := vigil.Event{ID: dev + at.String(), Kind: vigil.KindHealth, DeviceID: dev, Time: at.Add(-time.Hour), Received: at}
		d.Detect(ctx, 0, &ev, nil)
	}
	tick := func(at time.Time) []vigil.Alert {
		var out []vigil.Alert
		d.Tick(ctx, at, func(a vigil.Alert) { out = append(out, a) })
		return out
	}
	report("cam-1", t0)
	report("cam-2", t0)
	// An auth event is no heartbeat.
	d.Detect(ctx, 0, &vigil.Event{Kind: vigil.KindAuth, DeviceID: "cam-1", Received: t0.Add(50 * time.Second)}, nil)
	report("cam-2", t0.Add(50*time.Second))

	if got := tick(t0.Add(60 * time.Second)); len(got) != 0 {
		t.Fatalf("alerts at exactly the allowed gap: %+v", got)
	}
	got := tick(t0.Add(61 * time.Second))
	if len(got) != 1 || got[0].DeviceID != "cam-1" || got[0].RuleID != RuleID || !got[0].FirstEventTime.Equal(t0) {
		t.Fatalf("after the gap: %+v, want one alert for cam-1 since %v", got, t0)
	}
	if got := tick(t0.Add(5 * time.Minute)); len(got) != 1 || got[0].DeviceID != "cam-2" {
		t.Fatalf("later tick: %+v, want only cam-2 (cam-1 alerted once already)", got)
	}
	report("cam-1", t0.Add(6*time.Minute))
	if got := tick(t0.Add(6*time.Minute + 30*time.Second)); len(got) != 0 {
		t.Fatalf("a device that reports again alerted: %+v", got)
	}
	if got := tick(t0.Add(7*time.Minute + time.Second)); len(got) != 1 || got[0].DeviceID != "cam-1" {
		t.Fatalf("a re-armed device silent again: %+v", got)
	}
	if got := tick(t0.Add(time.Hour)); len(got) != 0 {
		t.Fatalf("every device has alerted for its silence, got more: %+v", got)
	}
}

func TestConcurrentDetectAndTick(t *testing.T) {
	d := New(Options{Silence: time.Millisecond})
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 1000 {
			ev := vigil.Event{Kind: vigil.KindHealth, DeviceID: "d", Received: time.Unix(int64(i), 0)}
			d.Detect(ctx, i%4, &ev, nil)
		}
	}()
	for range 100 {
		d.Tick(ctx, time.Unix(2000, 0), func(vigil.Alert) {})
	}
	<-done
}
