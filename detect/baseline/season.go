package baseline

import (
	"math"
	"time"
)

// Seasonality: a metric that has been active on a device (a closed window
// at or above its floor) gets an hour-of-day profile, per UTC hour the
// median and absolute deviation of the windows of that hour (the same
// streaming estimate as the flat baseline), and a second one for weekends
// (Saturday and Sunday, UTC), each learning from its own days. Once the
// metric has a week of history, weekday windows are judged against the
// daily profile of their hour; once it has four weeks, weekend windows
// against the weekend profile. Before, the flat baseline judges. The flat median follows a slow daily cycle as drift;
// what the profile adds is the recurring spike, a backup at 02:00 every
// night, which the flat baseline raises every night.
//
// The profile keeps, per hour, the median and deviation as 16-bit
// logarithms (1/2048 of an octave: 0.03 %), 4 bytes an hour, 192 bytes a
// metric with both profiles, and only for the metrics with normal cycles
// (messages, connections, bytes, writes: not failed authentications, idle
// connections or malformed traffic, whose normal is none) that have been
// active.

// seasonal reports whether metric m gets profiles.
func seasonal(m metric) bool {
	return m == metMsgs || m == metConns || m == metBytes || m == metWrites
}

const (
	seasonDaily  = 7 * 24 * time.Hour  // history before the hour-of-day profile judges
	seasonWeekly = 28 * 24 * time.Hour // history before the weekend profile judges
)

// season is the profile of one metric of one device.
type season struct {
	first int64 // window index of the first window learned
	day   [24][2]uint16
	end   [24][2]uint16
	n     [2][24]uint8 // windows learned per hour (daily, weekend), saturating: the warm-up
}

// seasons are a device's profiles, by metric; allocated when a metric is
// first active.
type seasons [numMetric]*season

// qlog encodes a non-negative value as 1/2048 octaves of x+1.
func qlog(x float32) uint16 {
	if x <= 0 {
		return 0
	}
	v := math.Log2(float64(x)+1) * 2048
	if v >= math.MaxUint16 {
		return math.MaxUint16
	}
	return uint16(v + 0.5)
}

// qexp decodes qlog.
func qexp(q uint16) float32 {
	return float32(math.Exp2(float64(q)/2048) - 1)
}

// hourOf returns the UTC hour and whether it is a weekend, of a window.
func hourOf(win int64, window time.Duration) (int, bool) {
	t := time.Unix(0, win*int64(window)).UTC()
	wd := t.Weekday()
	return t.Hour(), wd == time.Saturday || wd == time.Sunday
}

// push learns a closed window x of window index win into the hour's
// profile: the weekend one on Saturdays and Sundays, the daily one on the
// other days.
func (s *season) push(win int64, x float32, p metricParams, k float32, window time.Duration) {
	h, weekend := hourOf(win, window)
	// The warm-up weight of an hour: how many of its windows the profile
	// has seen, roughly (days × windows an hour).
	perHour := max(float64(time.Hour/window), 1)
	age := time.Duration(win-s.first) * window
	if weekend {
		pushBucket(&s.end[h], &s.n[1][h], x, perHour, age >= seasonWeekly, p, k)
	} else {
		pushBucket(&s.day[h], &s.n[0][h], x, perHour, age >= seasonDaily, p, k)
	}
}

// pushBucket learns x into one hour of a profile, which has learned n
// windows, clipped to the bound of the hour once the profile judges
// (mature), as the flat baseline clips.
func pushBucket(b *[2]uint16, n *uint8, x float32, perHour float64, mature bool, p metricParams, k float32) {
	if *n < math.MaxUint8 {
		*n++
	}
	seen := float64(*n)
	st := ewStat{med: qexp(b[0]), mad: qexp(b[1])}
	lim := float32(0)
	if mature {
		lim = bound(st.med, st.mad, k, p)
	}
	// The hour's windows of about three days (at most the last 255: 10 s
	// windows remember less): a spike of ten minutes every night stays in
	// its hour's deviation, and the median of the hour stays its usual
	// windows'.
	rate := float32(max(1/seen, 1/(3*perHour)))
	step := max(st.mad, 1) * rate * 2
	if lim > 0 && x > lim {
		x = lim
	}
	switch {
	case seen <= 1:
		st.med, st.mad = x, 0
	case x > st.med:
		st.med += min(step, x-st.med)
	case x < st.med:
		st.med -= min(step, st.med-x)
	}
	d := float32(math.Abs(float64(x - st.med)))
	st.mad += rate * (d - st.mad)
	b[0], b[1] = qlog(st.med), qlog(st.mad)
}

// profile returns the median and deviation that judge window win, and
// the profile's name: "daily" or "weekend"; ok false while the flat
// baseline judges.
func (s *season) profile(win int64, window time.Duration) (med, mad float32, name string, ok bool) {
	age := time.Duration(win-s.first) * window
	if age < seasonDaily {
		return 0, 0, "", false
	}
	h, weekend := hourOf(win, window)
	switch {
	case !weekend:
		return qexp(s.day[h][0]), qexp(s.day[h][1]), "daily", true
	case age >= seasonWeekly:
		return qexp(s.end[h][0]), qexp(s.end[h][1]), "weekend", true
	}
	return 0, 0, "", false // a weekend before four weeks: flat
}

// learnSeason feeds the closed window win of e (counts x) to its profiles,
// making one for a metric active for the first time.
func (p *part) learnSeason(e *entity, win int64, x *[numMetric]float32) {
	k := float32(p.opts.K)
	for m := range numMetric {
		if !seasonal(m) {
			continue
		}
		var s *season
		if e.seas != nil {
			s = e.seas[m]
		}
		if s == nil {
			if x[m] < metrics[m].minCount {
				continue
			}
			if e.seas == nil {
				e.seas = &seasons{}
			}
			s = &season{first: win}
			e.seas[m] = s
		}
		s.push(win, x[m], metrics[m], k, p.opts.Window)
	}
}
