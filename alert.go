package vigil

import (
	"slices"
	"strings"
	"time"
)

// Alert is one detection: a rule or detector that fired on one or more
// events. Alerts with the same DedupKey within the dedup window are merged
// into one (Count grows, EventIDs are appended up to a bound).
type Alert struct {
	ID       string `json:"id"`
	DedupKey string `json:"dedup_key"`
	// Detector names the detector ("threshold", "sigma", "intel", ...).
	Detector string   `json:"detector"`
	RuleID   string   `json:"rule_id"`
	Title    string   `json:"title"`
	Severity Severity `json:"severity"`
	Tags     []string `json:"tags,omitempty"`
	// Techniques are MITRE ATT&CK technique ids (T1110, T0836, T1059.004).
	Techniques []string `json:"techniques,omitempty"`

	DeviceID string `json:"device_id,omitempty"`
	// Entities are other things the alert is about, as "type:value"
	// ("ip:10.0.0.7", "user:root", "mqtt.client_id:cam-7"). Incidents join
	// alerts that share one.
	Entities []string `json:"entities,omitempty"`
	// EventIDs are the evidence: the events that made the detection.
	EventIDs []string `json:"event_ids,omitempty"`
	// Provenance lists, once each, how the evidence events' senders were
	// authenticated (their Event.Provenance, "" as ProvenanceUnknown), at
	// most MaxAlertProvenance entries (then ProvenanceMore is last).
	// Automatic containment acts only when every entry is trusted
	// (EvidenceTrusted).
	Provenance []string `json:"provenance,omitempty"`
	// FirstEventTime is the time of the earliest evidence event.
	FirstEventTime time.Time `json:"first_event_time"`
	// FirstReceived is when Vigil received the earliest live evidence
	// (Event.Received): time to detect is measured from it. Zero when the
	// detector gave no receipt time, and for replayed evidence.
	FirstReceived time.Time `json:"first_received,omitzero"`
	// Replayed says that all the evidence was replayed or backfilled (a
	// pcap replay, events dated long before they were received): the alert
	// is real but says nothing about how fast Vigil detects, so it counts
	// in no time to detect.
	Replayed bool `json:"replayed,omitempty"`
	// LastEventTime is the time of the latest evidence event.
	LastEventTime time.Time `json:"last_event_time"`
	// Created is when the detector raised the alert.
	Created time.Time `json:"created"`
	// UntilCleared says that repeats of the alert (same DedupKey) merge
	// into it for as long as it is open (its incident neither resolved
	// nor a false positive), not only within the dedup window: the rule
	// fires once per device and key (Sigma once_per) until cleared.
	UntilCleared bool `json:"until_cleared,omitempty"`
	// Count is how many raised alerts were merged into this one.
	Count      int            `json:"count"`
	IncidentID string         `json:"incident_id,omitempty"`
	Fields     map[string]any `json:"fields,omitempty"`
}

// Markers of Alert.Provenance.
const (
	// ProvenanceUnknown stands for evidence without a provenance.
	ProvenanceUnknown = "unknown"
	// ProvenanceMore ends a full Alert.Provenance: more provenances were
	// seen than it keeps.
	ProvenanceMore = "more"
	// MaxAlertProvenance bounds Alert.Provenance.
	MaxAlertProvenance = 16
)

// AddProvenance records the provenance p of one more evidence event.
func (a *Alert) AddProvenance(p string) {
	if p == "" {
		p = ProvenanceUnknown
	}
	if slices.Contains(a.Provenance, p) {
		return
	}
	switch n := len(a.Provenance); {
	case n < MaxAlertProvenance-1:
		a.Provenance = append(a.Provenance, p)
	case n == MaxAlertProvenance-1:
		a.Provenance = append(a.Provenance, ProvenanceMore)
	}
}

// EvidenceTrusted reports whether the alert's evidence is known to come
// only from sources trusted to speak for its device (TrustedProvenance):
// false when the alert records no provenance at all.
func (a *Alert) EvidenceTrusted() bool {
	if len(a.Provenance) == 0 {
		return false
	}
	for _, p := range a.Provenance {
		if !TrustedProvenance(p, a.DeviceID) {
			return false
		}
	}
	return true
}

// TechniquesFromTags returns the ATT&CK technique ids named by Sigma-style
// tags ("attack.t1110.001" → "T1110.001", "attack.t0836" → "T0836").
func TechniquesFromTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		t = strings.ToLower(t)
		id, ok := strings.CutPrefix(t, "attack.")
		if !ok || len(id) < 5 || id[0] != 't' {
			continue
		}
		digits := 0
		for _, c := range id[1:] {
			if c < '0' || c > '9' {
				break
			}
			digits++
		}
		if digits != 4 {
			continue
		}
		out = append(out, strings.ToUpper(id))
	}
	return out
}

// MergeReceipt folds the receipt of b's evidence into a: FirstReceived is
// the earliest of the live (not replayed) evidence, and a stays Replayed
// only while all its evidence is.
func (a *Alert) MergeReceipt(b *Alert) {
	if b.Replayed {
		return
	}
	if a.Replayed {
		a.Replayed, a.FirstReceived = false, b.FirstReceived
		return
	}
	if !b.FirstReceived.IsZero() && (a.FirstReceived.IsZero() || b.FirstReceived.Before(a.FirstReceived)) {
		a.FirstReceived = b.FirstReceived
	}
}
