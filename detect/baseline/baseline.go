package baseline

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect"
)

// Name is the detector's name (Alert.Detector).
const Name = "baseline"

// Defaults of Options.
const (
	DefaultLearn       = 24 * time.Hour
	DefaultWindow      = time.Minute
	DefaultCohortShare = 0.5
	DefaultMaxPerFam   = 24
	DefaultMaxValues   = 96
	DefaultMaxDevices  = 131_072
	DefaultK           = 6
)

// minSamples is how many closed windows a rate history needs before it is
// used; until then the cohort's is.
const minSamples = 8

// maxCohorts bounds the cohorts of a partition; a device whose class,
// vendor and model would make one more stays in its cohort.
const maxCohorts = 1024

// maxCohortPart bounds the class, vendor and model in a cohort key.
const maxCohortPart = 64

// maxCohortValues bounds the value counts a cohort keeps; past it,
// values seen by one member only are dropped.
const maxCohortValues = 4096

// Options configure a Detector. The zero value is usable.
type Options struct {
	// Learn is how long (in event time) a device and a cohort learn before
	// their baselines judge; DefaultLearn when zero.
	Learn time.Duration
	// Window is the length of the rate windows; DefaultWindow when zero.
	Window time.Duration
	// CohortShare is the share of a cohort's members above which a value
	// new to a device is not news; DefaultCohortShare when zero.
	CohortShare float64
	// MaxPerFamily is how many values of one family (peers, topics, ...) a
	// device learns; past it the family is too diverse to judge novelty
	// (a broker's clients) and is no longer judged. DefaultMaxPerFam when zero.
	MaxPerFamily int
	// MaxValues bounds the values a device learns over all families;
	// DefaultMaxValues when zero.
	MaxValues int
	// MaxDevices bounds the devices a partition keeps; past it the least
	// recently seen of a sample is evicted. DefaultMaxDevices when zero.
	MaxDevices int
	// K is how many robust standard deviations above the median a window
	// must be to be anomalous; DefaultK when zero.
	K float64
	// Multivariate is the threshold of the multivariate score of a
	// device's window (the sum of the squares of its rate metrics' robust
	// z-scores); DefaultMultivariate when zero, off when negative.
	Multivariate float64
}

func (o Options) withDefaults() Options {
	if o.Learn <= 0 {
		o.Learn = DefaultLearn
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.CohortShare <= 0 {
		o.CohortShare = DefaultCohortShare
	}
	if o.MaxPerFamily <= 0 {
		o.MaxPerFamily = DefaultMaxPerFam
	}
	if o.MaxValues <= 0 {
		o.MaxValues = DefaultMaxValues
	}
	o.MaxPerFamily = min(o.MaxPerFamily, 255)
	if o.MaxDevices <= 0 {
		o.MaxDevices = DefaultMaxDevices
	}
	if o.K <= 0 {
		o.K = DefaultK
	}
	if o.Multivariate == 0 {
		o.Multivariate = DefaultMultivariate
	}
	return o
}

// Detector is the learned-behaviour detector. See the package
// documentation.
type Detector struct {
	opts  Options
	mu    sync.Mutex
	parts map[int]*part
	norms *cohortNormals // values marked normal per cohort, for cohorts new to a partition (feedback.go)
}

var (
	_ detect.Detector = (*Detector)(nil)
	_ detect.Enricher = (*Detector)(nil)
)

// New returns a detector.
func New(opts Options) *Detector {
	return &Detector{opts: opts.withDefaults(), parts: make(map[int]*part), norms: &cohortNormals{}}
}

// Name returns Name.
func (d *Detector) Name() string { return Name }

// Enrich learns from ev, judges it against the baselines and sets
// baseline.* fields on ev for what is new. The alerts it makes are raised
// by the Detect call that follows for the same event.
//
// The baseline.* names are the detector's: fields under them that came
// with the event (from a source that should not set them) are removed
// first, so a rule matching baseline.new_writer sees only the baseline's
// word.
func (d *Detector) Enrich(_ context.Context, partition int, ev *vigil.Event) {
	for k := range ev.Fields {
		if strings.HasPrefix(k, fieldPrefix) {
			delete(ev.Fields, k)
		}
	}
	p := d.part(partition)
	p.mu.Lock()
	p.process(ev, true)
	p.dirty = true
	p.mu.Unlock()
}

// fieldPrefix is the prefix of the fields Enrich sets.
const fieldPrefix = "baseline."

// listenerField is set, besides baseline.new_port, on the listen event of
// a port the device has never listened on (the shipped count rule
// vigil-net-unexpected-listener counts them).
const listenerField = "baseline.new_listener"

// Detect raises the alerts of ev. When the stage did not call Enrich first
// (the detector used alone), it learns and judges ev itself, without
// setting fields on it.
func (d *Detector) Detect(_ context.Context, partition int, ev *vigil.Event, emit func(vigil.Alert)) {
	p := d.part(partition)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pendingEv != ev {
		p.process(ev, false)
		p.dirty = true
	}
	for _, a := range p.pending {
		emit(a)
	}
	p.pending = p.pending[:0]
	p.pendingEv = nil
}

// Learn learns from ev without judging it: what `vigil detect --learn`
// feeds before FinishLearning.
func (d *Detector) Learn(partition int, ev *vigil.Event) {
	p := d.part(partition)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.learnOnly = true
	p.dirty = true
	p.process(ev, false)
	p.learnOnly = false
	p.pending = p.pending[:0]
	p.pendingEv = nil
}

// FinishLearning ends the learning of every device and cohort known now,
// whatever its length: from the next event on they judge.
func (d *Detector) FinishLearning() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.parts {
		p.mu.Lock()
		p.finish()
		p.dirty = true
		p.mu.Unlock()
	}
}

