package baseline

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/vigil-iot/vigil"
)

// This file holds what agents tell of their host besides connections,
// listeners, processes and logins (features.go): health and custom
// metrics, judged as robust outliers per device (telemetry), and the
// installed software, whose changes are novelties.

// gauge is a health metric an agent samples (not a count per window: each
// sample is a value of its own).
type gauge uint8

const (
	gCPU         gauge = iota // host.cpu.pct
	gMemory                   // host.memory.pct
	gTemperature              // host.temperature
	gConns                    // host.network.connections (established now)
	gRemotes                  // host.network.distinct_remotes
	gEgress                   // host.network.egress.bytes (since the last report)
	numGauge
)

// gaugeParams say how a gauge is judged: its samples must reach minValue
// to be judged at all (a CPU at 12 % against a median of 3 % is no news),
// and the spread behind the bound is at least minSpread and rel × |median|.
type gaugeParams struct {
	field     string
	name      string
	minValue  float32
	minSpread float32
	rel       float32
}

var gauges = [numGauge]gaugeParams{
	gCPU:         {field: "host.cpu.pct", name: "cpu_pct", minValue: 50, minSpread: 5, rel: 0.1},
	gMemory:      {field: "host.memory.pct", name: "memory_pct", minValue: 30, minSpread: 3, rel: 0.05},
	gTemperature: {field: "host.temperature", name: "temperature", minValue: 40, minSpread: 1.5, rel: 0.02},
	gConns:       {field: "host.network.connections", name: "connections", minValue: 20, minSpread: 3, rel: 0.25},
	gRemotes:     {field: "host.network.distinct_remotes", name: "distinct_remotes", minValue: 10, minSpread: 2, rel: 0.25},
	gEgress:      {field: "host.network.egress.bytes", name: "egress_bytes", minValue: 1 << 20, minSpread: 64 << 10, rel: 0.25},
}

// customParams judge an agent's custom metrics (metric.<name>): units
// unknown, so no floor on the value and a small absolute spread.
var customParams = gaugeParams{name: "metric", minValue: float32(math.Inf(-1)), minSpread: 0.01, rel: 0.1}

// maxCustom bounds the custom metrics judged per device; the others are
// not judged (Stats().Saturate counts them).
const maxCustom = 8

// minGaugeSamples is how many samples a gauge needs before it judges.
const minGaugeSamples = 16

// gaugeBound is the upper bound of normal of a gauge: med + k × max(1.4826
// × MAD, rel × |med|, minSpread). Only the upper side is judged: a CPU, a
// temperature or a connection count far below its usual is not an attack
// Vigil knows of.
func gaugeBound(s *ewStat, k float32, gp *gaugeParams) float32 {
	spread := max(madScale*s.mad, gp.rel*float32(math.Abs(float64(s.med))), gp.minSpread)
	return s.med + k*spread
}

// telemetry is what a device's health samples taught: one robust baseline
// per gauge and per custom metric (the same streaming median and absolute
// deviation as rates, winsorized), and the level each alerted at in its
// current excursion above the bound. Allocated with the first health
// sample of a device.
type telemetry struct {
	host   [numGauge]ewStat
	level  [numGauge]uint8
	custom []customGauge
}

type customGauge struct {
	name  uint64 // hash of the metric name
	st    ewStat
	level uint8
}

// pushGauge learns a sample x of a gauge whose bound is lim. A sample
// above the bound moves the median a step towards the bound, and leaves
// the deviation as it is: a sustained excursion (a miner at 100 % CPU) is
// absorbed only as slow drift (hundreds of samples), where clipping alone,
// as for rate windows, would widen the deviation with each sample until
// the excursion fits within ten.
func (e *ewStat) pushGauge(x, lim float32) {
	if e.n < minSamples || x <= lim {
		e.push(x, 0)
		return
	}
	e.n++
	rate := float32(ewRate)
	if e.n < 20 {
		rate = 1 / float32(e.n)
	}
	e.med += min(max(e.mad, 1)*rate*2, lim-e.med)
}

// nameHash is the FNV-1a hash of a custom metric name.
func nameHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// gaugeValue reads a number of a health event (float64 from JSON and the
// agent's converter).
func gaugeValue(ev *vigil.Event, k string) (float32, bool) {
	v, ok := ev.Fields[k].(float64)
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > math.MaxFloat32 {
		return 0, false
	}
	return float32(v), true
}

