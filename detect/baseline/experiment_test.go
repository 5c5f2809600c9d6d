package baseline

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The measurement behind the choice of the rate method (docs/anomaly.md):
// three methods judge the same series of per-window counts, normal and
// with floods injected, and the test reports false alarms per series-day
// and the share of floods caught. `go test -v -run TestRateMethods
// ./detect/baseline/` prints the table.

// rateMethod is one way of judging a window's count against the history.
type rateMethod interface {
	bound(k float32) float32 // upper bound of normal; 0 while warming up
	push(x float32, k float32)
}

// ringStat (measured, not kept) is the rate history of one metric of one device: the last
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

// ringMethod: exact median/MAD over the last 32 windows.
type ringMethod struct{ r ringStat }

func (m *ringMethod) bound(k float32) float32 {
	if m.r.n < minSamples {
		return 0
	}
	return bound(m.r.med, m.r.mad, k, metrics[metMsgs])
}

func (m *ringMethod) push(x, k float32) {
	m.r.push(x, m.bound(k))
	m.r.fold()
}

// ewMethod is the kept method: the streaming median and EW absolute
// deviation.
type ewMethod struct{ e ewStat }

func (m *ewMethod) bound(k float32) float32 {
	if m.e.n < minSamples {
		return 0
	}
	return bound(m.e.med, m.e.mad, k, metrics[metMsgs])
}

func (m *ewMethod) push(x, k float32) { m.e.push(x, m.bound(k)) }

// meanMethod is the classic non-robust baseline: EWMA mean and standard
// deviation, no winsorizing, the same floors.
type meanMethod struct {
	mean, vr float64
	n        int
}

func (m *meanMethod) bound(k float32) float32 {
	if m.n < minSamples {
		return 0
	}
	sd := math.Sqrt(m.vr)
	return float32(m.mean) + k*max(float32(sd), 0.25*float32(m.mean), metrics[metMsgs].minSpread)
}

func (m *meanMethod) push(x, _ float32) {
	m.n++
	a := 0.05
	if m.n < 20 {
		a = 1 / float64(m.n)
	}
	d := float64(x) - m.mean
	m.mean += a * d
	m.vr = (1 - a) * (m.vr + a*d*d)
}

// series is a per-window count series with the windows that are attacks.
type series struct {
	name   string
	x      []float32
	attack map[int]bool
}

func poisson(r *rand.Rand, l float64) float32 {
	if l > 50 { // normal approximation
		return float32(max(0, math.Round(l+math.Sqrt(l)*r.NormFloat64())))
	}
	L, k, p := math.Exp(-l), 0.0, 1.0
	for {
		p *= r.Float64()
		if p <= L {
			return float32(k)
		}
		k++
	}
}

// synthetic makes 3 days of one-minute windows of several shapes.
func synthetic(seed uint64) []series {
	r := rand.New(rand.NewPCG(seed, 7))
	const n = 3 * 1440
	shapes := []struct {
		name string
		rate func(t int) float64
		over bool // overdispersed: the rate itself varies window to window
	}{
		{"steady poller 60/min", func(int) float64 { return 60 }, false},
		{"poisson 5/min", func(int) float64 { return 5 }, false},
		{"poisson 30/min", func(int) float64 { return 30 }, false},
		{"bursty 30/min (gamma rate)", func(int) float64 { return 30 }, true},
		{"diurnal 30/min ±60 %", func(t int) float64 { return 30 * (1 + 0.6*math.Sin(2*math.Pi*float64(t)/1440)) }, false},
		{"drift 20→60/min over 3 days", func(t int) float64 { return 20 + 40*float64(t)/n }, false},
	}
	var out []series
	for _, sh := range shapes {
		for rep := 0; rep < 5; rep++ {
			s := series{name: sh.name, attack: map[int]bool{}}
			for t := 0; t < n; t++ {
				l := sh.rate(t)
				if sh.over {
					l *= gamma4(r)
				}
				x := poisson(r, l)
				if sh.name == "steady poller 60/min" {
					x = float32(60 + r.IntN(3) - 1)
				}
				s.x = append(s.x, x)
			}
			out = append(out, s)
		}
	}
	return out
}

// gamma4 is a Gamma(4, 1/4) variate: mean 1, coefficient of variation 0.5.
func gamma4(r *rand.Rand) float64 {
	s := 0.0
	for i := 0; i < 4; i++ {
		s -= math.Log(1 - r.Float64())
	}
	return s / 4
}

// withFloods returns copies of ss with a flood of factor f every 97
// windows after the first day (one window each).
func withFloods(ss []series, f float32) []series {
	var out []series
	for _, s := range ss {
		c := series{name: s.name, x: append([]float32(nil), s.x...), attack: map[int]bool{}}
		for t := 1440; t < len(c.x); t += 97 {
			c.x[t] = max(c.x[t]*f, c.x[t]+float32(metrics[metMsgs].minCount)*f)
			c.attack[t] = true
		}
		out = append(out, c)
	}
	return out
}