// Stats are counters of a detector, summed over partitions.
type Stats struct {
	Devices  int    `json:"devices"`
	Cohorts  int    `json:"cohorts"`
	Held     uint64 `json:"held"`     // alerts held back because the baseline was learning
	Evicted  uint64 `json:"evicted"`  // devices evicted for MaxDevices
	Saturate uint64 `json:"saturate"` // values not learned because a family or the device was full
	Limited  uint64 `json:"limited"`  // novelties that raised no alert: their family already alerted for the device in the window
}

// Stats returns the detector's counters.
func (d *Detector) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	var s Stats
	for _, p := range d.parts {
		p.mu.Lock()
		s.Devices += len(p.ents) + len(p.ipents)
		s.Cohorts += len(p.cohorts)
		s.Held += p.held
		s.Evicted += p.evicted
		s.Saturate += p.saturated
		s.Limited += p.limited
		p.mu.Unlock()
	}
	return s
}

func (d *Detector) part(n int) *part {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.parts[n]
	if p == nil {
		p = newPart(d.opts)
		p.norms = d.norms
		d.parts[n] = p
	}
	return p
}

// part is the state of one partition. The stage never runs two calls of
// one partition at once; mu keeps the calls that come from elsewhere
// (analyst feedback, show, reset, checkpoints: feedback.go) off the
// stage's, and is otherwise uncontended.
type part struct {
	mu      sync.Mutex
	opts    Options
	norms   *cohortNormals
	ents    map[string]*entity     // by device id
	ipents  map[netip.Addr]*entity // by address, for devices without an id
	cohorts map[string]*cohort

	pendingEv *vigil.Event
	pending   []vigil.Alert
	learnOnly bool
	dirty     bool // changed since the last checkpoint (feedback.go)

	held, evicted, saturated, limited uint64

	idleOpen map[uint64]struct{} // flows counted idle while open, by flow.id hash (idle.go)

	obs   []obs     // scratch
	found []finding // scratch
}

func newPart(opts Options) *part {
	return &part{opts: opts, ents: make(map[string]*entity), ipents: make(map[netip.Addr]*entity), cohorts: make(map[string]*cohort)}
}

