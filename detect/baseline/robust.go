package baseline

import "math"

// histLen is how many closed windows a device's rate history keeps.
const histLen = 32

// madScale turns a median absolute deviation into the standard deviation
// of a normal distribution with the same spread.
const madScale = 1.4826

// ringStat is the rate history of one metric of one device: the last
// histLen closed windows, from which the median and the median absolute
// deviation are computed exactly when a window closes. A window above the
// upper bound enters the history clipped to it (winsorized), so a flood
// does not teach the baseline that floods are normal, while a lasting
// change moves the median within histLen/2 windows (drift is absorbed).
type ringStat struct {
	v   [histLen]float32
	n   uint8 // windows held, up to histLen
	i   uint8 // next slot
	med float32
	mad float32
}

// push adds a closed window's value, clipped to the current upper bound
// lim (no clipping when lim is 0 or the history is short). The median and
// MAD are recomputed by fold.
func (r *ringStat) push(x, lim float32) {
	if lim > 0 && x > lim && r.n >= minSamples {
		x = lim
	}
	r.v[r.i] = x
	r.i = (r.i + 1) % histLen
	if r.n < histLen {
		r.n++
	}
}

// fold recomputes the median and the MAD of the history.
func (r *ringStat) fold() {
	var a [histLen]float32
	s := a[:r.n]
	copy(s, r.v[:r.n])
	r.med = median(s)
	for j := range s {
		s[j] = float32(math.Abs(float64(s[j] - r.med)))
	}
	r.mad = median(s)
}

// median sorts s in place and returns its median.
func median(s []float32) float32 {
	for i := 1; i < len(s); i++ { // insertion sort: at most 32 values
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	if len(s) == 0 {
		return 0
	}
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// ewStat is the rate baseline of a cohort (and the second method measured,
// see docs/anomaly.md): a streaming estimate of the median by stochastic
// approximation (each value moves it a step towards itself, the step
// proportional to the spread) and an exponentially weighted mean absolute
// deviation. It takes 12 bytes whatever the history, which is why cohorts,
// fed by every member, use it.
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
