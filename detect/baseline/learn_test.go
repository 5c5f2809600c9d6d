package baseline

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

var t0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// fleet drives a detector with made-up events and collects the alerts.
type fleet struct {
	d      *Detector
	n      int
	alerts []vigil.Alert
}

func (f *fleet) send(ev vigil.Event) []vigil.Alert {
	f.n++
	ev.ID = "ev-" + time.Duration(f.n).String()
	var out []vigil.Alert
	f.d.Enrich(context.Background(), 0, &ev)
	f.d.Detect(context.Background(), 0, &ev, func(a vigil.Alert) { out = append(out, a) })
	f.alerts = append(f.alerts, out...)
	return out
}

func (f *fleet) inventory(at time.Duration, dev, class string) {
	f.send(vigil.Event{Time: t0.Add(at), DeviceID: dev, Source: "agent", Kind: vigil.KindInventory, Fields: map[string]any{"device.class": class}})
}

func (f *fleet) connect(at time.Duration, dev, dst string, port uint16) []vigil.Alert {
	return f.send(vigil.Event{Time: t0.Add(at), DeviceID: dev, Source: "agent", Kind: vigil.KindNetwork, Action: "connect",
		Network: &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.1.2"), SrcPort: 40000, DstIP: netip.MustParseAddr(dst), DstPort: port}})
}

// TestLearningAndCohorts checks that alerts are held back while learning,
// that a value most of the cohort has is not news, that one none has is,
// and that a device new to a learned cohort is judged against the cohort
// from its first event.
func TestLearningAndCohorts(t *testing.T) {
	f := &fleet{d: New(Options{Learn: time.Hour})}
	cams := []string{"cam-1", "cam-2", "cam-3", "cam-4", "cam-5"}
	for _, c := range cams {
		f.inventory(0, c, vigil.ClassCamera)
	}
	for m := time.Duration(0); m < 2*time.Hour; m += 5 * time.Minute {
		for _, c := range cams {
			f.connect(m, c, "198.51.100.10", 443)
		}
		// During learning: new, but held back.
		if m == 30*time.Minute {
			if a := f.connect(m, "cam-1", "198.51.100.99", 443); len(a) != 0 {
				t.Errorf("an alert during learning: %v", a[0].Title)
			}
		}
	}
	if f.d.Stats().Held == 0 {
		t.Errorf("nothing counted as held back during learning")
	}
	// Four of five cameras start using a second server after learning:
	// the first three are news to the cohort, the fourth is not (3 of 4
	// others have it).
	for i, c := range cams[:4] {
		a := f.connect(2*time.Hour+time.Duration(i)*time.Minute, c, "198.51.100.20", 443)
		if news := len(a) > 0; news != (i < 2) {
			t.Errorf("%s to a server %d of 4 others use: alerted %v", c, i, news)
		}
	}
	// A server no camera uses: news, medium (public), with an explanation.
	a := f.connect(3*time.Hour, "cam-5", "203.0.113.9", 8080)
	if len(a) != 1 || a[0].Severity != vigil.SeverityMedium || a[0].Fields["baseline.peer"] != "203.0.113.9" || a[0].Fields["baseline.judged_against"] != "device" {
		t.Fatalf("new peer: %+v", a)
	}
	if a[0].DedupKey == "" || a[0].Fields["baseline.samples"].(float64) < 20 {
		t.Errorf("new peer alert: dedup key %q, samples %v", a[0].DedupKey, a[0].Fields["baseline.samples"])
	}
	// The same again: learned now, no second alert.
	if a := f.connect(3*time.Hour+time.Minute, "cam-5", "203.0.113.9", 8080); len(a) != 0 {
		t.Errorf("a second alert for the same peer")
	}
	// A camera new to the learned cohort: what its cohort does is not
	// news from its first event, what none does is, judged by the cohort.
	f.inventory(4*time.Hour, "cam-6", vigil.ClassCamera)
	if a := f.connect(4*time.Hour, "cam-6", "198.51.100.10", 443); len(a) != 0 {
		t.Errorf("a new camera doing what cameras do: %v", a[0].Fields["explanation"])
	}
	a = f.connect(4*time.Hour, "cam-6", "192.0.2.66", 23)
	if len(a) != 1 || a[0].Fields["baseline.judged_against"] != "cohort" {
		t.Fatalf("a new camera doing what no camera does: %+v", a)
	}
}

// TestDriftAndChange checks that a slow drift of a rate is absorbed
// without an alert while a sudden jump raises one at once.
func TestDriftAndChange(t *testing.T) {
	f := &fleet{d: New(Options{Learn: time.Hour})}
	msg := func(at time.Duration) []vigil.Alert {
		return f.send(vigil.Event{Time: t0.Add(at), DeviceID: "th-1", Source: "sensor", Kind: "mqtt", Action: "publish",
			Network: &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.2.11"), SrcPort: 40000, DstIP: netip.MustParseAddr("10.0.0.2"), DstPort: 1883},
			Fields:  map[string]any{"mqtt.topic": "t/1", "mqtt.payload_size": 20.0}})
	}
	// 4 hours, from 30 to 60 messages a minute.
	for m := 0; m < 240; m++ {
		n := 30 + m/8
		for i := 0; i < n; i++ {
			if a := msg(time.Duration(m)*time.Minute + time.Duration(i)*time.Minute/time.Duration(n)); len(a) > 0 {
				t.Fatalf("minute %d, %d messages: %s", m, n, a[0].Fields["explanation"])
			}
		}
	}
	var got []vigil.Alert
	for i := 0; i < 600; i++ {
		got = append(got, msg(240*time.Minute+time.Duration(i)*50*time.Millisecond)...)
	}
	if len(got) == 0 || got[0].RuleID != "baseline.rate_messages" {
		t.Fatalf("a jump from 60 to 600 messages a minute raised %v", got)
	}
	if last := got[len(got)-1]; last.Severity != vigil.SeverityHigh {
		t.Errorf("a tenfold flood: severity %v, want high", last.Severity)
	}
	if _, ok := got[0].Fields["baseline.expected_max"].(float64); !ok {
		t.Errorf("no expected_max: %v", got[0].Fields)
	}
}

// TestCohortHopping checks that a device moving between cohorts takes its
// values out of the cohort it leaves: hopping in and out must not make a
// value look common to the cohort.
func TestCohortHopping(t *testing.T) {
	f := &fleet{d: New(Options{Learn: time.Hour})}
	for _, c := range []string{"cam-1", "cam-2", "cam-3"} {
		f.inventory(0, c, vigil.ClassCamera)
		f.connect(0, c, "198.51.100.10", 443)
	}
	f.inventory(0, "evil", vigil.ClassCamera)
	f.connect(0, "evil", "203.0.113.66", 4444)
	for i := 0; i < 5; i++ {
		f.inventory(time.Duration(i)*time.Second, "evil", "thermostat")
		f.inventory(time.Duration(i)*time.Second, "evil", vigil.ClassCamera)
	}
	f.d.FinishLearning()
	if a := f.connect(2*time.Hour, "cam-1", "203.0.113.66", 4444); len(a) != 1 {
		t.Fatalf("a camera reaching the peer only the hopper knows raised %d alerts, want 1", len(a))
	}
	p := f.d.part(0)
	if n := p.cohorts[vigil.ClassCamera].members; n != 4 {
		t.Errorf("camera cohort has %d members, want 4", n)
	}
}

// TestLongFlowBytes checks that a long connection's periodic flow records,
// which carry its bytes since the start, do not grow the byte rate they
// are judged by: a steady 10 KB a minute over hours, reported every
// minute and judged in 10-second windows among short flows of 4 KB each,
// raises nothing.
func TestLongFlowBytes(t *testing.T) {
	f := &fleet{d: New(Options{Learn: time.Hour, Window: 10 * time.Second})}
	short := func(at time.Duration) []vigil.Alert {
		return f.send(vigil.Event{Time: t0.Add(at), DeviceID: "gw-1", Source: "sensor", Kind: "flow", Action: "flow",
			Network: &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.2.11"), SrcPort: 41000, DstIP: netip.MustParseAddr("10.0.0.3"), DstPort: 443},
			Fields:  map[string]any{"flow.reason": "end", "flow.duration": 0.5, "flow.bytes_toserver": 3000.0, "flow.bytes_toclient": 1000.0}})
	}
	for m := 1; m <= 240; m++ {
		for s := 0; s < 6; s++ {
			if a := short(time.Duration(m)*time.Minute + time.Duration(s)*10*time.Second + time.Second); len(a) > 0 {
				t.Fatalf("minute %d: %s", m, a[0].Fields["explanation"])
			}
		}
		a := f.send(vigil.Event{Time: t0.Add(time.Duration(m) * time.Minute), DeviceID: "gw-1", Source: "sensor", Kind: "flow", Action: "flow",
			Network: &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.2.11"), SrcPort: 40000, DstIP: netip.MustParseAddr("10.0.0.2"), DstPort: 1883},
			Fields:  map[string]any{"flow.reason": "periodic", "flow.duration": float64(m * 60), "flow.bytes_toserver": float64(m * 10000), "flow.bytes_toclient": 0.0}})
		if len(a) > 0 {
			t.Fatalf("minute %d: %s", m, a[0].Fields["explanation"])
		}
	}
}

// TestEnrichOwnsPrefix checks that baseline.* fields that come with an
// event are removed by Enrich: a source cannot claim a new writer.
func TestEnrichOwnsPrefix(t *testing.T) {
	d := New(Options{})
	ev := vigil.Event{ID: "x", Time: t0, DeviceID: "plc-1", Kind: "modbus", Action: "request",
		Fields: map[string]any{"baseline.new_writer": true, "modbus.function_code": 6.0}}
	d.Enrich(context.Background(), 0, &ev)
	if _, ok := ev.Fields["baseline.new_writer"]; ok {
		t.Errorf("a source's baseline.new_writer survived Enrich (the device is learning: nothing is new)")
	}
	if ev.Fields["modbus.function_code"] != 6.0 {
		t.Errorf("Enrich removed another field")
	}
}

// TestNoveltyLimit checks that a burst of new values of one family raises
// one alert a window, while every event is still enriched.
func TestNoveltyLimit(t *testing.T) {
	f := &fleet{d: New(Options{Learn: time.Minute})}
	pub := func(at time.Duration, topic string) (vigil.Event, []vigil.Alert) {
		ev := vigil.Event{ID: topic, Time: t0.Add(at), DeviceID: "th-1", Source: "sensor", Kind: "mqtt", Action: "publish",
			Network: &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.2.11"), SrcPort: 40000, DstIP: netip.MustParseAddr("10.0.0.2"), DstPort: 1883},
			Fields:  map[string]any{"mqtt.topic": topic}}
		var out []vigil.Alert
		f.d.Enrich(context.Background(), 0, &ev)
		f.d.Detect(context.Background(), 0, &ev, func(a vigil.Alert) { out = append(out, a) })
		return ev, out
	}
	for m := 0; m < 5; m++ {
		pub(time.Duration(m)*time.Minute, "t/normal")
	}
	alerts := 0
	for i := 0; i < 10; i++ {
		ev, a := pub(5*time.Minute+time.Duration(i)*time.Second, fmt.Sprintf("t/new/%d", i))
		alerts += len(a)
		if ev.Fields["baseline.new_topic"] != true {
			t.Errorf("new topic %d not enriched", i)
		}
	}
	if alerts != 1 || f.d.Stats().Limited != 9 {
		t.Errorf("10 new topics in a window: %d alerts, %d limited; want 1 and 9", alerts, f.d.Stats().Limited)
	}
	if _, a := pub(6*time.Minute, "t/new/next-window"); len(a) != 1 {
		t.Errorf("a new topic in the next window: %d alerts, want 1", len(a))
	}
}

// TestOldTimestampsDoNotHideFlood checks that a device sending events with
// old timestamps between the messages of a flood does not reset its rate
// window: the flood is raised.
func TestOldTimestampsDoNotHideFlood(t *testing.T) {
	f := &fleet{d: New(Options{Learn: time.Hour})}
	msg := func(at time.Duration) []vigil.Alert {
		return f.send(vigil.Event{Time: t0.Add(at), DeviceID: "th-1", Source: "sensor", Kind: "mqtt", Action: "publish",
			Network: &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.2.11"), SrcPort: 40000, DstIP: netip.MustParseAddr("10.0.0.2"), DstPort: 1883},
			Fields:  map[string]any{"mqtt.topic": "t/1"}})
	}
	for m := 0; m < 120; m++ {
		for i := 0; i < 10; i++ {
			msg(time.Duration(m)*time.Minute + time.Duration(i)*6*time.Second)
		}
	}
	var got []vigil.Alert
	for i := 0; i < 600; i++ {
		got = append(got, msg(120*time.Minute+time.Duration(i)*50*time.Millisecond)...)
		if i%5 == 0 {
			got = append(got, msg(time.Duration(i%100)*time.Minute)...) // an hour or two ago
		}
	}
	if len(got) == 0 {
		t.Fatal("a flood with old timestamps between its messages raised nothing")
	}
}

// TestSpoolFlushNoFlood checks that a device sending a thousand events of
// the past hour at once (an agent's spool after an outage) raises no rate
// alert: their windows were closed.
func TestSpoolFlushNoFlood(t *testing.T) {
	f := &fleet{d: New(Options{Learn: time.Hour})}
	proc := func(at time.Duration) []vigil.Alert {
		return f.send(vigil.Event{Time: t0.Add(at), DeviceID: "gw-1", Source: "agent", Kind: vigil.KindProcess, Fields: map[string]any{"process.name": "ntpd"}})
	}
	for m := 0; m < 120; m++ {
		proc(time.Duration(m) * time.Minute)
	}
	for i := 0; i < 1000; i++ {
		if a := proc(60*time.Minute + time.Duration(i)*3*time.Second); len(a) > 0 {
			t.Fatalf("spooled event %d: %s", i, a[0].Fields["explanation"])
		}
	}
}

// TestFutureTimestampClamped checks that an event time far ahead of the
// event's receipt does not move a device's windows there (every later
// event would be ignored as old, and a flood unseen).
func TestFutureTimestampClamped(t *testing.T) {
	f := &fleet{d: New(Options{Learn: time.Hour})}
	msg := func(at time.Duration, received time.Duration) []vigil.Alert {
		return f.send(vigil.Event{Time: t0.Add(at), Received: t0.Add(received), DeviceID: "th-1", Source: "sensor", Kind: "mqtt", Action: "publish",
			Network: &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.2.11"), SrcPort: 40000, DstIP: netip.MustParseAddr("10.0.0.2"), DstPort: 1883},
			Fields:  map[string]any{"mqtt.topic": "t/1"}})
	}
	for m := 0; m < 120; m++ {
		for i := 0; i < 10; i++ {
			at := time.Duration(m)*time.Minute + time.Duration(i)*6*time.Second
			msg(at, at)
		}
	}
	msg(120*time.Minute+365*24*time.Hour, 120*time.Minute) // a year ahead
	var got []vigil.Alert
	for i := 0; i < 600; i++ {
		at := 120*time.Minute + time.Second + time.Duration(i)*50*time.Millisecond
		got = append(got, msg(at, at)...)
	}
	if len(got) == 0 {
		t.Fatal("a flood after an event dated a year ahead raised nothing")
	}
}

// TestBackdatedEventJudged checks that an event dated back into the
// learning period, sent after learning ended, is judged, not held back.
func TestBackdatedEventJudged(t *testing.T) {
	f := &fleet{d: New(Options{Learn: time.Hour})}
	for m := time.Duration(0); m < 2*time.Hour; m += 5 * time.Minute {
		f.connect(m, "cam-1", "198.51.100.10", 443)
	}
	if a := f.connect(time.Minute, "cam-1", "203.0.113.66", 4444); len(a) != 1 {
		t.Fatalf("a new peer in an event dated back into learning raised %d alerts, want 1", len(a))
	}
}