// entity is what a partition knows of one device.
type entity struct {
	key    string // device id, or "ip:<address>"
	cohort *cohort
	first  int64 // event time of the first event, Unix ns
	last   int64 // event time of the latest event
	events uint32
	ready  bool // learning ended by FinishLearning
	rebase bool // the next event starts the rate windows afresh (set by FinishLearning)
	fcount [numFam]uint8
	vals   []uint64 // hashes of the learned values

	novWin  int64  // window of novMask
	novMask uint32 // families that raised a novelty alert in window novWin

	win     int64 // current window index
	cur     [numMetric]float32
	alerted [numMetric]uint8 // per metric, the level alerted in the current window (0: none)
	hist    [numMetric]ewStat

	mv      mvGate // how often the device's windows reach the multivariate threshold
	mvLevel uint8  // the level the multivariate score alerted at in the current window

	seas *seasons   // hour-of-day profiles of active metrics (season.go)
	tele *telemetry // health and custom metrics (host.go), from the first health sample
	soft *softSet   // installed software (host.go), from the first inventory that lists it

	params *paramSet // learned ranges of twin parameters (twin.go), from the first twin event
}

// cohort is what a partition knows of a cohort of devices.
type cohort struct {
	key     string
	class   string
	first   int64
	last    int64
	events  uint64
	ready   bool
	members int32
	counts  map[uint64]uint32 // value hash → members that learned it
	hist    [numMetric]ewStat
	gauges  [numGauge]ewStat    // health metrics of all members (host.go)
	normal  map[uint64]struct{} // values an analyst marked normal for the cohort (feedback.go)
}

// unclassified is the cohort of devices whose class is not known.
const unclassified = "unclassified"

func (p *part) finish() {
	for _, e := range p.ents {
		e.ready, e.rebase = true, true
	}
	for _, e := range p.ipents {
		e.ready, e.rebase = true, true
	}
	for _, c := range p.cohorts {
		c.ready = true
	}
}

func (p *part) cohortFor(key, class string, t int64) *cohort {
	c := p.cohorts[key]
	if c == nil {
		c = &cohort{key: strings.Clone(key), class: strings.Clone(class), first: t, last: t, counts: make(map[uint64]uint32)}
		p.cohorts[c.key] = c
		p.norms.apply(c)
	}
	return c
}

// entityFor returns the entity of a device id (when id is not empty) or of
// an address, making it when new.
func (p *part) entityFor(id string, ip netip.Addr, t int64) *entity {
	var e *entity
	if id != "" {
		e = p.ents[id]
	} else {
		e = p.ipents[ip]
	}
	if e != nil {
		return e
	}
	if len(p.ents)+len(p.ipents) >= p.opts.MaxDevices {
		p.evictOne()
	}
	c := p.cohortFor(unclassified, "", t)
	c.members++
	e = &entity{cohort: c, first: t, last: t, win: t / int64(p.opts.Window)}
	if id != "" {
		e.key = strings.Clone(id)
		p.ents[e.key] = e
	} else {
		e.key = "ip:" + ip.String()
		p.ipents[ip] = e
	}
	return e
}

// evictOne removes the least recently seen of up to 8 devices (map order
// is random: a sampled LRU).
func (p *part) evictOne() {
	var victim *entity
	n := 0
	for _, e := range p.ents {
		if victim == nil || e.last < victim.last {
			victim = e
		}
		if n++; n == 8 {
			break
		}
	}
	n = 0
	for _, e := range p.ipents {
		if victim == nil || e.last < victim.last {
			victim = e
		}
		if n++; n == 8 {
			break
		}
	}
	if victim == nil {
		return
	}
	p.drop(victim)
	p.evicted++
}

func (p *part) drop(e *entity) {
	if ip, ok := strings.CutPrefix(e.key, "ip:"); ok {
		if a, err := netip.ParseAddr(ip); err == nil && p.ipents[a] == e {
			delete(p.ipents, a)
		}
	}
	if p.ents[e.key] == e {
		delete(p.ents, e.key)
	}
	e.cohort.members--
}

