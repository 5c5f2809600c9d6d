package sigma

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/vigil-iot/vigil"
)

// BenchmarkDetector measures the online detector (vigil.Event in, alerts
// out, explanations included) on the corpus rules and the events of
// VIGIL_SIGMA_BENCH_EVENTS (the first 50,000), one core: b.N is the number
// of events. It reports the alerts raised per event, each of which is
// explained by a second evaluation of its rule.
func BenchmarkDetector(b *testing.B) {
	rs := benchRules(b)
	data := benchEvents(b)
	var evs []*vigil.Event
	for i, l := range bytes.Split(bytes.TrimSpace(data), []byte{'\n'}) {
		if i == 50000 {
			break
		}
		var f map[string]any
		if json.Unmarshal(l, &f) != nil {
			continue
		}
		evs = append(evs, &vigil.Event{ID: fmt.Sprint(i), Kind: "process", Fields: f})
	}
	d := NewDetector(rs, DetectorOptions{})
	alerts := 0
	emit := func(vigil.Alert) { alerts++ }
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		d.Detect(ctx, 0, evs[i%len(evs)], emit)
	}
	b.ReportMetric(float64(alerts)/float64(b.N), "alerts/event")
}

// BenchmarkExplain measures what explaining costs per alert: one rule
// matched on every event, without and with its explanation.
func BenchmarkExplain(b *testing.B) {
	rs, errs := LoadBytes("test.yml", []byte(procRule), nil)
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	ev := procEvent("/usr/bin/wget", "wget http://x/m -O /tmp/m")
	m := rs.NewMatcher()
	b.Run("match", func(b *testing.B) {
		for range b.N {
			rs.MatchEvent(m, ev, func(*Rule) {})
		}
	})
	b.Run("match+explain", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			rs.MatchEvent(m, ev, func(r *Rule) { rs.explainEvent(r, m.ctx, ev) })
		}
	})
}
