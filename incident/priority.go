package incident

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"

	"github.com/vigil-iot/vigil"
)

// DeviceReader reads inventory records; store.Devices is one.
type DeviceReader interface {
	// GetDevice returns a device; ENOTFOUND when unknown.
	GetDevice(ctx context.Context, id string) (vigil.Device, error)
}

// KEVSource tells the known exploited vulnerabilities found on a device
// (vuln/scan's findings marked KEV, from the CISA KEV feed).
type KEVSource interface {
	// KEV returns the CVE ids; none when the device has none or is
	// unknown.
	KEV(deviceID string) []string
}

// BlastRadius measures how many devices an incident reaches, and says
// how (for the priority's explanation). The default counts the devices
// of the incident; a graph-based measure plugs in here.
type BlastRadius func(ctx context.Context, inc *vigil.Incident) (devices int, why string, err error)

// DeviceCount is the default BlastRadius: the devices of the incident.
func DeviceCount(_ context.Context, inc *vigil.Incident) (int, string, error) {
	return len(inc.DeviceIDs), "devices in the incident", nil
}

// SafetyClasses are device classes that control a physical process or
// protect people: their alerts and incidents are safety-critical.
var SafetyClasses = []string{
	vigil.ClassPLCGateway, "plc", "rtu", "ied", "controller", "safety", "safety-controller", "sis", "hmi", "dcs", "scada",
}

// CriticalityTag is the device tag prefix that sets a device's
// criticality explicitly ("criticality:high"); it wins over the class.
const CriticalityTag = "criticality:"

// SafetyCriticalTag marks a safety-critical device (the tag respond/
// playbooks already honour).
const SafetyCriticalTag = "safety-critical"

// maxPriorityDevices bounds the devices of an incident read for its
// criticality and exposure.
const maxPriorityDevices = 50

// Prioritizer computes the priority (vigil.ComputePriority) of alerts and
// incidents from the store's devices, the KEV findings and a blast
// radius. Nil members are left out: no KEV exposure, DeviceCount. A
// device it cannot read counts as normal and unexposed (logged).
type Prioritizer struct {
	Devices     DeviceReader
	KEV         KEVSource
	BlastRadius BlastRadius
	Logger      *slog.Logger
}

func (p *Prioritizer) log() *slog.Logger {
	if p.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Logger.With("component", "incident")
}

// Criticality returns a device's criticality and why: its
// "criticality:<level>" tag, the safety-critical tag, or its class.
func Criticality(d *vigil.Device) (vigil.Criticality, string) {
	for _, t := range d.Tags {
		if v, ok := strings.CutPrefix(t, CriticalityTag); ok {
			if c, err := vigil.ParseCriticality(v); err == nil {
				return c, fmt.Sprintf("%s tagged %s", d.ID, t)
			}
		}
	}
	if slices.Contains(d.Tags, SafetyCriticalTag) {
		return vigil.CriticalitySafety, fmt.Sprintf("%s tagged %s", d.ID, SafetyCriticalTag)
	}
	class := strings.ToLower(d.Class)
	switch {
	case slices.Contains(SafetyClasses, class):
		return vigil.CriticalitySafety, fmt.Sprintf("%s is a %s", d.ID, d.Class)
	case class == vigil.ClassGateway:
		return vigil.CriticalityHigh, fmt.Sprintf("%s is a %s", d.ID, d.Class)
	}
	return vigil.CriticalityNormal, ""
}

// assets fills the criticality and exposure of the devices into in.
func (p *Prioritizer) assets(ctx context.Context, in *vigil.PriorityInputs, devices []string, entities []string) {
	in.Criticality = vigil.CriticalityNormal
	read := false
	var public []string
	for _, id := range devices[:min(len(devices), maxPriorityDevices)] {
		if p.KEV != nil {
			for _, cve := range p.KEV.KEV(id) {
				if !slices.Contains(in.KEV, cve) {
					in.KEV = append(in.KEV, cve)
				}
			}
		}
		if p.Devices == nil || id == "" {
			continue
		}
		d, err := p.Devices.GetDevice(ctx, id)
		if err != nil {
			if vigil.ErrorCode(err) != vigil.ENOTFOUND {
				p.log().Warn("cannot read device for priority", "device", id, "err", err)
			}
			continue
		}
		// The highest of the devices read; the first sets it, low included.
		if c, why := Criticality(&d); !read || c > in.Criticality || in.CriticalityWhy == "" && c == in.Criticality {
			in.Criticality, in.CriticalityWhy = c, why
		}
		read = true
		for _, n := range d.Network {
			for _, a := range n.Addresses {
				if isPublic(a) && !slices.Contains(public, a) {
					public = append(public, a)
				}
			}
		}
	}
	if in.Criticality == vigil.CriticalityNormal && in.CriticalityWhy == "" && len(devices) > 0 {
		in.CriticalityWhy = "no critical class or tag"
	}
	for _, e := range entities {
		if ip, ok := strings.CutPrefix(e, "ip:"); ok && isPublic(ip) && !slices.Contains(public, ip) {
			public = append(public, ip)
		}
	}
	if len(public) > 0 {
		in.InternetFacing = true
		in.ExposureWhy = "talked with public address " + strings.Join(public[:min(len(public), 3)], ", ")
		if len(public) > 3 {
			in.ExposureWhy += fmt.Sprintf(" and %d more", len(public)-3)
		}
	}
}

