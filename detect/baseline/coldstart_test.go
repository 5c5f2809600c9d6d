package baseline

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// TestShortLearningOwnRate checks a device that finished learning with
// fewer than minSamples windows of its own (a short `vigil detect --learn`
// at one-minute windows): its cohort (unclassified, here mostly quiet
// devices) pools every member's windows, so the cohort's median is a
// quiet member's; the busy device's own rate, shown in every window it
// learned, must not be raised against it, while a flood of it still is.
// A device with no window of its own (a new host) is judged by the
// cohort as before.
func TestShortLearningOwnRate(t *testing.T) {
	d := New(Options{}) // default: one-minute windows
	conn := func(at time.Duration, src string) vigil.Event {
		return vigil.Event{Time: t0.Add(at), Source: "sensor", Kind: vigil.KindNetwork, Action: "connect",
			Network: &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr(src), SrcPort: 40000, DstIP: netip.MustParseAddr("10.0.0.10"), DstPort: 502}}
	}
	// Four minutes of learning: a master opening 100 connections a
	// minute, and twenty quiet devices connecting once a minute.
	for s := time.Duration(0); s < 4*time.Minute; s += 600 * time.Millisecond {
		ev := conn(s, "10.0.0.41")
		d.Learn(0, &ev)
	}
	for i := range 20 {
		for m := time.Duration(0); m < 4*time.Minute; m += time.Minute {
			ev := conn(m+time.Duration(i)*time.Second, netip.AddrFrom4([4]byte{10, 0, 0, byte(50 + i)}).String())
			d.Learn(0, &ev)
		}
	}
	d.FinishLearning()
	var alerts []vigil.Alert
	send := func(ev vigil.Event) {
		d.Detect(context.Background(), 0, &ev, func(a vigil.Alert) { alerts = append(alerts, a) })
	}
	// The master goes on at 108 a minute: normal for it.
	for s := 5 * time.Minute; s < 8*time.Minute; s += 555 * time.Millisecond {
		send(conn(s, "10.0.0.41"))
	}
	for _, a := range alerts {
		t.Errorf("normal rate of a device with a short history raised %s %s: %v", a.Severity, a.RuleID, a.Fields["explanation"])
	}
	// A flood from it (1,000 connections in a minute) is raised, against
	// its own baseline.
	alerts = nil
	for i := range 1000 {
		send(conn(9*time.Minute+time.Duration(i)*50*time.Millisecond, "10.0.0.41"))
	}
	if a := firstAtLeast(alerts, "baseline.rate_connections", vigil.SeverityMedium); a == nil {
		t.Errorf("a flood from the device with a short history raised no medium+ connections rate: %v", ruleIDs(alerts))
	} else if a.Fields["baseline.judged_against"] != "device" {
		t.Errorf("flood judged against %v, want the device's own baseline", a.Fields["baseline.judged_against"])
	}
	// A new host opening 500 connections in a minute has no window of its
	// own: the cohort judges it.
	alerts = nil
	for i := range 500 {
		send(conn(12*time.Minute+time.Duration(i)*100*time.Millisecond, "10.0.0.99"))
	}
	if a := firstAtLeast(alerts, "baseline.rate_connections", vigil.SeverityLow); a == nil || a.Fields["baseline.judged_against"] != "cohort" {
		t.Errorf("a new host's 500 connections in a minute: want a rate alert judged against the cohort, got %v", ruleIDs(alerts))
	}
}
