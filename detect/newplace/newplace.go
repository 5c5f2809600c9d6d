package newplace

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect"
)

// Name is the detector's name (Alert.Detector); RuleID the rule id of its
// alerts.
const (
	Name   = "newplace"
	RuleID = "newplace:login"
)

// Fields the detector adds to login events.
const (
	FieldNewPlace   = "login.new_place"
	FieldNewCountry = "login.new_country"
	FieldNewASN     = "login.new_asn"
	FieldNewNetwork = "login.new_network"
	FieldNetwork    = "login.network"
)

// Defaults of Options.
const (
	DefaultLearn         = 7 * 24 * time.Hour
	DefaultMaxPrincipals = 100000
	DefaultMaxPlaces     = 64
)

// Options configures a Detector.
type Options struct {
	// Learn is how long a principal is learned, from its first login
	// (event time), before a new place alerts (default DefaultLearn).
	Learn time.Duration
	// MaxPrincipals bounds the principals learned per partition (default
	// DefaultMaxPrincipals): further principals are not learned and never
	// alert.
	MaxPrincipals int
	// MaxPlaces bounds the values kept per feature and principal (default
	// DefaultMaxPlaces): the least recently used is forgotten.
	MaxPlaces int
}

// Detector learns login places; it is a detect.Enricher and a
// detect.Detector. It is safe for concurrent use.
type Detector struct {
	o     Options
	mu    sync.Mutex
	parts map[int]*part
}

var (
	_ detect.Detector = (*Detector)(nil)
	_ detect.Enricher = (*Detector)(nil)
)

type part struct {
	mu         sync.Mutex
	principals map[string]*principal
}

type principal struct {
	first time.Time
	// last login time of each value, per feature
	features [3]map[string]time.Time
}

const (
	fCountry = iota
	fASN
	fNetwork
)

var featureNames = [3]string{"country", "asn", "network"}
var featureFields = [3]string{FieldNewCountry, FieldNewASN, FieldNewNetwork}

// New returns a Detector.
func New(o Options) *Detector {
	if o.Learn <= 0 {
		o.Learn = DefaultLearn
	}
	if o.MaxPrincipals <= 0 {
		o.MaxPrincipals = DefaultMaxPrincipals
	}
	if o.MaxPlaces <= 0 {
		o.MaxPlaces = DefaultMaxPlaces
	}
	return &Detector{o: o, parts: map[int]*part{}}
}

// Name implements detect.Detector.
func (d *Detector) Name() string { return Name }

func (d *Detector) part(p int) *part {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.parts[p]
	if s == nil {
		s = &part{principals: map[string]*principal{}}
		d.parts[p] = s
	}
	return s
}

// login returns the principal key and the place of a login event, or ok
// false when ev is not one.
func login(ev *vigil.Event) (key, user string, place [3]string, ok bool) {
	if ev.Outcome != vigil.OutcomeSuccess || (ev.Category != "authentication" && ev.Kind != "auth") || ev.Network == nil || !ev.Network.SrcIP.IsValid() {
		return "", "", place, false
	}
	user, _ = ev.FieldString("user.name")
	if user == "" {
		return "", "", place, false
	}
	prov, _ := ev.FieldString("cloud.provider")
	acct, _ := ev.FieldString("cloud.account.id")
	key = ev.DeviceID + "|" + prov + "|" + acct + "|" + strings.ToLower(user)
	place[fCountry], _ = ev.FieldString("source.geo.country_iso_code")
	place[fCountry] = strings.ToUpper(place[fCountry])
	switch v := ev.Fields["source.as.number"].(type) {
	case float64:
		place[fASN] = strconv.FormatFloat(v, 'f', -1, 64)
	case string:
		place[fASN] = v
	}
	a := ev.Network.SrcIP.Unmap()
	bits := 24
	if a.Is6() {
		bits = 48
	}
	pfx, _ := a.Prefix(bits)
	place[fNetwork] = pfx.String()
	return key, user, place, true
}

