package baseline

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
)

// The multivariate score: a device's window whose rate metrics are each
// under their bound, but several clearly up at once (more messages, bytes
// and connections than usual together). The score is the sum of the
// squares of the metrics' robust z-scores (zSquared: how many spreads, as
// bound computes them, above the median; K for a metric at its bound),
// counting only the metrics at least multivarMinZ up. It is judged against
// the device's own baseline only, and only for devices whose windows
// seldom reach the threshold when nothing is wrong (mvGate): on a device
// whose metrics move together, a busy minute is busy in every metric, and
// the score would alarm on every burst. docs/anomaly.md has the
// measurement (TestMultivariateScore).

// combinedRule is the rule id of the multivariate alert.
const combinedRule = "baseline.combined_rates"

// windowsPerDay is how many rate windows a day holds.
func (p *part) windowsPerDay() float32 {
	return float32(24 * time.Hour / p.opts.Window)
}

// score is the multivariate score of e's current window: 0 unless at
// least two metrics are up (one metric alone is judged by its bound).
func (p *part) score(e *entity) float32 {
	k := float32(p.opts.K)
	var s float32
	n := 0
	for m := range numMetric {
		if z2 := zSquared(e.cur[m], &e.hist[m], k, metrics[m], multivarMinZ); z2 > 0 {
			s += z2
			n++
		}
	}
	if n < 2 {
		return 0
	}
	return s
}

// closeScore teaches the gate the window that closes (and the empty
// windows after it, up to gap in all). A window that alarmed is left out,
// as floods are clipped from the rate baselines.
func (p *part) closeScore(e *entity, gap int64) {
	if p.opts.Multivariate < 0 {
		return
	}
	perDay := p.windowsPerDay()
	if e.mvLevel == 0 {
		e.mv.push(p.score(e) >= float32(p.opts.Multivariate), perDay)
	}
	for g := int64(1); g < gap; g++ {
		e.mv.push(false, perDay)
	}
}

// judgeScore raises the multivariate alert of e's current window: low at
// the threshold, medium at twice, high at four times (one level more for
// sensitive classes), each once a window, and only when no single metric
// alerted in the window.
func (p *part) judgeScore(ev *vigil.Event, e *entity, t int64) {
	T := float32(p.opts.Multivariate)
	if T < 0 || !e.mv.armed(p.windowsPerDay()) {
		return
	}
	for m := range numMetric {
		if e.alerted[m] > 0 {
			return
		}
	}
	s := p.score(e)
	if s < T || p.judgeOf(e, t) != judgeDevice {
		return
	}
	level := uint8(0)
	for _, f := range [...]float32{1, 2, 4} {
		if s >= f*T {
			level++
		}
	}
	if level <= e.mvLevel {
		return
	}
	e.mvLevel = level
	sev := vigil.SeverityLow + vigil.Severity(level-1)
	if sensitiveClass(e.cohort.class) {
		sev = min(sev+1, vigil.SeverityCritical)
	}
	k := float32(p.opts.K)
	var parts []string
	var n uint32
	for m := range numMetric {
		z2 := zSquared(e.cur[m], &e.hist[m], k, metrics[m], multivarMinZ)
		if z2 == 0 {
			continue
		}
		h := &e.hist[m]
		n = max(n, h.n)
		parts = append(parts, fmt.Sprintf("%s %.0f (median %.1f, bound %.0f, z %.1f)", metrics[m].name, e.cur[m], h.med, bound(h.med, h.mad, k, metrics[m]), sqrt32(z2)))
	}
	fields := p.baselineFields(e, judgeDevice, float64(n))
	fields["baseline.feature"] = "rate.combined"
	fields["baseline.observed"] = float64(s)
	fields["baseline.expected_max"] = float64(T)
	fields["baseline.entity"] = e.key
	fields["baseline.window_seconds"] = p.opts.Window.Seconds()
	fields["baseline.components"] = parts
	fields["baseline.expected"] = "a score under " + strconv.FormatFloat(float64(T), 'f', -1, 32) + " (sum of the squared robust z-scores of the metrics at least " + strconv.Itoa(multivarMinZ) + " spreads up)"
	var entities []string
	peerText := ""
	if nw := ev.Network; nw != nil && nw.SrcIP.IsValid() {
		peer := nw.SrcIP
		if (!strings.HasPrefix(e.key, "ip:") || e.key == "ip:"+nw.SrcIP.String()) && nw.DstIP.IsValid() {
			// As rateAlert: the entity sent the event; its address too.
			peer = nw.DstIP
			entities = append(entities, "ip:"+nw.SrcIP.String())
		}
		fields["baseline.peer"] = peer.String()
		entities = append(entities, "ip:"+peer.String())
		peerText = " (latest peer " + peer.String() + ")"
	}
	fields["explanation"] = fmt.Sprintf("rates together off for %s%s in one %s window: %s; score %.1f, above %.0f while each metric is under its bound (judged against the device baseline, %s learned, over %d windows)",
		e.key, peerText, p.opts.Window, strings.Join(parts, ", "), s, T, learnedFor(e, judgeDevice), n)
	p.pending = append(p.pending, vigil.Alert{
		DedupKey: Name + ":rate.combined:" + e.key,
		RuleID:   combinedRule,
		Title:    "Unusual combination of rates for " + e.key,
		Severity: sev,
		Tags:     []string{"baseline.rate"},
		DeviceID: ev.DeviceID,
		Entities: entities,
		Fields:   fields,
	})
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }
