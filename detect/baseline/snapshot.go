package baseline

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strings"
)

// snapshotVersion is the version of the snapshot format.
const snapshotVersion = 1

// maxSnapshot bounds the size of a snapshot Restore reads (a partition at
// MaxDevices is well below it).
const maxSnapshot = 1 << 30

type snapshot struct {
	Version   int          `json:"version"`
	Cohorts   []snapCohort `json:"cohorts"`
	Entities  []snapEntity `json:"entities"`
	Held      uint64       `json:"held"`
	Evicted   uint64       `json:"evicted"`
	Saturated uint64       `json:"saturated"`
	Limited   uint64       `json:"limited"`
}

type snapCohort struct {
	Key    string                `json:"key"`
	Class  string                `json:"class,omitempty"`
	First  int64                 `json:"first"`
	Last   int64                 `json:"last"`
	Events uint64                `json:"events"`
	Ready  bool                  `json:"ready,omitempty"`
	Counts [][2]uint64           `json:"counts,omitempty"` // value hash, members
	Hist   [numMetric][3]float64 `json:"hist"`             // median, MAD, samples
	Gauges [numGauge][3]float64  `json:"gauges"`           // health metrics: median, MAD, samples
	Normal []uint64              `json:"normal,omitempty"` // value hashes an analyst marked normal for the cohort
}

type snapEntity struct {
	Key     string                `json:"key"`
	Cohort  string                `json:"cohort"`
	First   int64                 `json:"first"`
	Last    int64                 `json:"last"`
	Events  uint32                `json:"events"`
	Ready   bool                  `json:"ready,omitempty"`
	Rebase  bool                  `json:"rebase,omitempty"`
	FCount  [numFam]uint8         `json:"fcount"`
	Vals    []uint64              `json:"vals,omitempty"`
	NovWin  int64                 `json:"nov_win"`
	NovMask uint32                `json:"nov_mask"`
	Win     int64                 `json:"win"`
	Cur     [numMetric]float32    `json:"cur"`
	Alerted [numMetric]uint8      `json:"alerted"`
	Hist    [numMetric][3]float64 `json:"hist"` // median, MAD, samples
	MV      [2]float64            `json:"mv"`   // the multivariate gate: share of windows at the threshold, windows seen
	MVLevel uint8                 `json:"mv_level,omitempty"`
	Season  []snapSeason          `json:"season,omitempty"`
	Tele    *snapTele             `json:"tele,omitempty"`
	Soft    []uint64              `json:"soft,omitempty"` // the software filter's words
	SoftN   uint32                `json:"soft_n,omitempty"`
	Params  []snapParam           `json:"params,omitempty"` // learned ranges of twin parameters
}

type snapParam struct {
	Name uint32  `json:"name"` // hash of the parameter's path
	Lo   float64 `json:"lo"`
	Hi   float64 `json:"hi"`
	N    uint32  `json:"n"` // values learned; the top bit: set at least once
}

type snapSeason struct {
	Metric int        `json:"metric"`
	First  int64      `json:"first"`
	Day    [48]uint16 `json:"day"` // per hour: median, deviation (qlog)
	End    [48]uint16 `json:"end"`
	N      [48]uint8  `json:"n"` // windows learned per hour, daily then weekend
}

type snapTele struct {
	Host   [numGauge][3]float64 `json:"host"` // median, MAD, samples
	Level  [numGauge]uint8      `json:"level"`
	Custom []snapCustom         `json:"custom,omitempty"`
}

type snapCustom struct {
	Name  uint64     `json:"name"` // hash of the metric name
	Hist  [3]float64 `json:"hist"`
	Level uint8      `json:"level"`
}

// Partitions returns the partitions the detector has state for, in order.
func (d *Detector) Partitions() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []int
	for n := range d.parts {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// Snapshot serializes the state of one partition (JSON). It may run
// concurrently with Enrich and Detect: it holds the partition's lock while
// it copies the state. A partition the detector has not seen gives an
// empty snapshot.
func (d *Detector) Snapshot(partition int) ([]byte, error) {
	p := d.part(partition)
	p.mu.Lock()
	s := p.snapshotLocked()
	p.mu.Unlock()
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("cannot snapshot partition %d: %w", partition, err)
	}
	return b, nil
}

// snapshotLocked copies the state of p; p.mu is held. The value slices
// are shared: the partition only ever appends to them or replaces them.
func (p *part) snapshotLocked() snapshot {
	s := snapshot{Version: snapshotVersion, Held: p.held, Evicted: p.evicted, Saturated: p.saturated, Limited: p.limited}
	for _, c := range p.cohorts {
		sc := snapCohort{Key: c.key, Class: c.class, First: c.first, Last: c.last, Events: c.events, Ready: c.ready, Normal: sortedHashes(c.normal)}
		for h, n := range c.counts {
			sc.Counts = append(sc.Counts, [2]uint64{h, uint64(n)})
		}
		sort.Slice(sc.Counts, func(i, j int) bool { return sc.Counts[i][0] < sc.Counts[j][0] })
		for m := range numMetric {
			sc.Hist[m] = c.hist[m].snap()
		}
		for g := range numGauge {
			sc.Gauges[g] = c.gauges[g].snap()
		}
		s.Cohorts = append(s.Cohorts, sc)
	}
	add := func(e *entity) {
		se := snapEntity{Key: e.key, Cohort: e.cohort.key, First: e.first, Last: e.last, Events: e.events, Ready: e.ready, Rebase: e.rebase,
			FCount: e.fcount, Vals: e.vals, NovWin: e.novWin, NovMask: e.novMask, Win: e.win, Cur: e.cur, Alerted: e.alerted}
		for m := range numMetric {
			se.Hist[m] = e.hist[m].snap()
		}
		se.MV, se.MVLevel = [2]float64{float64(e.mv.rate), float64(e.mv.n)}, e.mvLevel
		if e.seas != nil {
			for m, s := range e.seas {
				if s == nil {
					continue
				}
				ss := snapSeason{Metric: m, First: s.first}
				copy(ss.N[:24], s.n[0][:])
				copy(ss.N[24:], s.n[1][:])
				for h := 0; h < 24; h++ {
					ss.Day[2*h], ss.Day[2*h+1] = s.day[h][0], s.day[h][1]
					ss.End[2*h], ss.End[2*h+1] = s.end[h][0], s.end[h][1]
				}
				se.Season = append(se.Season, ss)
			}
		}
		if tl := e.tele; tl != nil {
			st := &snapTele{Level: tl.level}
			for g := range numGauge {
				st.Host[g] = tl.host[g].snap()
			}
			for _, cg := range tl.custom {
				st.Custom = append(st.Custom, snapCustom{Name: cg.name, Hist: cg.st.snap(), Level: cg.level})
			}
			se.Tele = st
		}
		if e.soft != nil { // copied: the filter changes in place
			se.Soft, se.SoftN = append([]uint64(nil), e.soft.bits[:]...), e.soft.n
		}
		if ps := e.params; ps != nil {
			se.Params = []snapParam{} // empty, not absent: the set exists
			for _, r := range ps.r[:ps.len] {
				se.Params = append(se.Params, snapParam{Name: r.name, Lo: float64(r.lo), Hi: float64(r.hi), N: r.n})
			}
		}
		s.Entities = append(s.Entities, se)
	}
	for _, e := range p.ents {
		add(e)
	}
	for _, e := range p.ipents {
		add(e)
	}
	sort.Slice(s.Cohorts, func(i, j int) bool { return s.Cohorts[i].Key < s.Cohorts[j].Key })
	sort.Slice(s.Entities, func(i, j int) bool { return s.Entities[i].Key < s.Entities[j].Key })
	return s
}