// judge runs a method over a series and counts, after the first day,
// false alarms and caught attacks.
func judgeSeries(newM func() rateMethod, k float32, s series) (fp, tp, attacks int) {
	m := newM()
	for t, x := range s.x {
		hi := m.bound(k)
		alarm := hi > 0 && x >= metrics[metMsgs].minCount && x > hi
		if t >= 1440 {
			switch {
			case s.attack[t]:
				attacks++
				if alarm {
					tp++
				}
			case alarm:
				fp++
			}
		}
		m.push(x, k)
	}
	return
}

var methods = []struct {
	name string
	new  func() rateMethod
}{
	{"median/MAD, last 32 windows", func() rateMethod { return &ringMethod{} }},
	{"streaming median + EW abs. dev. (kept)", func() rateMethod { return &ewMethod{} }},
	{"EWMA mean/stddev", func() rateMethod { return &meanMethod{} }},
}

// TestRateMethods prints the comparison and checks that the kept method
// stays within the false-alarm budget and catches fourfold floods.
func TestRateMethods(t *testing.T) {
	normal := synthetic(1)
	days := float64(len(normal[0].x)-1440) / 1440
	for _, k := range []float32{4, 6} {
		for mi, m := range methods {
			byShape := map[string][2]int{}
			var order []string
			for _, s := range normal {
				fp, _, _ := judgeSeries(m.new, k, s)
				if _, ok := byShape[s.name]; !ok {
					order = append(order, s.name)
				}
				v := byShape[s.name]
				byShape[s.name] = [2]int{v[0] + fp, v[1] + 1}
			}
			var fps []string
			worst := 0.0
			for _, name := range order {
				v := byShape[name]
				perDay := float64(v[0]) / float64(v[1]) / days
				worst = max(worst, perDay)
				fps = append(fps, fmt.Sprintf("%s %.2f", name, perDay))
			}
			var caught []string
			for _, f := range []float32{2, 4, 10} {
				tp, n := 0, 0
				for _, s := range withFloods(normal, f) {
					_, a, b := judgeSeries(m.new, k, s)
					tp, n = tp+a, n+b
				}
				caught = append(caught, fmt.Sprintf("×%.0f %.0f %%", f, 100*float64(tp)/float64(n)))
				if mi == 1 && k == DefaultK && f == 10 && tp < n*95/100 {
					t.Errorf("kept method, k=%v: caught %d of %d tenfold floods", k, tp, n)
				}
			}
			t.Logf("k=%v %-38s false alarms per series-day: %s | floods caught: %s", k, m.name, strings.Join(fps, ", "), strings.Join(caught, ", "))
			if mi == 1 && k == DefaultK && worst > 1 {
				t.Errorf("kept method, k=%v: %.2f false alarms per series-day, budget 1", k, worst)
			}
		}
	}
	f := os.Getenv("VIGIL_BASELINE_REAL")
	if f == "" {
		f = "testdata/real-mqtt-5s.csv"
	}
	realSeries(t, f)
}

// realSeries judges (and for the kept method checks) the series of a CSV file of per-window counts
// ("series,window,count,attack" lines), made from a capture of real
// clients (docs/anomaly.md says how).
func realSeries(t *testing.T, file string) {
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	byName := map[string]*series{}
	var order []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ",")
		if len(f) != 4 || f[0] == "series" {
			continue
		}
		x, _ := strconv.ParseFloat(f[2], 32)
		s := byName[f[0]]
		if s == nil {
			s = &series{name: f[0], attack: map[int]bool{}}
			byName[f[0]] = s
			order = append(order, f[0])
		}
		if f[3] == "1" {
			s.attack[len(s.x)] = true
		}
		s.x = append(s.x, float32(x))
	}
	for mi, m := range methods {
		var parts []string
		for _, name := range order {
			s := *byName[name]
			// The first 20 windows warm up; judge from there.
			fp, tp, n := judgeWarm(m.new, DefaultK, s, 20)
			if mi == 1 && (fp > 0 || n > 0 && tp == 0) {
				t.Errorf("kept method on real series %s: %d false alarms, %d of %d attack windows caught", name, fp, tp, n)
			}
			parts = append(parts, fmt.Sprintf("%s: false %d, caught %d/%d", name, fp, tp, n))
		}
		t.Logf("real, %-38s %s", m.name, strings.Join(parts, "; "))
	}
}

func judgeWarm(newM func() rateMethod, k float32, s series, warm int) (fp, tp, attacks int) {
	m := newM()
	for t, x := range s.x {
		hi := m.bound(k)
		alarm := hi > 0 && x >= metrics[metMsgs].minCount && x > hi
		if t >= warm {
			switch {
			case s.attack[t]:
				attacks++
				if alarm {
					tp++
				}
			case alarm:
				fp++
			}
		}
		m.push(x, k)
	}
	return
}
