package baseline

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/vigil-iot/vigil"
)

// This file holds the learned ranges of the parameters a device's twin or
// shadow carries (events of kind twin, proto/twin): the range of each
// numeric parameter is learned from the values the device reports, and
// from the values set for it while it learns; once learned, a value set
// for it (a desired value) outside the range widened by a margin raises
// an alert naming the parameter, the value, the range and who set it.
// docs/anomaly.md says why a widened minimum and maximum and not a median
// and absolute deviation.

// twinKind is the event kind of twin and shadow updates (proto/twin.Kind;
// the detector does not import the decoder).
const twinKind = "twin"

// maxParams bounds the parameters learned per device; past it a parameter
// that is set (desired) takes the place of one only ever reported, the
// least learned; others are neither learned nor judged (Stats().Saturate
// counts them). Eight keep a device's full state within 4 KB
// (docs/benchmarks.md).
const maxParams = 8

// minParamValues is how many values of a parameter must have been learned
// before values set for it are judged.
const minParamValues = 3

// paramMargin widens a learned range on each side by this share of its
// width (or of its magnitude, for a range of one value: paramFloor).
const paramMargin = 0.25

// paramFloor is the least width a range is judged with, as a share of its
// largest magnitude: a parameter always reported at 21 accepts 19.95 to
// 22.05 (21 ± 0.25 × 0.2 × 21), not only 21.
const paramFloor = 0.2

// Fields set on a twin event with a value outside its learned range.
const (
	FieldTwinOutOfRange = "baseline.twin_out_of_range" // true
	FieldTwinParam      = "baseline.twin_param"        // the parameter's path (the worst, when several)
)

// paramSetFlag in paramRange.n says the parameter was set (desired) at
// least once.
const paramSetFlag = 1 << 31

// paramRange is what a device's values taught of one parameter, in 16
// bytes: the bounds are float32, rounded outwards, which a range judged
// with a margin of a quarter of its width does not notice.
type paramRange struct {
	name   uint32 // hash of the parameter's path
	n      uint32 // values learned; paramSetFlag: set at least once
	lo, hi float32
}

// paramSet is a device's parameter ranges, allocated with its first twin
// event.
type paramSet struct {
	r   [maxParams]paramRange
	len uint8
}

func (r *paramRange) count() uint32 { return r.n &^ paramSetFlag }

// width is the width a range is judged with: its own, at least paramFloor
// of its magnitude, at least a tiny absolute one.
func (r *paramRange) width() float64 {
	lo, hi := float64(r.lo), float64(r.hi)
	return max(hi-lo, paramFloor*max(math.Abs(lo), math.Abs(hi)), 1e-9)
}

// bounds returns the accepted range: the learned one widened by
// paramMargin of its width on each side.
func (r *paramRange) bounds() (lo, hi float64) {
	m := paramMargin * r.width()
	return float64(r.lo) - m, float64(r.hi) + m
}