// Restore replaces the state of one partition with a snapshot made by
// Snapshot, possibly by another detector on another node. It must not run
// concurrently with Enrich or Detect on that partition. A snapshot that
// does not decode or is inconsistent is rejected whole, and the
// partition's state is left as it was.
func (d *Detector) Restore(partition int, b []byte) error {
	if len(b) > maxSnapshot {
		return fmt.Errorf("cannot restore partition %d: snapshot of %d bytes, more than %d", partition, len(b), maxSnapshot)
	}
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("cannot restore partition %d: %w", partition, err)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("cannot restore partition %d: snapshot version %d, want %d", partition, s.Version, snapshotVersion)
	}
	p := newPart(d.opts)
	p.norms = d.norms
	p.held, p.evicted, p.saturated, p.limited = s.Held, s.Evicted, s.Saturated, s.Limited
	for i, sc := range s.Cohorts {
		if sc.Key == "" || p.cohorts[sc.Key] != nil {
			return fmt.Errorf("cannot restore partition %d: cohort %d: empty or repeated key", partition, i)
		}
		c := &cohort{key: sc.Key, class: sc.Class, first: sc.First, last: sc.Last, events: sc.Events, ready: sc.Ready, counts: make(map[uint64]uint32, len(sc.Counts))}
		for _, kv := range sc.Counts {
			c.counts[kv[0]] = uint32(kv[1])
		}
		if len(sc.Normal) > maxCohortValues {
			return fmt.Errorf("cannot restore partition %d: cohort %d: %d normal values, more than %d", partition, i, len(sc.Normal), maxCohortValues)
		}
		for _, h := range sc.Normal {
			c.markNormal(h)
		}
		for m := range numMetric {
			if err := c.hist[m].restore(sc.Hist[m]); err != nil {
				return fmt.Errorf("cannot restore partition %d: cohort %d: %w", partition, i, err)
			}
		}
		for g := range numGauge {
			if err := c.gauges[g].restoreGauge(sc.Gauges[g]); err != nil {
				return fmt.Errorf("cannot restore partition %d: cohort %d: %w", partition, i, err)
			}
		}
		p.cohorts[c.key] = c
	}
	for i, se := range s.Entities {
		c := p.cohorts[se.Cohort]
		if c == nil {
			return fmt.Errorf("cannot restore partition %d: entity %d: unknown cohort %q", partition, i, se.Cohort)
		}
		e := &entity{key: se.Key, cohort: c, first: se.First, last: se.Last, events: se.Events, ready: se.Ready, rebase: se.Rebase,
			fcount: se.FCount, vals: se.Vals, novWin: se.NovWin, novMask: se.NovMask, win: se.Win, cur: se.Cur, alerted: se.Alerted}
		if len(e.vals) > d.opts.MaxValues {
			return fmt.Errorf("cannot restore partition %d: entity %d: %d values, more than %d", partition, i, len(e.vals), d.opts.MaxValues)
		}
		for m := range numMetric {
			if err := e.hist[m].restore(se.Hist[m]); err != nil {
				return fmt.Errorf("cannot restore partition %d: entity %d: %w", partition, i, err)
			}
		}
		if r, n := se.MV[0], se.MV[1]; math.IsNaN(r) || r < 0 || r > 1 || math.IsNaN(n) || n < 0 {
			return fmt.Errorf("cannot restore partition %d: entity %d: multivariate gate out of range", partition, i)
		}
		e.mv, e.mvLevel = mvGate{rate: float32(se.MV[0]), n: uint32(min(se.MV[1], math.MaxUint32))}, se.MVLevel
		for _, ss := range se.Season {
			if ss.Metric < 0 || ss.Metric >= int(numMetric) || !seasonal(metric(ss.Metric)) || e.seas != nil && e.seas[ss.Metric] != nil {
				return fmt.Errorf("cannot restore partition %d: entity %d: profile of metric %d unknown or repeated", partition, i, ss.Metric)
			}
			if e.seas == nil {
				e.seas = &seasons{}
			}
			s := &season{first: ss.First}
			copy(s.n[0][:], ss.N[:24])
			copy(s.n[1][:], ss.N[24:])
			for h := 0; h < 24; h++ {
				s.day[h] = [2]uint16{ss.Day[2*h], ss.Day[2*h+1]}
				s.end[h] = [2]uint16{ss.End[2*h], ss.End[2*h+1]}
			}
			e.seas[ss.Metric] = s
		}
		if st := se.Tele; st != nil {
			if len(st.Custom) > maxCustom {
				return fmt.Errorf("cannot restore partition %d: entity %d: %d custom metrics, more than %d", partition, i, len(st.Custom), maxCustom)
			}
			e.tele = &telemetry{level: st.Level}
			for g := range numGauge {
				if err := e.tele.host[g].restoreGauge(st.Host[g]); err != nil {
					return fmt.Errorf("cannot restore partition %d: entity %d: %w", partition, i, err)
				}
			}
			for _, sc := range st.Custom {
				cg := customGauge{name: sc.Name, level: sc.Level}
				if err := cg.st.restoreGauge(sc.Hist); err != nil {
					return fmt.Errorf("cannot restore partition %d: entity %d: %w", partition, i, err)
				}
				e.tele.custom = append(e.tele.custom, cg)
			}
		}
		if len(se.Soft) > 0 {
			if len(se.Soft) != softBits/64 {
				return fmt.Errorf("cannot restore partition %d: entity %d: software filter of %d words, want %d", partition, i, len(se.Soft), softBits/64)
			}
			e.soft = &softSet{n: se.SoftN}
			copy(e.soft.bits[:], se.Soft)
		}
		if len(se.Params) > maxParams {
			return fmt.Errorf("cannot restore partition %d: entity %d: %d twin parameters, more than %d", partition, i, len(se.Params), maxParams)
		}
		if se.Params != nil {
			e.params = &paramSet{}
		}
		for _, sp := range se.Params {
			if math.IsNaN(sp.Lo) || math.IsNaN(sp.Hi) || math.Abs(sp.Lo) > math.MaxFloat32 || math.Abs(sp.Hi) > math.MaxFloat32 || sp.Lo > sp.Hi {
				return fmt.Errorf("cannot restore partition %d: entity %d: twin parameter range %v to %v", partition, i, sp.Lo, sp.Hi)
			}
			e.params.r[e.params.len] = paramRange{name: sp.Name, lo: down(sp.Lo), hi: up(sp.Hi), n: sp.N}
			e.params.len++
		}
		if ip, ok := strings.CutPrefix(e.key, "ip:"); ok {
			a, err := netip.ParseAddr(ip)
			if err != nil {
				return fmt.Errorf("cannot restore partition %d: entity %d: invalid address: %w", partition, i, err)
			}
			if p.ipents[a] != nil {
				return fmt.Errorf("cannot restore partition %d: entity %d: repeated", partition, i)
			}
			p.ipents[a] = e
		} else {
			if e.key == "" || p.ents[e.key] != nil {
				return fmt.Errorf("cannot restore partition %d: entity %d: empty or repeated key", partition, i)
			}
			p.ents[e.key] = e
		}
		c.members++
	}
	for _, c := range p.cohorts {
		d.norms.addAll(c.key, c.normal)
	}
	// A call of the stage that took the old partition before this one
	// waits for its lock and then works on the detached state: its event
	// is not learned, and nothing races.
	d.mu.Lock()
	if old := d.parts[partition]; old != nil {
		old.mu.Lock()
		d.parts[partition] = p
		old.mu.Unlock()
	} else {
		d.parts[partition] = p
	}
	d.mu.Unlock()
	return nil
}

func (e *ewStat) snap() [3]float64 {
	return [3]float64{float64(e.med), float64(e.mad), float64(e.n)}
}

// restoreGauge restores a gauge's baseline: its median may be negative
// (a custom metric), unlike a rate's.
func (e *ewStat) restoreGauge(v [3]float64) error {
	for i, x := range v {
		if math.IsNaN(x) || math.Abs(x) > math.MaxFloat32 || i > 0 && x < 0 {
			return fmt.Errorf("telemetry history out of range")
		}
	}
	*e = ewStat{med: float32(v[0]), mad: float32(v[1]), n: uint32(min(v[2], math.MaxUint32))}
	return nil
}

func (e *ewStat) restore(v [3]float64) error {
	for _, x := range v {
		if math.IsNaN(x) || x < 0 || x > math.MaxFloat32 {
			return fmt.Errorf("rate history out of range")
		}
	}
	*e = ewStat{med: float32(v[0]), mad: float32(v[1]), n: uint32(min(v[2], math.MaxUint32))}
	return nil
}