// setCohort moves e to the cohort of class, vendor and model, taking its
// values out of the old cohort's counts (a device that hops between
// cohorts must not make its values look common in all of them).
func (p *part) setCohort(e *entity, class, vendor, model string, t int64) {
	class, vendor, model = clip(class), clip(vendor), clip(model)
	key := cohortKey(class, vendor, model)
	if key == e.cohort.key {
		return
	}
	if p.cohorts[key] == nil && len(p.cohorts) >= maxCohorts {
		p.saturated++
		return // stays where it is
	}
	old := e.cohort
	old.members--
	for _, h := range e.vals {
		if n := old.counts[h]; n > 1 {
			old.counts[h] = n - 1
		} else {
			delete(old.counts, h)
		}
	}
	c := p.cohortFor(key, class, t)
	c.members++
	e.cohort = c
	for _, h := range e.vals {
		p.countCohort(c, h)
	}
}

// clip bounds a cohort key part taken from an event.
func clip(s string) string {
	if len(s) > maxCohortPart {
		return s[:maxCohortPart]
	}
	return s
}

// cohortKey is the class, refined by vendor and model when known.
func cohortKey(class, vendor, model string) string {
	if class == "" {
		class = unclassified
	}
	if vendor == "" && model == "" {
		return class
	}
	return class + "/" + vendor + "/" + model
}

func (p *part) countCohort(c *cohort, h uint64) uint32 {
	n, ok := c.counts[h]
	if !ok && len(c.counts) >= maxCohortValues {
		for k, v := range c.counts {
			if v <= 1 {
				delete(c.counts, k)
			}
		}
		if len(c.counts) >= maxCohortValues {
			return 0
		}
	}
	c.counts[h] = n + 1
	return n
}

func (e *entity) has(h uint64) bool {
	for _, v := range e.vals {
		if v == h {
			return true
		}
	}
	return false
}

// judge says how an entity's novelty and rates are judged now.
type judge uint8

const (
	judgeNone   judge = iota // learning: held back
	judgeDevice              // the device's own baseline
	judgeCohort              // the cohort's baseline (a new device of a learned cohort)
)

// judgeOf says which baseline judges e at event time t, if any. How long a
// device or cohort has learned is measured to the latest time it has shown (which only moves forward), not to the event's own time: an
// event dated back into the learning period must not be held back as
// learning.
func (p *part) judgeOf(e *entity, t int64) judge {
	if p.learnOnly {
		return judgeNone
	}
	learn := int64(p.opts.Learn)
	if e.ready || max(t, e.last)-e.first >= learn {
		return judgeDevice
	}
	c := e.cohort
	if c.ready || max(t, c.last)-c.first >= learn {
		return judgeCohort
	}
	return judgeNone
}

// finding is one novelty of an event.
type finding struct {
	o     *obs
	e     *entity
	j     judge
	share float64 // of the cohort's other members that have the value
	have  uint32
	sev   vigil.Severity
	note  string // what kind of news, when the family has several (software)
}