// down and up round x to a float32 not above, not below it.
func down(x float64) float32 {
	f := float32(x)
	if float64(f) > x {
		f = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	return f
}

func up(x float64) float32 {
	f := float32(x)
	if float64(f) < x {
		f = math.Nextafter32(f, float32(math.Inf(1)))
	}
	return f
}

func (r *paramRange) learn(x float64) {
	lo, hi := down(x), up(x)
	if r.count() == 0 {
		r.lo, r.hi = lo, hi
	} else {
		r.lo, r.hi = min(r.lo, lo), max(r.hi, hi)
	}
	if r.count() < paramSetFlag-1 {
		r.n++
	}
}

// find returns the range of the parameter named h, nil when not kept.
func (ps *paramSet) find(h uint32) *paramRange {
	for i := range ps.r[:ps.len] {
		if ps.r[i].name == h {
			return &ps.r[i]
		}
	}
	return nil
}

// add returns a new range for the parameter named h: a free one, or for a
// parameter that is set (set), the least learned of those never set. Nil
// when there is none.
func (ps *paramSet) add(h uint32, set bool) *paramRange {
	if int(ps.len) < maxParams {
		ps.len++
		r := &ps.r[ps.len-1]
		*r = paramRange{name: h}
		return r
	}
	if !set {
		return nil
	}
	var victim *paramRange
	for i := range ps.r {
		r := &ps.r[i]
		if r.n&paramSetFlag == 0 && (victim == nil || r.count() < victim.count()) {
			victim = r
		}
	}
	if victim != nil {
		*victim = paramRange{name: h}
	}
	return victim
}

// paramHash is the hash a parameter's path is kept under.
func paramHash(path string) uint32 { return uint32(nameHash(path)) }

// twinParam is one parameter of a twin event.
type twinParam struct {
	path    string
	desired bool
	x       float64
}

// twinParams returns the numeric parameters of a twin event, in path
// order (so that which ones fit within maxParams does not depend on map
// order).
func twinParams(ev *vigil.Event) []twinParam {
	var out []twinParam
	for k, v := range ev.Fields {
		x, ok := v.(float64)
		if !ok || math.IsNaN(x) || math.Abs(x) > math.MaxFloat32 {
			continue
		}
		if p, ok := strings.CutPrefix(k, "twin.desired."); ok && p != "" {
			out = append(out, twinParam{path: p, desired: true, x: x})
		} else if p, ok := strings.CutPrefix(k, "twin.reported."); ok && p != "" {
			out = append(out, twinParam{path: p, x: x})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].path != out[j].path {
			return out[i].path < out[j].path
		}
		return !out[i].desired && out[j].desired // reported first: learned before a set value is judged
	})
	return out
}

// twin learns the parameters of a twin event and judges its set values.
func (p *part) twin(ev *vigil.Event, e *entity, t int64, enrich bool) {
	params := twinParams(ev)
	if len(params) == 0 {
		return
	}
	j := p.judgeOf(e, t)
	type out struct {
		tp     twinParam
		r      paramRange
		excess float64 // distance outside the learned range, in widths
	}
	var outs []out
	if e.params == nil {
		e.params = &paramSet{}
	}
	for _, tp := range params {
		h := paramHash(tp.path)
		r := e.params.find(h)
		if r == nil {
			if r = e.params.add(h, tp.desired); r == nil {
				p.saturated++
				continue
			}
		}
		if tp.desired {
			r.n |= paramSetFlag
		}
		if j != judgeDevice || r.count() < minParamValues {
			// Learning (or a parameter not learned enough to judge):
			// what is reported and what is set are both learned.
			if j == judgeNone && tp.desired && !p.learnOnly {
				p.held++
			}
			r.learn(tp.x)
			continue
		}
		lo, hi := r.bounds()
		if tp.x >= lo && tp.x <= hi {
			if !tp.desired {
				r.learn(tp.x) // a reported value within the bound extends the range
			}
			continue
		}
		if tp.desired {
			d := max(float64(r.lo)-tp.x, tp.x-float64(r.hi))
			outs = append(outs, out{tp: tp, r: *r, excess: d / r.width()})
		}
		// A value outside the bound is not learned: the baseline does not
		// learn what it alerts on (an analyst's "learn" feedback, or a
		// reset, makes a new range normal).
	}
	if len(outs) == 0 {
		return
	}
	sort.SliceStable(outs, func(i, j int) bool { return outs[i].excess > outs[j].excess })
	worst := outs[0]
	if enrich {
		ev.Fields[FieldTwinOutOfRange] = true
		ev.Fields[FieldTwinParam] = worst.tp.path
	}
	p.pending = append(p.pending, p.twinAlert(ev, e, worst.tp, worst.r, worst.excess, len(outs)))
}

// twinRule is the rule id of the alerts of values set outside their range.
const twinRule = "baseline.twin_param_out_of_range"