// isPublic reports whether s is a public (global unicast, not private)
// address, with or without a prefix length.
func isPublic(s string) bool {
	a, err := netip.ParseAddr(s)
	if err != nil {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return false
		}
		a = pfx.Addr()
	}
	a = a.Unmap()
	return a.IsGlobalUnicast() && !a.IsPrivate()
}

// AlertConfidence is how far an alert can be believed, 0.5 to 1, and why:
// its evidence's provenance (all trusted to speak for the device: 1;
// none recorded: 0.8; some not trusted: 0.7), times 0.85 for learned
// behaviour (an anomaly, not a known attack), times an intel indicator's
// own confidence (0.5 + its confidence/200), times 0.9 for an
// experimental Sigma rule and 0.8 for a test one (sigma.status).
func AlertConfidence(a *vigil.Alert) (float64, string) {
	c, why := 1.0, []string{}
	switch {
	case len(a.Provenance) == 0:
		c, why = 0.8, append(why, "evidence provenance unknown")
	case a.EvidenceTrusted():
		why = append(why, "evidence from sources trusted for the device")
	default:
		c, why = 0.7, append(why, "evidence from sources not trusted for the device ("+strings.Join(a.Provenance, ", ")+")")
	}
	switch {
	case a.Detector == "baseline":
		c *= 0.85
		why = append(why, "learned behaviour")
	case a.Explanation != nil && a.Explanation.Indicator != nil:
		ic := min(max(a.Explanation.Indicator.Confidence, 0), 100)
		c *= 0.5 + float64(ic)/200
		why = append(why, fmt.Sprintf("indicator confidence %d", ic))
	}
	if s, _ := a.Fields["sigma.status"].(string); s == "experimental" {
		c *= 0.9
		why = append(why, "experimental rule")
	} else if s == "test" {
		c *= 0.8
		why = append(why, "test rule")
	}
	return max(c, 0.5), strings.Join(why, "; ")
}

// Alert returns the priority of alert a in incident inc (nil: a alone):
// the alert's severity, its device's criticality and exposure, its
// confidence and the incident's blast radius.
func (p *Prioritizer) Alert(ctx context.Context, a *vigil.Alert, inc *vigil.Incident) vigil.Priority {
	in := vigil.PriorityInputs{Severity: a.Severity, Devices: 1}
	var devices []string
	if a.DeviceID != "" {
		devices = []string{a.DeviceID}
	}
	p.assets(ctx, &in, devices, a.Entities)
	in.Confidence, in.ConfidenceWhy = AlertConfidence(a)
	if inc != nil {
		in.Devices, in.BlastWhy = p.blast(ctx, inc)
	}
	return vigil.ComputePriority(in)
}

// Incident returns the priority of inc: its severity, the highest
// criticality and the exposure of its devices, the highest confidence of
// its alerts (conf with its why, or the one its priority holds when
// higher) and its blast radius.
func (p *Prioritizer) Incident(ctx context.Context, inc *vigil.Incident, conf float64, why string) vigil.Priority {
	in := vigil.PriorityInputs{Severity: inc.Severity, Confidence: conf, ConfidenceWhy: why}
	if old := inc.Priority; old != nil && old.Confidence >= conf {
		in.Confidence, in.ConfidenceWhy = old.Confidence, ""
		for _, f := range old.Factors {
			if f.Name == "confidence" {
				// The factor's value is "0.80: why"; keep the why.
				_, in.ConfidenceWhy, _ = strings.Cut(f.Value, ": ")
			}
		}
	}
	p.assets(ctx, &in, inc.DeviceIDs, inc.Entities)
	in.Devices, in.BlastWhy = p.blast(ctx, inc)
	return vigil.ComputePriority(in)
}

func (p *Prioritizer) blast(ctx context.Context, inc *vigil.Incident) (int, string) {
	f := p.BlastRadius
	if f == nil {
		f = DeviceCount
	}
	n, why, err := f(ctx, inc)
	if err != nil {
		p.log().Warn("cannot measure blast radius; counting the incident's devices", "incident", inc.ID, "err", err)
		n, why, _ = DeviceCount(ctx, inc)
	}
	return n, why
}