// process learns from ev and judges it. With enrich, it sets baseline.*
// fields on ev. The alerts are left in p.pending for Detect.
func (p *part) process(ev *vigil.Event, enrich bool) {
	p.pending = p.pending[:0]
	p.pendingEv = ev
	t := eventTime(ev)
	if ev.Kind == twinKind && ev.DeviceID == "" {
		return // a twin update of a device not named: nothing to learn it for
	}
	var subj *entity
	switch {
	case ev.DeviceID != "":
		subj = p.entityFor(ev.DeviceID, netip.Addr{}, t)
	case ev.Network != nil && ev.Network.SrcIP.IsValid():
		subj = p.entityFor("", ev.Network.SrcIP, t)
	default:
		return
	}
	if ev.Kind == twinKind {
		// A twin update is about its device's parameters, not its
		// traffic: the MQTT publish that carried it is counted already.
		subj.events++
		subj.last = max(subj.last, t)
		subj.cohort.events++
		subj.cohort.last = max(subj.cohort.last, t)
		p.twin(ev, subj, t, enrich)
		return
	}
	var tgt *entity
	if ev.Network != nil && ev.Network.DstIP.IsValid() && ev.Source == "sensor" {
		tgt = p.entityFor("", ev.Network.DstIP, t)
	}
	if ev.Kind == vigil.KindInventory || ev.Fields["device.class"] != nil {
		class, _ := ev.Fields["device.class"].(string)
		vendor, _ := ev.Fields["device.vendor"].(string)
		model, _ := ev.Fields["device.model"].(string)
		if class != "" || vendor != "" || model != "" {
			p.setCohort(subj, class, vendor, model, t)
		}
	}
	var inc [2][numMetric]float32
	p.obs = extract(ev, p.obs[:0], &inc, p.opts.Window.Seconds())
	if ev.Kind == "flow" && p.idle(ev) {
		inc[subject][metIdle]++
		inc[target][metIdle]++
	}

	ents := [2]*entity{subj, tgt}
	for i, e := range ents {
		if e == nil {
			continue
		}
		e.events++
		e.last = max(e.last, t)
		e.cohort.events++
		e.cohort.last = max(e.cohort.last, t)
		p.rates(ev, e, t, &inc[i])
	}
	if ev.Kind == vigil.KindHealth {
		p.telemetry(ev, subj, t)
	}

	found := p.found[:0] // scratch: an array here would be cleared on every event
	defer func() { p.found = found[:0] }()
	for i := range p.obs {
		o := &p.obs[i]
		e := ents[o.side]
		if e == nil {
			continue
		}
		if f, ok := p.novel(e, o, t); ok {
			found = append(found, f)
		}
	}
	if len(found) == 0 {
		return
	}
	if enrich {
		if ev.Fields == nil {
			ev.Fields = make(map[string]any, len(found))
		}
		for _, f := range found {
			ev.Fields[families[f.o.fam].field] = true
			if f.o.fam == famListen {
				// A listener is a port too (baseline.new_port), but a rule
				// about listeners should not need to tell it from a new
				// destination port: listen events only.
				ev.Fields[listenerField] = true
			}
		}
	}
	// One novelty alert per device and family a window: a device new to
	// its cohort, or a scan, would otherwise raise one per value. The
	// values are learned and the events enriched all the same (a Sigma
	// correlation counts them); Stats().Limited counts them.
	w := t / int64(p.opts.Window)
	alerting := found[:0:0]
	for _, f := range found {
		e := f.e
		if w > e.novWin || e.novMask == 0 {
			e.novWin, e.novMask = w, 0
		}
		if e.novMask&(1<<f.o.fam) != 0 {
			p.limited++
			continue
		}
		alerting = append(alerting, f)
	}
	for _, f := range alerting {
		f.e.novMask |= 1 << f.o.fam
	}
	if len(alerting) == 0 {
		return
	}
	p.pending = append(p.pending, p.noveltyAlert(ev, alerting))
}

// eventTime is the time the baseline uses for ev: its event time, but no
// later than when the server received it (Event.Received, set by ingest;
// zero offline). A device sending a time ahead would move its windows
// there and have the events that follow ignored as old.
func eventTime(ev *vigil.Event) int64 {
	t := ev.Time.UnixNano()
	if !ev.Received.IsZero() {
		if r := ev.Received.UnixNano(); t > r {
			return r
		}
	}
	return t
}

// novel learns the value of o for e and reports a finding when it is news.
func (p *part) novel(e *entity, o *obs, t int64) (finding, bool) {
	if o.fam == famSoftware {
		return p.novelSoftware(e, o, t)
	}
	h := o.hash()
	if e.has(h) {
		return finding{}, false
	}
	if int(e.fcount[o.fam]) >= p.opts.MaxPerFamily || len(e.vals) >= p.opts.MaxValues {
		p.saturated++
		return finding{}, false
	}
	if e.vals == nil {
		e.vals = make([]uint64, 0, 8)
	}
	e.vals = append(e.vals, h)
	e.fcount[o.fam]++
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
	if j == judgeDevice && share >= p.opts.CohortShare && others >= 2 {
		return finding{}, false // common in the cohort: not news
	}
	if j == judgeCohort && have > 0 {
		return finding{}, false // a new device doing what its cohort does
	}
	if _, ok := c.normal[h]; ok {
		return finding{}, false // marked normal for the cohort by an analyst
	}
	sev := families[o.fam].sev
	switch o.fam {
	case famPeerOut, famPeerIn:
		if isPublic(o.peer) {
			sev = vigil.SeverityMedium
		}
	case famModbusFunc:
		if o.n == 5 || o.n == 6 || o.n == 8 || o.n == 15 || o.n == 16 || o.n == 22 || o.n == 23 {
			sev = vigil.SeverityHigh
		}
	}
	if share > 0 && sev > vigil.SeverityLow {
		sev-- // some of the cohort does it
	}
	if sensitiveClass(c.class) && sev >= vigil.SeverityMedium {
		sev = min(sev+1, vigil.SeverityCritical)
	}
	return finding{o: o, e: e, j: j, share: share, have: have, sev: sev}, true
}

