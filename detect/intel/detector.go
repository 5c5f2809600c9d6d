package intel

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect"
	"github.com/vigil-iot/vigil/feeds"
)

// Name is the detector's name in alerts.
const Name = "intel"

// Field lists: where the detector looks, by kind of value.
var (
	// AddrFields hold one address each (besides the event's 5-tuple).
	AddrFields = []string{"source.ip", "destination.ip", "client.ip", "server.ip", "host.ip"}
	// AddrListFields hold lists of addresses (DNS answers).
	AddrListFields = []string{"dns.answers.data"}
	// DomainFields hold host names, matched with their parent domains.
	DomainFields = []string{"dns.question.name", "tls.client.server_name", "tls.sni", "http.host", "url.domain", "destination.domain", "server.domain", "source.domain"}
	// BrokerFields hold an MQTT broker address (a URL, host:port, or host).
	BrokerFields = []string{"mqtt.broker", "mqtt.broker.address", "mqtt.server"}
	// URLFields hold full URLs; an HTTP request's http.host and http.path
	// are also joined into one.
	URLFields = []string{"url.full", "url.original", "http.url"}
	// HashFields hold file hashes (FIM, process executables).
	HashFields = []string{"file.hash.sha256", "file.hash.sha1", "file.hash.md5", "file.hash.sha512",
		"process.hash.sha256", "process.hash.sha1", "process.hash.md5", "hash.sha256"}
)

// Detector matches events against the current indicator Set.
type Detector struct {
	set     atomic.Pointer[Set]
	log     *slog.Logger
	matches prometheus.Counter
	size    prometheus.Gauge
}

var _ detect.Detector = (*Detector)(nil)

// New returns a detector with an empty set. reg, when not nil, gets
// vigil_intel_matches_total and vigil_intel_indicators.
func New(log *slog.Logger, reg prometheus.Registerer) *Detector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Detector{
		log:     log.With("component", "intel"),
		matches: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_intel_matches_total", Help: "Indicator matches raised as alerts."}),
		size:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_intel_indicators", Help: "Indicators in the matching set."}),
	}
	if reg != nil {
		reg.MustRegister(d.matches, d.size)
	}
	d.set.Store(Build(nil))
	return d
}

// Name returns "intel".
func (d *Detector) Name() string { return Name }

// Load builds a new set from indicators and swaps it in; events being
// matched finish against the old one. It is feeds/catalog's onChange.
func (d *Detector) Load(ins []feeds.Indicator) {
	s := Build(ins)
	d.Swap(s)
	d.log.Info("indicator set loaded", "indicators", s.Len(), "skipped", s.Skipped())
}

// Swap installs a set built elsewhere.
func (d *Detector) Swap(s *Set) {
	d.set.Store(s)
	d.size.Set(float64(s.Len()))
}

// Set returns the current set.
func (d *Detector) Set() *Set { return d.set.Load() }

// hit is one matched entry and where it matched.
type hit struct {
	ent   int32
	field string
	value string
}