// telemetry learns the samples of a health event and raises the outliers.
func (p *part) telemetry(ev *vigil.Event, e *entity, t int64) {
	if e.tele == nil {
		e.tele = &telemetry{}
	}
	tl := e.tele
	c := e.cohort
	k := float32(p.opts.K)
	j := p.judgeOf(e, t)
	for g := range numGauge {
		gp := &gauges[g]
		x, ok := gaugeValue(ev, gp.field)
		if !ok {
			continue
		}
		st, jg := &tl.host[g], j
		if jg == judgeDevice && st.n < minGaugeSamples {
			jg = judgeCohort
		}
		if jg == judgeCohort {
			st = &c.gauges[g]
			if st.n < minGaugeSamples {
				jg = judgeNone
			}
		}
		if jg != judgeNone {
			if a, ok := p.judgeGauge(ev, e, jg, gp, gp.field, x, st, &tl.level[g]); ok {
				p.pending = append(p.pending, a)
			}
		}
		tl.host[g].pushGauge(x, gaugeBound(&tl.host[g], k, gp))
		c.gauges[g].pushGauge(x, gaugeBound(&c.gauges[g], k, gp))
	}
	for name := range ev.Fields {
		m, ok := strings.CutPrefix(name, "metric.")
		if !ok || m == "" {
			continue
		}
		x, ok := gaugeValue(ev, name)
		if !ok {
			continue
		}
		h := nameHash(m)
		var cg *customGauge
		for i := range tl.custom {
			if tl.custom[i].name == h {
				cg = &tl.custom[i]
			}
		}
		if cg == nil {
			if len(tl.custom) >= maxCustom {
				p.saturated++
				continue
			}
			tl.custom = append(tl.custom, customGauge{name: h})
			cg = &tl.custom[len(tl.custom)-1]
		}
		if j == judgeDevice && cg.st.n >= minGaugeSamples {
			if a, ok := p.judgeGauge(ev, e, judgeDevice, &customParams, name, x, &cg.st, &cg.level); ok {
				p.pending = append(p.pending, a)
			}
		}
		cg.st.pushGauge(x, gaugeBound(&cg.st, k, &customParams))
	}
}

// sustainRun is how many consecutive samples above the bound make an
// excursion sustained: before, only a sample four times as far from the
// median as the bound alerts, low (a cron job's CPU spike of one sample is
// not a miner). TestTelemetryNoise measured it: alerting every sample
// above the bound at low raised 26 low alerts a device-day on agents with
// an hourly spike.
const sustainRun = 3

// judgeGauge judges one sample x of a gauge against st and returns the
// alert of a new severity in the current excursion (the samples in a row
// above the bound). The severity is low, medium, high above the bound,
// twice and four times as far from the median (one more for sensitive
// classes), once the excursion has lasted sustainRun samples; before, only
// a sample four times as far alerts, low. A sample within the bound ends
// the excursion. state keeps, in its low
// four bits, the severity alerted in the excursion (0: none, else 1 +
// the severity) and in its high four bits the excursion's length.
func (p *part) judgeGauge(ev *vigil.Event, e *entity, j judge, gp *gaugeParams, field string, x float32, st *ewStat, state *uint8) (vigil.Alert, bool) {
	k := float32(p.opts.K)
	hi := gaugeBound(st, k, gp)
	if x <= hi {
		*state = 0
		return vigil.Alert{}, false
	}
	if x < gp.minValue {
		return vigil.Alert{}, false
	}
	run := min(*state>>4+1, 15)
	alerted := *state & 0x0f
	*state = run<<4 | alerted
	level := uint8(0)
	for _, f := range [...]float32{1, 2, 4} {
		if x > st.med+f*(hi-st.med) {
			level++
		}
	}
	sev := vigil.SeverityLow + vigil.Severity(level-1)
	if sensitiveClass(e.cohort.class) {
		sev = min(sev+1, vigil.SeverityCritical)
	}
	if run < sustainRun {
		if level < 3 {
			return vigil.Alert{}, false
		}
		sev = vigil.SeverityLow
	}
	if uint8(sev)+1 <= alerted {
		return vigil.Alert{}, false
	}
	*state = run<<4 | (uint8(sev) + 1)
	feature := "telemetry." + gp.name
	if gp == &customParams {
		feature = "telemetry." + field
	}
	fields := p.baselineFields(e, j, float64(st.n))
	fields["baseline.feature"] = feature
	fields["baseline.observed"] = float64(x)
	fields["baseline.expected_max"] = float64(hi)
	fields["baseline.median"] = float64(st.med)
	fields["baseline.mad"] = float64(st.mad)
	fields["baseline.entity"] = e.key
	fields["baseline.expected"] = fmt.Sprintf("at most %.4g (median %.4g, MAD %.4g, %d samples)", hi, st.med, st.mad, st.n)
	fields["baseline.run"] = float64(run)
	fields["explanation"] = fmt.Sprintf("%s is %.4g on %s, above the expected %.4g for %d samples in a row (judged against the %s baseline, %s learned: median %.4g, MAD %.4g over %d samples)",
		field, x, e.key, hi, run, judgeName(j), learnedFor(e, j), st.med, st.mad, st.n)
	name := gp.name
	if gp == &customParams {
		name = strings.TrimPrefix(field, "metric.")
	}
	return vigil.Alert{
		DedupKey: Name + ":" + feature + ":" + e.key,
		RuleID:   "baseline.telemetry_" + gp.name,
		Title:    "Unusual " + strings.ReplaceAll(name, "_", " ") + " on " + e.key,
		Severity: sev,
		Tags:     []string{"baseline.telemetry"},
		DeviceID: ev.DeviceID,
		Fields:   fields,
	}, true
}