// rates adds the event's increments to e's current windows, closing the
// windows that ended, and raises the anomalies of the current window.
func (p *part) rates(ev *vigil.Event, e *entity, t int64, inc *[numMetric]float32) {
	w := t / int64(p.opts.Window)
	c := e.cohort
	k := float32(p.opts.K)
	switch {
	case e.rebase:
		// The first event after FinishLearning: what follows may start at
		// any time (before the learnt events, or days after), so the
		// windows start there; the window in progress is dropped unjudged
		// and no empty windows are counted in between.
		e.rebase = false
		e.cur = [numMetric]float32{}
		e.alerted = [numMetric]uint8{}
		e.mvLevel = 0
		e.win = w
	case w > e.win:
		gap := min(w-e.win, histLen)
		p.closeScore(e, gap)
		p.learnSeason(e, e.win, &e.cur)
		if e.seas != nil {
			var zero [numMetric]float32
			for g := int64(1); g < gap; g++ {
				p.learnSeason(e, e.win+g, &zero)
			}
		}
		for m := range numMetric {
			x := e.cur[m]
			for g := int64(0); g < gap; g++ {
				h := &e.hist[m]
				h.push(x, bound(h.med, h.mad, k, metrics[m]))
				ch := &c.hist[m]
				ch.push(x, bound(ch.med, ch.mad, k, metrics[m]))
				x = 0
			}
		}
		e.cur = [numMetric]float32{}
		e.alerted = [numMetric]uint8{}
		e.mvLevel = 0
		e.win = w
	case w < e.win-1:
		// An event of a window closed already (an agent's spool flushed
		// after an outage, a redelivery) is not counted: its window was
		// judged. Time going back never resets the current window, or a
		// device sending old timestamps between the messages of a flood
		// would hide it.
		return
	}
	for m := range numMetric {
		if inc[m] == 0 {
			continue
		}
		e.cur[m] += inc[m]
		x := e.cur[m]
		if x < metrics[m].minCount || e.alerted[m] >= 3 {
			continue
		}
		j := p.judgeOf(e, t)
		var med, mad float32
		var n uint32
		prof := ""
		switch {
		case j == judgeNone:
			continue
		case j == judgeDevice && e.hist[m].n >= minSamples:
			med, mad, n = e.hist[m].med, e.hist[m].mad, e.hist[m].n
			if e.seas != nil && e.seas[m] != nil {
				if pm, pd, name, ok := e.seas[m].profile(w, p.opts.Window); ok {
					med, mad, prof = pm, pd, name
				} else {
					prof = "flat"
				}
			}
		case c.hist[m].n >= minSamples:
			own := j == judgeDevice && e.hist[m].n > 0
			j = judgeCohort
			med, mad, n = c.hist[m].med, c.hist[m].mad, c.hist[m].n
			// A device that finished learning with fewer than minSamples
			// windows of its own (a short --learn, a window as long as the
			// learning) is judged by the more lenient of its own bound and
			// its cohort's: the cohort pools its members' windows, so its
			// median is that of a typical member (a quiet one, in a cohort
			// of unlike devices such as unclassified), and a rate the device
			// showed in every window it learned is not an outlier because
			// its cohort is quieter; nor are a few windows enough to judge
			// the device by its own alone.
			if h := &e.hist[m]; own && bound(h.med, h.mad, k, metrics[m]) > bound(med, mad, k, metrics[m]) {
				j = judgeDevice
				med, mad, n = h.med, h.mad, h.n
			}
		default:
			continue
		}
		hi := bound(med, mad, k, metrics[m])
		// Levels 1, 2, 3: above the bound, twice and four times as far
		// from the median. Each level alerts once a window, so a flood
		// is raised at once and again as it grows.
		level := uint8(0)
		for _, f := range [...]float32{1, 2, 4} {
			if x > med+f*(hi-med) {
				level++
			}
		}
		if level <= e.alerted[m] {
			continue
		}
		e.alerted[m] = level
		p.pending = append(p.pending, p.rateAlert(ev, e, metric(m), j, x, med, mad, hi, n, level, prof))
	}
	p.judgeScore(ev, e, t)
}

