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