// Enrich implements detect.Enricher: it marks a login with
// login.new_place and the new features, then learns its place.
func (d *Detector) Enrich(_ context.Context, partition int, ev *vigil.Event) {
	key, _, place, ok := login(ev)
	if !ok {
		return
	}
	s := d.part(partition)
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.principals[key]
	if p == nil {
		if len(s.principals) >= d.o.MaxPrincipals {
			return
		}
		p = &principal{first: ev.Time}
		for i := range p.features {
			p.features[i] = map[string]time.Time{}
		}
		s.principals[key] = p
	}
	if ev.Fields == nil {
		ev.Fields = map[string]any{}
	}
	ev.Fields[FieldNetwork] = place[fNetwork]
	learned := ev.Time.Sub(p.first) >= d.o.Learn
	isNew := false
	for i, v := range place {
		if v == "" {
			continue
		}
		if _, seen := p.features[i][v]; !seen && learned {
			ev.Fields[featureFields[i]] = true
			isNew = true
		}
		d.learn(p.features[i], v, ev.Time)
	}
	if learned {
		ev.Fields[FieldNewPlace] = isNew
	}
	if isNew {
		// what it knew, for the alert's explanation
		for i := range place {
			if ev.Fields[featureFields[i]] == true {
				ev.Fields["login.known_"+featureNames[i]] = known(p.features[i], place[i], 10)
			}
		}
	}
}

// learn records v at t, forgetting the least recently used value when
// the feature is full.
func (d *Detector) learn(m map[string]time.Time, v string, t time.Time) {
	if old, ok := m[v]; ok {
		if t.After(old) {
			m[v] = t
		}
		return
	}
	if len(m) >= d.o.MaxPlaces {
		var oldest string
		var ot time.Time
		for k, kt := range m {
			if oldest == "" || kt.Before(ot) || kt.Equal(ot) && k < oldest {
				oldest, ot = k, kt
			}
		}
		delete(m, oldest)
	}
	m[v] = t
}

// known lists up to n values of m other than except, most recent first.
func known(m map[string]time.Time, except string, n int) []string {
	var l []string
	for k := range m {
		if k != except {
			l = append(l, k)
		}
	}
	slices.SortFunc(l, func(a, b string) int {
		if c := m[b].Compare(m[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	if len(l) > n {
		l = l[:n]
	}
	return l
}

// Detect implements detect.Detector: one alert for a login Enrich marked
// as from a new place.
func (d *Detector) Detect(_ context.Context, _ int, ev *vigil.Event, emit func(vigil.Alert)) {
	if ev.Fields[FieldNewPlace] != true {
		return
	}
	_, user, place, ok := login(ev)
	if !ok {
		return
	}
	var what []string
	fields := map[string]any{"user.name": user, "source.ip": ev.Network.SrcIP.String(), FieldNetwork: place[fNetwork]}
	newCountry := false
	for i, f := range featureFields {
		if ev.Fields[f] != true {
			continue
		}
		what = append(what, "new "+featureNames[i]+" "+place[i])
		fields[f] = true
		if k, ok := ev.Fields["login.known_"+featureNames[i]].([]string); ok {
			fields["login.known_"+featureNames[i]] = k
			what[len(what)-1] += " (known: " + strings.Join(k, ", ") + ")"
		}
		if i == fCountry {
			newCountry = true
		}
	}
	for _, k := range []string{"source.geo.country_iso_code", "source.as.number", "cloud.provider", "cloud.account.id", "user_agent.original"} {
		if v, ok := ev.Fields[k]; ok {
			fields[k] = v
		}
	}
	sev := vigil.SeverityMedium
	if newCountry {
		sev = vigil.SeverityHigh
	}
	where := "login"
	if p, _ := ev.FieldString("cloud.provider"); p != "" {
		where = strings.ToUpper(p) + " console login"
		if p == "azure" {
			where = "Azure sign-in"
		}
	}
	emit(vigil.Alert{
		Detector:       Name,
		RuleID:         RuleID,
		Title:          "New place: " + where + " of " + user + " from " + ev.Network.SrcIP.String() + ": " + strings.Join(what, "; "),
		Severity:       sev,
		Tags:           []string{"newplace", "attack.initial-access"},
		Techniques:     []string{"T1078"},
		DeviceID:       ev.DeviceID,
		Entities:       []string{"user:" + user, "ip:" + ev.Network.SrcIP.String()},
		EventIDs:       []string{ev.ID},
		FirstEventTime: ev.Time,
		LastEventTime:  ev.Time,
		Count:          1,
		DedupKey:       Name + "|" + ev.DeviceID + "|" + strings.ToLower(user) + "|" + place[fNetwork],
		Fields:         fields,
	})
}