// noveltyAlert makes the alert of an event's novelties; the most severe
// names the alert.
func (p *part) noveltyAlert(ev *vigil.Event, found []finding) vigil.Alert {
	top := 0
	for i, f := range found {
		if f.sev > found[top].sev || f.sev == found[top].sev && f.o.fam == famModbusWriter {
			top = i
		}
	}
	f := found[top]
	fi := families[f.o.fam]
	val := f.o.display()
	e := f.e
	var feats []string
	for _, g := range found {
		feats = append(feats, families[g.o.fam].name+"="+g.o.display()+" ("+g.e.key+")")
	}
	fields := p.baselineFields(e, f.j, sampleCount(e, f.j))
	fields["baseline.feature"] = fi.name
	fields["baseline.observed"] = val
	fields["baseline.entity"] = e.key
	fields["baseline.features"] = feats
	fields[learnedField] = learnedValues(found)
	fields["baseline.cohort_share"] = f.share
	known := int(e.fcount[f.o.fam]) - 1
	if f.o.fam == famSoftware && e.soft != nil {
		known = int(e.soft.n) // package names and versions
	}
	expected := fmt.Sprintf("one of the %d %s values learned for %s; %d of %d other members of cohort %s have it",
		known, fi.name, e.key, f.have, max(e.cohort.members-1, 0), e.cohort.key)
	if f.note != "" {
		expected += " (" + f.note + ")"
	}
	fields["baseline.expected"] = expected
	var entities []string
	if f.o.peer.IsValid() {
		ps := f.o.peer.String()
		fields["baseline.peer"] = ps
		entities = append(entities, "ip:"+ps)
	}
	who := e.key
	if strings.HasPrefix(e.key, "ip:") {
		entities = append(entities, e.key)
	} else if nw := ev.Network; f.o.side == subject && ev.Source == "sensor" && nw != nil && nw.SrcIP.IsValid() {
		// A device the sensor knows by its id (its MAC) sent the event:
		// its address too, so the alert names the host that did it and
		// incidents join on it. (An agent's source.ip may be the other
		// end: a login's client.)
		entities = append(entities, "ip:"+nw.SrcIP.String())
		who += " (" + nw.SrcIP.String() + ")"
	}
	fields["explanation"] = fmt.Sprintf("%s %s is new to %s (judged against the %s baseline, %s learned, %d samples): expected %s",
		fi.title, val, who, judgeName(f.j), learnedFor(e, f.j), int(sampleCount(e, f.j)), expected)
	return vigil.Alert{
		DedupKey: Name + ":" + fi.name + ":" + e.key + ":" + val,
		RuleID:   "baseline.new_" + strings.ReplaceAll(fi.name, ".", "_"),
		Title:    "New " + fi.title + " " + val + " for " + e.key,
		Severity: f.sev,
		Tags:     []string{"baseline.novelty"},
		DeviceID: ev.DeviceID,
		Entities: entities,
		Fields:   fields,
	}
}

