package baseline

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// twinEv is a twin update of dev with the given fields.
func twinEv(at time.Time, dev string, fields map[string]any) vigil.Event {
	f := map[string]any{"twin.platform": "aws_iot_shadow"}
	for k, v := range fields {
		f[k] = v
	}
	return vigil.Event{ID: "tw", Time: at, DeviceID: dev, Source: "sensor", Kind: "twin", Action: "update", Fields: f,
		Network: &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.9.5"), SrcPort: 41000, DstIP: netip.MustParseAddr("10.0.9.1"), DstPort: 1883}}
}

// detectTwin enriches and detects ev as the stage does.
func detectTwin(d *Detector, ev *vigil.Event) []vigil.Alert {
	var out []vigil.Alert
	d.Enrich(context.Background(), 0, ev)
	d.Detect(context.Background(), 0, ev, func(a vigil.Alert) { out = append(out, a) })
	return out
}

// TestTwinParamRange: a boiler reports its setpoint between 18 and 23
// for two days (its owner sets 21 now and then); then a console sets 85:
// one alert naming the parameter, the value, the learned range and who set
// it, and the event is marked for the pack's rules. A set value within the
// widened range, and a parameter still learning, raise nothing.
func TestTwinParamRange(t *testing.T) {
	d := New(Options{Learn: 24 * time.Hour})
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	vals := []float64{18, 19.5, 21, 23, 22, 20}
	for h := 0; h < 48; h++ {
		ev := twinEv(start.Add(time.Duration(h)*time.Hour), "boiler-3", map[string]any{
			"twin.reported.heater.setpoint": vals[h%len(vals)], "twin.reported.heater.temp": 40.0 + float64(h%5)})
		if h%12 == 0 {
			ev.Fields["twin.desired.heater.setpoint"] = 21.0
			ev.Fields["mqtt.client_id"] = "owner-app"
		}
		if as := detectTwin(d, &ev); len(as) > 0 {
			t.Fatalf("hour %d: %v", h, as[0].Title)
		}
	}
	at := start.Add(49 * time.Hour)
	// Within the widened range (18-23, ± 25 % of 5): nothing.
	ok := twinEv(at, "boiler-3", map[string]any{"twin.desired.heater.setpoint": 24.0, "mqtt.client_id": "owner-app"})
	if as := detectTwin(d, &ok); len(as) > 0 || ok.Fields[FieldTwinOutOfRange] != nil {
		t.Fatalf("24 is within 16.75-24.25: %v", as)
	}
	// A parameter never seen: learned, not judged.
	newp := twinEv(at, "boiler-3", map[string]any{"twin.desired.pump.rpm": 9000.0})
	if as := detectTwin(d, &newp); len(as) > 0 {
		t.Fatalf("new parameter: %v", as)
	}
	// A spoofed mark is removed.
	spoof := twinEv(at, "boiler-3", map[string]any{"twin.reported.heater.setpoint": 21.0, FieldTwinOutOfRange: true})
	detectTwin(d, &spoof)
	if spoof.Fields[FieldTwinOutOfRange] != nil {
		t.Fatal("a source's own baseline.twin_out_of_range was kept")
	}

	bad := twinEv(at.Add(time.Minute), "boiler-3", map[string]any{"twin.desired.heater.setpoint": 85.0, "user.name": "tenant@plant.example"})
	as := detectTwin(d, &bad)
	if len(as) != 1 {
		t.Fatalf("want one alert, got %v", as)
	}
	a := as[0]
	if a.RuleID != "baseline.twin_param_out_of_range" || a.Severity != vigil.SeverityHigh || a.DeviceID != "boiler-3" {
		t.Errorf("alert %+v", a)
	}
	for _, s := range []string{"heater.setpoint", "85", "18 to 23"} {
		if !strings.Contains(a.Title, s) {
			t.Errorf("title %q does not say %q", a.Title, s)
		}
	}
	if ex, _ := a.Fields["explanation"].(string); !strings.Contains(ex, "user tenant@plant.example from 10.0.9.5 set heater.setpoint of boiler-3 to 85") {
		t.Errorf("explanation %q", ex)
	}
	if a.Fields["baseline.learned_min"] != 18.0 || a.Fields["baseline.learned_max"] != 23.0 || a.Fields["baseline.observed"] != 85.0 {
		t.Errorf("fields %v", a.Fields)
	}
	if !strings.Contains(strings.Join(a.Entities, " "), "user:tenant@plant.example") {
		t.Errorf("entities %v", a.Entities)
	}
	if bad.Fields[FieldTwinOutOfRange] != true || bad.Fields[FieldTwinParam] != "heater.setpoint" {
		t.Errorf("event not marked: %v", bad.Fields)
	}
	// The value is not learned: set again, it alerts again (dedup is
	// the alert stage's).
	again := twinEv(at.Add(2*time.Minute), "boiler-3", map[string]any{"twin.desired.heater.setpoint": 85.0})
	if as := detectTwin(d, &again); len(as) != 1 {
		t.Errorf("second set: %v", as)
	}
	// A low set value too, medium severity (1.4 widths below).
	low := twinEv(at.Add(3*time.Minute), "boiler-3", map[string]any{"twin.desired.heater.setpoint": 11.0})
	if as := detectTwin(d, &low); len(as) != 1 || as[0].Severity != vigil.SeverityMedium {
		t.Errorf("low set: %v", as)
	}

	// Marked normal (an analyst's "learn"), 85 is in the range.
	mark := a
	mark.ID, mark.Detector = "a1", Name
	if !IsBaselineAlert(mark) {
		t.Fatal("the twin alert is not a baseline alert that can be marked normal")
	}
	d0 := New(Options{Learn: 24 * time.Hour})
	snap0, _ := d.Snapshot(0)
	if err := d0.Restore(0, snap0); err != nil {
		t.Fatal(err)
	}
	if _, err := d0.MarkNormal(mark, false); err != nil {
		t.Fatal(err)
	}
	ok85 := twinEv(at.Add(5*time.Minute), "boiler-3", map[string]any{"twin.desired.heater.setpoint": 85.0})
	if as := detectTwin(d0, &ok85); len(as) != 0 {
		t.Errorf("after marking normal: %v", as[0].Title)
	}

	// The ranges survive a snapshot.
	snap, err := d.Snapshot(0)
	if err != nil {
		t.Fatal(err)
	}
	d2 := New(Options{Learn: 24 * time.Hour})
	if err := d2.Restore(0, snap); err != nil {
		t.Fatal(err)
	}
	again2 := twinEv(at.Add(4*time.Minute), "boiler-3", map[string]any{"twin.desired.heater.setpoint": 85.0})
	if as := detectTwin(d2, &again2); len(as) != 1 {
		t.Errorf("after restore: %v", as)
	}
}

// TestTwinLearningAndBounds: values set while the device learns are
// learned, not judged; parameters past maxParams are not kept; a twin
// event without a device is ignored.
func TestTwinLearningAndBounds(t *testing.T) {
	d := New(Options{Learn: time.Hour})
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f := map[string]any{}
	for i := range maxParams + 10 {
		f["twin.reported.p"+string(rune('b'+i))] = float64(i)
	}
	for m := 0; m < 90; m += 10 {
		ev := twinEv(start.Add(time.Duration(m)*time.Minute), "dev-1", f)
		if m == 30 {
			ev.Fields["twin.desired.pa"] = 500.0 // while learning: learned
		}
		if as := detectTwin(d, &ev); len(as) > 0 {
			t.Fatalf("minute %d: %v", m, as[0].Title)
		}
	}
	p := d.part(0)
	if n := int(p.ents["dev-1"].params.len); n != maxParams {
		t.Errorf("%d parameters kept, want %d", n, maxParams)
	}
	if p.ents["dev-1"].params.find(paramHash("pa")) == nil {
		t.Error("a set parameter did not take the place of one only reported")
	}
	ev := twinEv(start.Add(2*time.Hour), "dev-1", map[string]any{"twin.desired.pa": 400.0})
	if as := detectTwin(d, &ev); len(as) != 0 {
		t.Errorf("a value within what was set while learning: %v", as)
	}
	anon := twinEv(start.Add(2*time.Hour), "", map[string]any{"twin.desired.pa": 1e9})
	if as := detectTwin(d, &anon); len(as) != 0 {
		t.Errorf("no device: %v", as)
	}
	if len(p.ipents) != 0 {
		t.Errorf("a twin event made address entities: %v", len(p.ipents))
	}
}
