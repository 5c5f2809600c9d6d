package baseline

import "math"

// histLen bounds the empty windows pushed after a silence.
const histLen = 32

// madScale turns a median absolute deviation into the standard deviation
// of a normal distribution with the same spread.
const madScale = 1.4826

// ewStat is the rate baseline of one metric of a device or a cohort: a
// streaming estimate of the median by stochastic approximation (each
// window moves it a step towards its value, the step proportional to the
// spread) and an exponentially weighted mean absolute deviation from it.
// A window above the upper bound enters clipped to it (winsorized), so a
// flood does not teach the baseline that floods are normal, while a lasting
// change moves the median within tens of windows (drift is absorbed). It
// takes 12 bytes whatever the history. docs/anomaly.md says why it was
// kept over an exact median/MAD of the last windows and a mean/stddev.
type ewStat struct {
	med float32
	mad float32
	n   uint32
}

// ewRate is the weight of one window in ewStat.
const ewRate = 0.05

func (e *ewStat) push(x, lim float32) {
	if lim > 0 && x > lim && e.n >= minSamples {
		x = lim
	}
	e.n++
	if e.n == 1 {
		e.med, e.mad = x, 0
		return
	}
	rate := float32(ewRate)
	if e.n < 20 { // warm up faster
		rate = 1 / float32(e.n)
	}
	step := max(e.mad, 1) * rate * 2
	switch {
	case x > e.med:
		e.med += min(step, x-e.med)
	case x < e.med:
		e.med -= min(step, e.med-x)
	}
	d := float32(math.Abs(float64(x - e.med)))
	e.mad += rate * (d - e.mad)
}

// metricParams are the floors that keep a quiet metric from alerting on
// noise: a device that sends one message a minute and then three is not a
// flood.
type metricParams struct {
	name      string
	minCount  float32 // a window must reach this to be judged at all
	minSpread float32 // least spread (in the metric's unit) behind the bound
}

// bound returns the upper bound of normal for a metric with median med and
// median absolute deviation mad: med + k × max(1.4826 × mad, 25 % of med,
// the metric's least spread). The spread floor in proportion to the median
// is what keeps a steady poller (MAD 0) from alerting on a 10 % jitter.
func bound(med, mad, k float32, p metricParams) float32 {
	spread := max(madScale*mad, 0.25*med, p.minSpread)
	return med + k*spread
}

// zSquared is the square of how many robust spreads (as bound computes
// them) a window's count x lies above the median: what one metric adds to
// the multivariate score. A count below the metric's floor, or less than
// minZ spreads above the median, adds nothing: the score sums what is
// clearly up, not the noise of every metric.
func zSquared(x float32, s *ewStat, k float32, p metricParams, minZ float32) float32 {
	if x < p.minCount || s.n < minSamples {
		return 0
	}
	spread := max(madScale*s.mad, 0.25*s.med, p.minSpread)
	z := (x - s.med) / spread
	if z < minZ {
		return 0
	}
	return z * z
}

// mvGate learns how often a device's windows reach the multivariate
// threshold when nothing is wrong: an exponentially weighted share of
// windows (a day's weight) fed with the windows that did not alarm. A
// device whose metrics move together (a busy minute is busy in messages,
// bytes and connections at once) reaches the threshold in normal bursts;
// the score is armed only for devices where that is rarer than the budget
// of half a false alarm a day.
type mvGate struct {
	rate float32 // share of windows at or above the threshold
	n    uint32  // windows seen, for the warm-up
}

// The gate weighs a window 1/perDay (a day's memory) once warm.

func (g *mvGate) push(over bool, perDay float32) {
	g.n++
	a := max(1/float32(g.n), 1/perDay)
	x := float32(0)
	if over {
		x = 1
	}
	g.rate += a * (x - g.rate)
}

// armed reports whether the score may alarm: the device reached the
// threshold in less than half a window a day (perDay windows a day).
func (g *mvGate) armed(perDay float32) bool {
	return g.n >= minSamples && g.rate*perDay < 0.5
}
