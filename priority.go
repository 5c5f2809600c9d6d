package vigil

import (
	"fmt"
	"math"
)

// Priority ranks an alert or an incident in the analyst's queue, from 0
// to 100, and says why: each factor of the formula with the value it saw
// and what it added (see ComputePriority and docs/investigation.md).
type Priority struct {
	Score int `json:"score"`
	// Confidence is the multiplier the confidence factor applied (0.5 to
	// 1): an incident keeps the highest of its alerts'.
	Confidence float64          `json:"confidence"`
	Factors    []PriorityFactor `json:"factors"`
}

// PriorityFactor is one term of a priority.
type PriorityFactor struct {
	// Name is severity, criticality, exposure, blast_radius or confidence.
	Name string `json:"name"`
	// Value is what was seen ("high", "plc: safety-critical class",
	// "CVE-2023-1389 (KEV), internet-facing: 203.0.113.9").
	Value string `json:"value"`
	// Points is what the factor added (a multiplier for confidence).
	Points float64 `json:"points"`
}

// Criticality of an asset, lowest first.
type Criticality int

// Criticalities. CriticalityNormal is the zero value.
const (
	CriticalityLow Criticality = iota - 1
	CriticalityNormal
	CriticalityHigh
	// CriticalitySafety: the device controls a physical process or
	// protects people (PLC, RTU, safety controller).
	CriticalitySafety
)

// String names the criticality.
func (c Criticality) String() string {
	switch c {
	case CriticalityLow:
		return "low"
	case CriticalityNormal:
		return "normal"
	case CriticalityHigh:
		return "high"
	case CriticalitySafety:
		return "safety-critical"
	}
	return fmt.Sprintf("criticality(%d)", int(c))
}

// MarshalText names the criticality.
func (c Criticality) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads a criticality by name (low, normal, high,
// safety-critical; "" is normal).
func (c *Criticality) UnmarshalText(b []byte) error {
	v, err := ParseCriticality(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// ParseCriticality reads a criticality by name: low, normal (or ""), high,
// safety-critical (or critical). EINVALID for another.
func ParseCriticality(s string) (Criticality, error) {
	switch s {
	case "low":
		return CriticalityLow, nil
	case "", "normal", "medium":
		return CriticalityNormal, nil
	case "high":
		return CriticalityHigh, nil
	case "safety-critical", "critical", "safety":
		return CriticalitySafety, nil
	}
	return 0, Errorf(EINVALID, "criticality %q: want low, normal, high or safety-critical", s)
}

// PriorityInputs are what a priority is computed from.
type PriorityInputs struct {
	Severity Severity `json:"severity"`
	// Criticality is the highest criticality of the devices concerned;
	// CriticalityWhy says where it comes from.
	Criticality    Criticality `json:"criticality"`
	CriticalityWhy string      `json:"criticality_why,omitempty"`
	// KEV are known exploited vulnerabilities (CVE ids) found on the
	// devices; InternetFacing that they were seen talking with public
	// addresses (ExposureWhy: which).
	KEV            []string `json:"kev,omitempty"`
	InternetFacing bool     `json:"internet_facing,omitempty"`
	ExposureWhy    string   `json:"exposure_why,omitempty"`
	// Confidence is how far the evidence and the detection can be
	// believed, 0 to 1 (clamped to 0.5..1); ConfidenceWhy says why.
	Confidence    float64 `json:"confidence"`
	ConfidenceWhy string  `json:"confidence_why,omitempty"`
	// Devices is the blast radius: how many devices are reached (1 for
	// one device); BlastWhy says how it was measured.
	Devices  int    `json:"devices"`
	BlastWhy string `json:"blast_why,omitempty"`
}

// Points of the priority formula (docs/investigation.md).
var (
	severityPoints    = map[Severity]float64{0: 5, SeverityInfo: 5, SeverityLow: 15, SeverityMedium: 30, SeverityHigh: 45, SeverityCritical: 60}
	criticalityPoints = map[Criticality]float64{CriticalityLow: -10, CriticalityNormal: 0, CriticalityHigh: 10, CriticalitySafety: 20}
)

const (
	kevPoints      = 15
	internetPoints = 10
	minConfidence  = 0.5
)

// blastPoints is what a blast radius of n devices adds.
func blastPoints(n int) float64 {
	switch {
	case n >= 20:
		return 15
	case n >= 5:
		return 10
	case n >= 2:
		return 5
	}
	return 0
}

// ComputePriority is the priority formula:
//
//	score = (severity + criticality + exposure + blast radius) × confidence
//
// rounded and clamped to 0..100, where severity gives 5 (informational),
// 15, 30, 45 or 60 (critical); criticality -10 (low), 0, +10 (high) or
// +20 (safety-critical); exposure +15 for known exploited vulnerabilities
// and +10 for internet-facing; blast radius 0 (one device), +5 (2-4),
// +10 (5-19) or +15 (20 or more); and confidence is a multiplier from
// 0.5 to 1.
func ComputePriority(in PriorityInputs) Priority {
	conf := in.Confidence
	if math.IsNaN(conf) || conf > 1 {
		conf = 1
	}
	conf = max(conf, minConfidence)
	sev := severityPoints[in.Severity]
	if in.Severity > SeverityCritical {
		sev = severityPoints[SeverityCritical]
	}
	crit := criticalityPoints[max(min(in.Criticality, CriticalitySafety), CriticalityLow)]
	var exp float64
	if len(in.KEV) > 0 {
		exp += kevPoints
	}
	if in.InternetFacing {
		exp += internetPoints
	}
	devices := max(in.Devices, 1)
	blast := blastPoints(devices)
	p := Priority{Confidence: conf}
	add := func(name, value string, points float64) {
		p.Factors = append(p.Factors, PriorityFactor{Name: name, Value: value, Points: points})
	}
	sevName := in.Severity.String()
	if sevName == "" {
		sevName = "unset"
	}
	add("severity", sevName, sev)
	add("criticality", orWhy(in.Criticality.String(), in.CriticalityWhy), crit)
	expWhy := "none known"
	switch {
	case len(in.KEV) > 0 && in.InternetFacing:
		expWhy = fmt.Sprintf("%s known exploited; internet-facing", joinMax(in.KEV, 3))
	case len(in.KEV) > 0:
		expWhy = fmt.Sprintf("%s known exploited", joinMax(in.KEV, 3))
	case in.InternetFacing:
		expWhy = "internet-facing"
	}
	add("exposure", orWhy(expWhy, in.ExposureWhy), exp)
	unit := "devices"
	if devices == 1 {
		unit = "device"
	}
	add("blast_radius", orWhy(fmt.Sprintf("%d %s", devices, unit), in.BlastWhy), blast)
	add("confidence", orWhy(fmt.Sprintf("%.2f", conf), in.ConfidenceWhy), conf)
	// The epsilon rounds halves up whatever the float error (45 × 0.7).
	score := math.Round((sev+crit+exp+blast)*conf + 1e-9)
	p.Score = int(max(0, min(100, score)))
	return p
}

// String is the score, "-" for no priority.
func (p *Priority) String() string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%d", p.Score)
}

func orWhy(v, why string) string {
	if why == "" {
		return v
	}
	return v + ": " + why
}

func joinMax(s []string, n int) string {
	out := ""
	for i, x := range s {
		if i == n {
			return out + fmt.Sprintf(" and %d more", len(s)-n)
		}
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}