// widenGauge widens the baseline of the gauge an alert's feature names so
// that twice the observed sample is within the bound (feedback).
func (p *part) widenGauge(e *entity, feature string, x float32) bool {
	if e.tele == nil {
		e.tele = &telemetry{}
	}
	k := float32(p.opts.K)
	name := strings.TrimPrefix(feature, "telemetry.")
	widen := func(st *ewStat, gp *gaugeParams) {
		x := 2 * x
		if st.n < minGaugeSamples {
			st.n = minGaugeSamples
		}
		if x > gaugeBound(st, k, gp) {
			st.mad = max(st.mad, (x-st.med)/(k*madScale)*1.01)
		}
	}
	for g := range numGauge {
		if gauges[g].name == name {
			st := &e.tele.host[g]
			if st.n < minGaugeSamples {
				n := st.n
				*st = e.cohort.gauges[g]
				st.n = max(n, st.n)
			}
			widen(st, &gauges[g])
			return true
		}
	}
	m, ok := strings.CutPrefix(name, "metric.")
	if !ok {
		return false
	}
	h := nameHash(m)
	for i := range e.tele.custom {
		if e.tele.custom[i].name == h {
			widen(&e.tele.custom[i].st, &customParams)
			return true
		}
	}
	if len(e.tele.custom) >= maxCustom {
		return false
	}
	e.tele.custom = append(e.tele.custom, customGauge{name: h})
	widen(&e.tele.custom[len(e.tele.custom)-1].st, &customParams)
	return true
}

// softBits is the size in bits of a device's software filter.
const softBits = 8192

// softSet is a Bloom filter of a device's installed software: package
// names and name-version pairs (hashes of famSoftware observations), four
// bits each. A device lists hundreds of packages, more than the learned
// value sets hold; 1 KiB keeps the false "known" rate near 2 % at 500
// packages (1,000 entries), and only for devices whose agent reports
// software.
type softSet struct {
	bits [softBits / 64]uint64
	n    uint32 // entries added
}

func (s *softSet) pos(h uint64, i int) (int, uint64) {
	x := (h + uint64(i)*(h>>33|1)) % softBits
	return int(x / 64), 1 << (x % 64)
}

func (s *softSet) has(h uint64) bool {
	for i := 0; i < 4; i++ {
		w, b := s.pos(h, i)
		if s.bits[w]&b == 0 {
			return false
		}
	}
	return true
}

func (s *softSet) add(h uint64) {
	if s.has(h) {
		return
	}
	for i := 0; i < 4; i++ {
		w, b := s.pos(h, i)
		s.bits[w] |= b
	}
	s.n++
}

// maxSoftware bounds the packages read from one inventory event.
const maxSoftware = 4096

// addSoftware appends an observation per installed package of an
// inventory event (its software field: the JSON list of components the
// agent's converter makes) and per firmware and OS version.
func addSoftware(ev *vigil.Event, out []obs) []obs {
	add := func(name, version string) {
		if name != "" {
			out = append(out, obs{side: subject, fam: famSoftware, a: name, b: version, n: -1})
		}
	}
	if v, _ := ev.Fields["device.firmware.version"].(string); v != "" {
		add("firmware", v)
	}
	if v, _ := ev.Fields["os.version"].(string); v != "" {
		n, _ := ev.Fields["os.name"].(string)
		add("os "+n, v)
	}
	s, _ := ev.Fields["software"].(string)
	if s == "" {
		return out
	}
	var comps []struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal([]byte(s), &comps); err != nil {
		return out // not the converter's list: nothing to learn
	}
	for i, c := range comps {
		if i == maxSoftware {
			break
		}
		add(c.Name, c.Version)
	}
	return out
}

// novelSoftware learns a package of e and reports a finding when it is
// news: a package the device never had (medium), or a version of one it
// had that it never had (low), unless its cohort has it as novel() says.
func (p *part) novelSoftware(e *entity, o *obs, t int64) (finding, bool) {
	if e.soft == nil {
		e.soft = &softSet{}
	}
	h := o.hash()
	if e.soft.has(h) {
		return finding{}, false
	}
	name := obs{fam: famSoftware, a: o.a, n: -1}
	known := e.soft.has(name.hash())
	e.soft.add(h)
	e.soft.add(name.hash())
	c := e.cohort
	have := p.countCohort(c, h)
	j := p.judgeOf(e, t)
	if j == judgeNone {
		if !p.learnOnly {
			p.held++
		}
		return finding{}, false
	}
	others := c.members - 1
	share := 0.0
	if others > 0 {
		share = float64(have) / float64(others)
	}
	switch {
	case j == judgeDevice && share >= p.opts.CohortShare && others >= 2,
		j == judgeCohort && have > 0:
		return finding{}, false
	}
	if _, ok := c.normal[h]; ok {
		return finding{}, false
	}
	sev := vigil.SeverityMedium
	note := "a package the device never had"
	if known {
		sev, note = vigil.SeverityLow, "a changed version of a package the device had"
	}
	if share > 0 && sev > vigil.SeverityLow {
		sev--
	}
	if sensitiveClass(c.class) && sev >= vigil.SeverityMedium {
		sev = min(sev+1, vigil.SeverityCritical)
	}
	return finding{o: o, e: e, j: j, share: share, have: have, sev: sev, note: note}, true
}