// learnParam folds x into the range of e's parameter path (feedback: an
// analyst said the value is normal for the device).
func (p *part) learnParam(e *entity, path string, x float64) {
	if math.IsNaN(x) || math.Abs(x) > math.MaxFloat32 {
		return
	}
	if e.params == nil {
		e.params = &paramSet{}
	}
	h := paramHash(path)
	r := e.params.find(h)
	if r == nil {
		if r = e.params.add(h, true); r == nil {
			return
		}
	}
	r.n |= paramSetFlag
	r.learn(x)
}

// twinSetter says who set a twin event's values: the platform user, the
// MQTT client that published it, or its sender's address.
func twinSetter(ev *vigil.Event) (who string, entities []string) {
	if u, _ := ev.Fields["user.name"].(string); u != "" {
		who, entities = "user "+u, append(entities, "user:"+u)
	}
	if c, _ := ev.Fields["mqtt.client_id"].(string); c != "" {
		if who == "" {
			who = "MQTT client " + c
		}
		entities = append(entities, "mqtt.client_id:"+c)
	}
	if nw := ev.Network; nw != nil && nw.SrcIP.IsValid() {
		if who == "" {
			who = nw.SrcIP.String()
		} else {
			who += " from " + nw.SrcIP.String()
		}
		entities = append(entities, "ip:"+nw.SrcIP.String())
	}
	if who == "" {
		who = "an unknown setter"
	}
	return who, entities
}

func fmtNum(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }

// twinAlert is the alert of a value set outside its learned range. Its
// severity grows with the distance outside the range, in widths of the
// range: low within one, medium within four, high beyond (one more for
// sensitive classes).
func (p *part) twinAlert(ev *vigil.Event, e *entity, tp twinParam, r paramRange, excess float64, n int) vigil.Alert {
	sev := vigil.SeverityLow
	switch {
	case excess >= 4:
		sev = vigil.SeverityHigh
	case excess >= 1:
		sev = vigil.SeverityMedium
	}
	if sensitiveClass(e.cohort.class) {
		sev = min(sev+1, vigil.SeverityCritical)
	}
	lo, hi := r.bounds()
	who, entities := twinSetter(ev)
	platform, _ := ev.Fields["twin.platform"].(string)
	fields := p.baselineFields(e, judgeDevice, float64(r.count()))
	fields["baseline.feature"] = "twin." + tp.path
	fields["baseline.entity"] = e.key
	fields["baseline.observed"] = tp.x
	fields["baseline.learned_min"] = float64(r.lo)
	fields["baseline.learned_max"] = float64(r.hi)
	fields["baseline.expected_min"] = lo
	fields["baseline.expected_max"] = hi
	fields["baseline.expected"] = fmt.Sprintf("%s to %s (learned %s to %s from %d values, widened by %g of the range)", fmtNum(lo), fmtNum(hi), fmtNum(float64(r.lo)), fmtNum(float64(r.hi)), r.count(), paramMargin)
	fields[FieldTwinParam] = tp.path
	fields["twin.set_by"] = who
	if platform != "" {
		fields["twin.platform"] = platform
	}
	if n > 1 {
		fields["baseline.twin_params_out_of_range"] = float64(n)
	}
	fields["explanation"] = fmt.Sprintf("%s set %s of %s to %s, outside the range it learned: %s to %s over %d values (accepted %s to %s; judged against the device's own baseline, %s learned)",
		who, tp.path, e.key, fmtNum(tp.x), fmtNum(float64(r.lo)), fmtNum(float64(r.hi)), r.count(), fmtNum(lo), fmtNum(hi), learnedFor(e, judgeDevice))
	return vigil.Alert{
		DedupKey: Name + ":twin." + tp.path + ":" + e.key,
		RuleID:   twinRule,
		Title:    "Twin parameter " + tp.path + " of " + e.key + " set to " + fmtNum(tp.x) + ", outside its learned range " + fmtNum(float64(r.lo)) + " to " + fmtNum(float64(r.hi)),
		Severity: sev,
		Tags:     []string{"baseline.twin", "attack.t0836"},
		DeviceID: ev.DeviceID,
		Entities: entities,
		Fields:   fields,
	}
}