// Detect looks up the event's observables and emits one alert per matching
// indicator.
func (d *Detector) Detect(_ context.Context, _ int, ev *vigil.Event, emit func(vigil.Alert)) {
	s := d.set.Load()
	if len(s.entries) == 0 {
		return
	}
	t := unix(ev.Time)
	var found []hit
	var h hits
	flush := func(field, value string) {
		for k := range h.n {
			found = append(found, hit{h.at(k), field, value})
		}
		h.n, h.ext = 0, h.ext[:0]
	}
	if n := ev.Network; n != nil {
		if n.SrcIP.IsValid() {
			if s.lookupAddr(n.SrcIP, t, &h); h.n > 0 {
				flush("source.ip", n.SrcIP.String())
			}
		}
		if n.DstIP.IsValid() {
			if s.lookupAddr(n.DstIP, t, &h); h.n > 0 {
				flush("destination.ip", n.DstIP.String())
			}
		}
	}
	if len(ev.Fields) > 0 {
		for _, f := range AddrFields {
			if ev.Network != nil && (f == "source.ip" || f == "destination.ip") {
				continue
			}
			if v, ok := ev.Fields[f].(string); ok {
				if a, err := netip.ParseAddr(v); err == nil {
					if s.lookupAddr(a, t, &h); h.n > 0 {
						flush(f, v)
					}
				}
			}
		}
		for _, f := range AddrListFields {
			forEach(ev.Fields[f], func(v string) {
				if a, err := netip.ParseAddr(v); err == nil {
					if s.lookupAddr(a, t, &h); h.n > 0 {
						flush(f, v)
					}
				}
			})
		}
		for _, f := range DomainFields {
			if v, ok := ev.Fields[f].(string); ok && v != "" {
				host := v
				if f == "http.host" {
					host = stripPort(v)
				}
				if s.lookupDomain(host, t, &h); h.n > 0 {
					flush(f, v)
				}
			}
		}
		for _, f := range BrokerFields {
			if v, ok := ev.Fields[f].(string); ok && v != "" {
				host := brokerHost(v)
				if a, err := netip.ParseAddr(host); err == nil {
					s.lookupAddr(a, t, &h)
				} else {
					s.lookupDomain(host, t, &h)
				}
				if h.n > 0 {
					flush(f, v)
				}
			}
		}
		if len(s.urls) > 0 {
			for _, f := range URLFields {
				if v, ok := ev.Fields[f].(string); ok && v != "" {
					if s.lookupURL(v, t, &h); h.n > 0 {
						flush(f, v)
					}
				}
			}
			if host, ok := ev.Fields["http.host"].(string); ok && host != "" {
				path, _ := ev.Fields["http.path"].(string)
				u := "http://" + host + path
				if q, ok := ev.Fields["http.query"].(string); ok && q != "" {
					u += "?" + q
				}
				if s.lookupURL(u, t, &h); h.n > 0 {
					flush("http.host+http.path", u)
				}
			}
		}
		if len(s.hashes) > 0 {
			for _, f := range HashFields {
				if v, ok := ev.Fields[f].(string); ok && v != "" {
					if s.lookupHash(v, t, &h); h.n > 0 {
						flush(f, v)
					}
				}
			}
		}
	}
	for _, x := range found {
		if !s.condsHold(x.ent, ev) {
			continue
		}
		emit(s.alert(x, ev))
		d.matches.Inc()
	}
}

// condsHold checks an indicator's AND conditions on the event.
func (s *Set) condsHold(i int32, ev *vigil.Event) bool {
	for _, c := range s.entries[i].and {
		if !condHolds(c, ev) {
			return false
		}
	}
	return true
}