// rateAlert makes the alert of a rate. prof is the profile that judged:
// "daily" or "weekend" (the hour's, season.go), "flat" (the metric has a
// profile that does not judge yet), "" (none).
func (p *part) rateAlert(ev *vigil.Event, e *entity, m metric, j judge, x, med, mad, hi float32, n uint32, level uint8, prof string) vigil.Alert {
	mp := metrics[m]
	sev := vigil.SeverityLow + vigil.Severity(level-1)
	if rareMetric(m) || sensitiveClass(e.cohort.class) {
		sev = min(sev+1, vigil.SeverityCritical)
	}
	fields := p.baselineFields(e, j, float64(n))
	fields["baseline.feature"] = "rate." + mp.name
	fields["baseline.observed"] = float64(x)
	fields["baseline.expected_max"] = float64(hi)
	fields["baseline.median"] = float64(med)
	fields["baseline.mad"] = float64(mad)
	fields["baseline.window_seconds"] = p.opts.Window.Seconds()
	fields["baseline.entity"] = e.key
	fields["baseline.expected"] = fmt.Sprintf("at most %.0f %s per %s (median %.1f, MAD %.1f, %d windows)", hi, mp.name, p.opts.Window, med, mad, n)
	// The peer is the other end: the receiver of a sending device's
	// flood, the sender of what floods a receiver (ip: entities).
	// An entity known by address is the event's receiver unless the
	// address is the sender's (a broker refusing a connect is the sender
	// of the refusal: its peer is the client).
	var entities []string
	peerText := ""
	if nw := ev.Network; nw != nil && nw.SrcIP.IsValid() {
		peer := nw.SrcIP
		if (!strings.HasPrefix(e.key, "ip:") || e.key == "ip:"+nw.SrcIP.String()) && nw.DstIP.IsValid() {
			peer = nw.DstIP
			entities = append(entities, "ip:"+nw.SrcIP.String())
		}
		fields["baseline.peer"] = peer.String()
		entities = append(entities, "ip:"+peer.String())
		peerText = " (latest peer " + peer.String() + ")"
	}
	profText := ""
	switch prof {
	case "daily", "weekend":
		h, _ := hourOf(e.win, p.opts.Window)
		profText = fmt.Sprintf(", %s profile for %02d:00-%02d:59 UTC", prof, h, h)
		fields["baseline.profile"] = prof
	case "flat":
		profText = ", flat: the hour-of-day profile judges after 7 days of history"
		fields["baseline.profile"] = prof
	}
	fields["explanation"] = fmt.Sprintf("%.0f %s in one %s window for %s%s, above the expected %.0f (judged against the %s baseline%s, %s learned: median %.1f, MAD %.1f over %d windows)",
		x, mp.name, p.opts.Window, e.key, peerText, hi, judgeName(j), profText, learnedFor(e, j), med, mad, n)
	return vigil.Alert{
		DedupKey: Name + ":rate." + mp.name + ":" + e.key,
		RuleID:   "baseline.rate_" + mp.name,
		Title:    "Unusual rate of " + strings.ReplaceAll(mp.name, "_", " ") + " for " + e.key,
		Severity: sev,
		Tags:     []string{"baseline.rate"},
		DeviceID: ev.DeviceID,
		Entities: entities,
		Fields:   fields,
	}
}

func (p *part) baselineFields(e *entity, j judge, samples float64) map[string]any {
	return map[string]any{
		"baseline.judged_against":  judgeName(j),
		"baseline.cohort":          e.cohort.key,
		"baseline.learned_seconds": learnedDur(e, j).Seconds(),
		"baseline.samples":         samples,
	}
}

func judgeName(j judge) string {
	if j == judgeCohort {
		return "cohort"
	}
	return "device"
}

func learnedDur(e *entity, j judge) time.Duration {
	if j == judgeCohort {
		return time.Duration(e.cohort.last - e.cohort.first)
	}
	return time.Duration(e.last - e.first)
}

func learnedFor(e *entity, j judge) string {
	return learnedDur(e, j).Round(time.Second).String()
}

func sampleCount(e *entity, j judge) float64 {
	if j == judgeCohort {
		return float64(e.cohort.events)
	}
	return float64(e.events)
}

// DefaultMultivariate is the threshold of the multivariate score (the sum
// of the squared robust z-scores of a window's rate metrics); docs/anomaly.md
// says how it was chosen.
const DefaultMultivariate = 36

// multivarMinZ is the least z-score a metric needs to add to the score.
const multivarMinZ = 3
