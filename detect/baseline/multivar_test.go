package baseline

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// The measurement behind the multivariate score (docs/anomaly.md): devices
// with three rate metrics (messages, bytes, connections) over 3 days of
// one-minute windows, each metric judged alone by the kept method, and the
// score Σ z² over the metrics of a window (z: how many robust spreads above
// the median, z ≥ K being a single-metric alarm) judged against a
// threshold T. `go test -v -run TestMultivariateScore ./detect/baseline/`
// prints the table.

// mvDevice is one device's series of the three metrics.
type mvDevice struct {
	shape  string
	x      [][3]float32 // per window: messages, bytes, connections
	attack map[int]bool
}

var mvMetrics = [3]metric{metMsgs, metBytes, metConns}

// mvSynthetic makes 5 devices of each shape.
func mvSynthetic(seed uint64) []mvDevice {
	r := rand.New(rand.NewPCG(seed, 11))
	const n = 3 * 1440
	var out []mvDevice
	for _, shape := range []string{"independent Poisson", "correlated bursty", "steady poller", "diurnal correlated"} {
		for rep := 0; rep < 5; rep++ {
			d := mvDevice{shape: shape, attack: map[int]bool{}}
			for t := 0; t < n; t++ {
				var v [3]float32
				switch shape {
				case "independent Poisson":
					v = [3]float32{poisson(r, 40), float32(max(0, 100_000+10_000*r.NormFloat64())), poisson(r, 15)}
				case "correlated bursty":
					// One burst factor drives the three: a busy minute is
					// busy in messages, bytes and connections at once.
					g := gamma4(r)
					m := poisson(r, 40*g)
					v = [3]float32{m, m * float32(2500*(1+0.1*r.NormFloat64())), poisson(r, 15*g)}
				case "steady poller":
					v = [3]float32{float32(60 + r.IntN(3) - 1), float32(150_000 + r.IntN(2000) - 1000), float32(12 + r.IntN(3) - 1)}
				case "diurnal correlated":
					l := 1 + 0.6*math.Sin(2*math.Pi*float64(t)/1440)
					m := poisson(r, 40*l)
					v = [3]float32{m, m * 2500, poisson(r, 15*l)}
				}
				d.x = append(d.x, v)
			}
			out = append(out, d)
		}
	}
	return out
}

// mvWithAttacks injects, every 97 windows after the first day, a window
// where every metric is f times its value (an exfiltration, a device
// driven by someone else: more of everything, but each metric within
// what it sometimes does alone).
func mvWithAttacks(ds []mvDevice, f float32) []mvDevice {
	var out []mvDevice
	for _, d := range ds {
		c := mvDevice{shape: d.shape, x: append([][3]float32(nil), d.x...), attack: map[int]bool{}}
		for t := 1440; t < len(c.x); t += 97 {
			for i := range c.x[t] {
				c.x[t][i] *= f
			}
			c.attack[t] = true
		}
		out = append(out, c)
	}
	return out
}

// mvJudge runs the kept per-metric method over a device and counts, after
// the first day, single-metric alarms and score alarms (windows where no
// single metric alarms and the score reaches T; T = 0: none), false and
// true.
func mvJudge(d mvDevice, k, T float32, minZ float32, gated bool) (fpSingle, fpScore, tpSingle, tpScore, attacks int) {
	var st [3]ewStat
	var g mvGate
	for t, v := range d.x {
		single := false
		var s float32
		up := 0
		for i, m := range mvMetrics {
			if st[i].n < minSamples {
				continue
			}
			hi := bound(st[i].med, st[i].mad, k, metrics[m])
			if v[i] >= metrics[m].minCount && v[i] > hi {
				single = true
			}
			if z2 := zSquared(v[i], &st[i], k, metrics[m], minZ); z2 > 0 {
				s += z2
				up++
			}
		}
		if up < 2 { // as the detector: one metric alone is judged by its bound
			s = 0
		}
		// The first day learns: no score alarm, every window teaches the
		// gate; then the windows that alarm are left out of it, as floods
		// are clipped.
		score := t >= 1440 && !single && T > 0 && s >= T && (!gated || g.armed(1440))
		if gated && !score {
			g.push(s >= T, 1440)
		}
		if t >= 1440 {
			if d.attack[t] {
				attacks++
				if single {
					tpSingle++
				} else if score {
					tpScore++
				}
			} else if single {
				fpSingle++
			} else if score {
				fpScore++
			}
		}
		for i, m := range mvMetrics {
			st[i].push(v[i], bound(st[i].med, st[i].mad, k, metrics[m]))
		}
	}
	return
}