func condHolds(c feeds.Cond, ev *vigil.Event) bool {
	anyField := func(fields []string, eq func(string) bool) bool {
		for _, f := range fields {
			if v, ok := ev.FieldString(f); ok && eq(v) {
				return true
			}
		}
		return false
	}
	switch c.Type {
	case feeds.TypePort:
		return anyField([]string{"destination.port", "source.port", "server.port"}, func(v string) bool { return v == c.Value })
	case feeds.TypeFileName:
		return anyField([]string{"file.name", "process.name"}, func(v string) bool { return v == c.Value }) ||
			anyField([]string{"file.path", "process.executable"}, func(v string) bool { return strings.HasSuffix(v, "/"+c.Value) })
	case feeds.TypeIP:
		p, err := netip.ParsePrefix(c.Value)
		if err != nil {
			a, err := netip.ParseAddr(c.Value)
			if err != nil {
				return false
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		return anyField(append([]string{"source.ip", "destination.ip"}, AddrFields...), func(v string) bool {
			a, err := netip.ParseAddr(v)
			return err == nil && p.Contains(a.Unmap())
		})
	case feeds.TypeDomain:
		return anyField(DomainFields, func(v string) bool {
			v = strings.ToLower(stripPort(v))
			return v == c.Value || strings.HasSuffix(v, "."+c.Value)
		})
	case feeds.TypeURL:
		return anyField(URLFields, func(v string) bool { n, err := feeds.NormalizeURL(v); return err == nil && n == c.Value })
	default: // hashes
		return anyField(HashFields, func(v string) bool { return strings.EqualFold(v, c.Value) })
	}
}

func forEach(v any, fn func(string)) {
	switch x := v.(type) {
	case string:
		fn(x)
	case []string:
		for _, s := range x {
			fn(s)
		}
	case []any:
		for _, s := range x {
			if str, ok := s.(string); ok {
				fn(str)
			}
		}
	}
}

func stripPort(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// brokerHost extracts the host of "mqtts://host:8883", "host:1883" or "host".
func brokerHost(v string) string {
	if _, rest, ok := strings.Cut(v, "://"); ok {
		v = rest
	}
	if i := strings.IndexByte(v, '/'); i >= 0 {
		v = v[:i]
	}
	if i := strings.LastIndexByte(v, '@'); i >= 0 {
		v = v[i+1:]
	}
	return stripPort(v)
}

// severityOf maps confidence to severity.
func severityOf(conf int) vigil.Severity {
	switch {
	case conf >= 80:
		return vigil.SeverityHigh
	case conf >= 50:
		return vigil.SeverityMedium
	default:
		return vigil.SeverityLow
	}
}

var typeWords = map[feeds.Type]string{
	feeds.TypeIP: "address", feeds.TypeDomain: "domain", feeds.TypeURL: "URL",
	feeds.TypeMD5: "file hash", feeds.TypeSHA1: "file hash", feeds.TypeSHA256: "file hash", feeds.TypeSHA512: "file hash",
}

func (s *Set) alert(x hit, ev *vigil.Event) vigil.Alert {
	m := s.match(x.ent)
	entity := "ip:"
	switch m.Type {
	case feeds.TypeDomain:
		entity = "domain:"
	case feeds.TypeURL:
		entity = "url:"
	case feeds.TypeIP:
	default:
		entity = "hash:"
	}
	ev0 := x.value
	if m.Type == feeds.TypeDomain {
		ev0 = strings.ToLower(stripPort(x.value))
	}
	title := "Known-bad " + typeWords[m.Type] + " " + x.value + " (feed " + m.Feed
	if m.Name != "" {
		title += ": " + m.Name
	}
	title += ")"
	tags := append([]string{"intel", "intel.feed." + m.Feed}, m.Labels...)
	fields := map[string]any{
		"intel.indicator.id":    m.ID,
		"intel.indicator.type":  string(m.Type),
		"intel.indicator.value": m.Value,
		"intel.feed":            m.Feed,
		"intel.confidence":      float64(m.Confidence),
		"intel.matched.field":   x.field,
		"intel.matched.value":   x.value,
		"event.id":              ev.ID,
		"event.kind":            ev.Kind,
	}
	if m.Name != "" {
		fields["intel.indicator.name"] = m.Name
	}
	if len(m.Labels) > 0 {
		fields["intel.indicator.labels"] = append([]string(nil), m.Labels...)
	}
	expl := &vigil.Explanation{Indicator: &vigil.ExplainedIndicator{
		ID: m.ID, Type: string(m.Type), Value: vigil.CutValue(m.Value), Name: vigil.CutValue(m.Name), Feed: m.Feed,
		Confidence: m.Confidence, Labels: append([]string(nil), m.Labels...), Field: x.field, Matched: vigil.CutValue(x.value),
	}}
	expl.AddEvidence(vigil.ExcerptOf(ev, x.field))
	return vigil.Alert{
		Explanation:    expl,
		DedupKey:       Name + "|" + ev.DeviceID + "|" + m.Feed + "|" + m.ID + "|" + m.Value + "|" + x.value,
		Detector:       Name,
		RuleID:         "intel:" + m.Feed + ":" + m.ID,
		Title:          title,
		Severity:       severityOf(m.Confidence),
		Tags:           tags,
		DeviceID:       ev.DeviceID,
		Entities:       []string{entity + ev0},
		EventIDs:       []string{ev.ID},
		FirstEventTime: ev.Time,
		LastEventTime:  ev.Time,
		Count:          1,
		Fields:         fields,
	}
}