// TestMultivariateScore prints the comparison of thresholds of the score
// and checks the kept one (DefaultMultivariate) within the budget of one
// false alarm per device-day on every shape.
func TestMultivariateScore(t *testing.T) {
	normal := mvSynthetic(3)
	days := float64(len(normal[0].x)-1440) / 1440
	k := float32(DefaultK)
	type row struct {
		T, minZ float32
		gated   bool
	}
	rows := []row{{0, 0, false}, {36, 0, false}, {50, 0, false}, {72, 0, false}, {36, 3, false}, {50, 3, false}, {72, 3, false},
		{25, 3, true}, {36, 3, true}, {50, 3, true}}
	for _, rw := range rows {
		line := fmt.Sprintf("T=%-4.0f min z=%.0f gated=%v |", rw.T, rw.minZ, rw.gated)
		worst := 0.0
		byShape := map[string]float64{}
		var order []string
		for _, d := range normal {
			fs, fsc, _, _, _ := mvJudge(d, k, rw.T, rw.minZ, rw.gated)
			if _, ok := byShape[d.shape]; !ok {
				order = append(order, d.shape)
			}
			byShape[d.shape] += float64(fs+fsc) / 5 / days
		}
		for _, sh := range order {
			line += fmt.Sprintf(" %s %.2f", sh, byShape[sh])
			worst = max(worst, byShape[sh])
		}
		line += " | caught (single + score):"
		for _, f := range []float32{1.5, 2, 3} {
			var ts, tsc, n int
			for _, d := range mvWithAttacks(normal, f) {
				_, _, a, b, c := mvJudge(d, k, rw.T, rw.minZ, rw.gated)
				ts, tsc, n = ts+a, tsc+b, n+c
			}
			line += fmt.Sprintf(" ×%.1f %.0f+%.0f %%", f, 100*float64(ts)/float64(n), 100*float64(tsc)/float64(n))
		}
		t.Log(line)
		if rw.T == DefaultMultivariate && rw.minZ == multivarMinZ && rw.gated && worst > 1 {
			t.Errorf("kept score: %.2f false alarms per device-day on the worst shape, budget 1", worst)
		}
	}
}

// TestCombinedRates runs the score in the detector: a steady device (60
// messages, 150 KB and 12 connections a minute) learns for a day, then a
// minute with 1.9 times of each (every metric under its bound) raises one
// low baseline.combined_rates alert naming the three metrics, and a
// device whose three metrics burst together in normal minutes (the gate)
// raises none for the same. With Multivariate < 0 the steady one raises
// nothing either.
func TestCombinedRates(t *testing.T) {
	minute := func(f *fleet, dev string, at time.Duration, msgs, conns int, bytes float64) {
		for i := 0; i < msgs; i++ {
			fl := map[string]any{"mqtt.topic": "plant/t", "mqtt.payload_size": bytes / float64(msgs)}
			f.send(sensorEv(at+time.Duration(i)*time.Second*59/time.Duration(msgs), "mqtt", "publish", dev, "10.0.6.10", 1883, fl))
		}
		for i := 0; i < conns; i++ {
			f.send(sensorEv(at+time.Duration(i)*time.Second*59/time.Duration(conns), "mqtt", "connect", dev, "10.0.6.10", 1883, map[string]any{"mqtt.client_id": dev}))
		}
	}
	var last *fleet
	run := func(opts Options, dev string, bursty bool) []vigil.Alert {
		f := &fleet{d: New(opts)}
		last = f
		rng := rand.New(rand.NewPCG(5, 6))
		for m := 0; m < 1440+60; m++ {
			msgs, conns := 60+rng.IntN(3)-1, 12+rng.IntN(3)-1
			if bursty && m%60 == 30 { // an hourly report: everything busier at once
				msgs, conns = 120, 24
			}
			minute(f, dev, time.Duration(m)*time.Minute, msgs, conns, float64(msgs)*2500)
		}
		f.alerts = nil
		minute(f, dev, (1440+60)*time.Minute, 114, 23, 114*2500)
		return f.alerts
	}
	// run2 marks the alert normal on the last run's detector and plays the
	// same minute again, an hour later.
	run2 := func(t *testing.T, _ Options, dev string, a vigil.Alert) []vigil.Alert {
		t.Helper()
		if _, err := last.d.MarkNormal(a, false); err != nil {
			t.Fatal(err)
		}
		for m := 1; m <= 60; m++ {
			minute(last, dev, time.Duration(1440+60+m)*time.Minute, 60, 12, 60*2500)
		}
		last.alerts = nil
		minute(last, dev, (1440+121)*time.Minute, 114, 23, 114*2500)
		return last.alerts
	}
	opts := Options{Learn: 24 * time.Hour}
	got := run(opts, "10.0.6.21", false)
	if len(got) != 1 || got[0].RuleID != "baseline.combined_rates" || got[0].Severity != vigil.SeverityLow {
		t.Fatalf("steady device, 1.9 times of everything: got %v, want one low baseline.combined_rates", ruleIDs(got))
	}
	x := got[0].Fields["explanation"].(string)
	for _, want := range []string{"messages 1", "bytes ", "connections ", "score", "10.0.6.21", "under its bound"} {
		if !strings.Contains(x, want) {
			t.Errorf("explanation %q lacks %q", x, want)
		}
	}
	// This is normal: the device's gate closes, the same minute again
	// raises nothing.
	a := got[0]
	a.ID, a.Detector = "c1", Name
	if !IsBaselineAlert(a) {
		t.Fatalf("a combined alert is not one MarkNormal takes")
	}
	if got := run2(t, opts, "10.0.6.21", a); len(got) != 0 {
		t.Errorf("after mark normal: got %v, want nothing", ruleIDs(got))
	}
	if got := run(opts, "10.0.6.22", true); len(got) != 0 {
		t.Errorf("device whose metrics burst together: got %v, want nothing (gated)", ruleIDs(got))
	}
	if got := run(Options{Learn: 24 * time.Hour, Multivariate: -1}, "10.0.6.21", false); len(got) != 0 {
		t.Errorf("score off: got %v", ruleIDs(got))
	}
}
