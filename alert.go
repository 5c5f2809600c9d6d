package vigil

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"
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
	Retro    bool     `json:"retro,omitempty"` // raised by a retro-hunt over stored history (package hunt), not live
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
	// Explanation says why the alert fired (nil for alerts stored before
	// explanations, and for detectors that explain in Fields).
	Explanation *Explanation `json:"explanation,omitempty"`
	// Priority ranks the alert in the queue, with its factors (nil for
	// alerts stored before priorities; set when its incident is assigned).
	Priority *Priority `json:"priority,omitempty"`
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

// Explanation says why an alert fired. It is kept with the alert, evidence
// excerpts included, so that it outlives the retention of the evidence
// events. Each detector fills the members that apply to it; a learned
// behaviour alert explains itself in Alert.Fields (baseline.*) instead.
type Explanation struct {
	// Rule is the rule that fired (Sigma, threshold and correlation rules).
	Rule *ExplainedRule `json:"rule,omitempty"`
	// Matches are the values of the evidence event that made a Sigma
	// rule's selections match, at most MaxExplainMatches.
	Matches []Match `json:"matches,omitempty"`
	// Group is the group a correlation or threshold rule counted in: its
	// group-by fields and their values.
	Group map[string]string `json:"group,omitempty"`
	// Window is the span a correlation or count rule counts over, as a Go
	// duration ("5m0s").
	Window string `json:"window,omitempty"`
	// Threshold is the series and the threshold it crossed.
	Threshold *ExplainedThreshold `json:"threshold,omitempty"`
	// Indicator is the threat intelligence indicator that matched.
	Indicator *ExplainedIndicator `json:"indicator,omitempty"`
	// Evidence are excerpts of evidence events (a few key fields each),
	// at most MaxEvidenceExcerpts.
	Evidence []EvidenceExcerpt `json:"evidence,omitempty"`
}

// ExplainedRule is what an explanation keeps of a rule.
type ExplainedRule struct {
	ID          string `json:"id,omitempty"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	Level       string `json:"level,omitempty"`
	// Condition is the rule's condition as written (Sigma), or its type
	// and comparison (threshold rules, correlations).
	Condition string `json:"condition,omitempty"`
}

// Match is one field value that made a selection of a rule match.
type Match struct {
	// Selection is the rule's search identifier ("selection", "filter").
	Selection string `json:"selection"`
	// Field is the event field as the rule names it.
	Field string `json:"field,omitempty"`
	// Value is the event's value (cut to MaxExcerptValue bytes).
	Value string `json:"value"`
	// Pattern is the rule's value it matched, as written, with its
	// modifier ("contains: curl").
	Pattern string `json:"pattern,omitempty"`
}

// ExplainedThreshold is the series a threshold or count rule watched and
// the threshold it crossed.
type ExplainedThreshold struct {
	// Series is the field compared, or "events" for a count.
	Series string `json:"series"`
	Op     string `json:"op"`
	// Threshold is the rule's value; Observed the value that crossed it.
	Threshold string `json:"threshold"`
	Observed  string `json:"observed,omitempty"`
	// Count is how many events crossed it (consecutive readings, or
	// events in the window).
	Count int `json:"count,omitempty"`
}

// ExplainedIndicator is a threat intelligence indicator that matched.
type ExplainedIndicator struct {
	ID         string   `json:"id,omitempty"`
	Type       string   `json:"type"`
	Value      string   `json:"value"`
	Name       string   `json:"name,omitempty"`
	Feed       string   `json:"feed"`
	Confidence int      `json:"confidence"`
	Labels     []string `json:"labels,omitempty"`
	// Field and Matched are the event field and the value that matched.
	Field   string `json:"field,omitempty"`
	Matched string `json:"matched,omitempty"`
}

// EvidenceExcerpt is a bounded copy of a few key fields of one evidence
// event.
type EvidenceExcerpt struct {
	EventID  string            `json:"event_id,omitempty"`
	Time     time.Time         `json:"time,omitzero"`
	DeviceID string            `json:"device_id,omitempty"`
	Kind     string            `json:"kind,omitempty"`
	Fields   map[string]string `json:"fields,omitempty"`
}

// Bounds of an Explanation: a device chooses its events' values, so what
// an alert keeps of them is bounded.
const (
	// MaxExplainMatches bounds Explanation.Matches.
	MaxExplainMatches = 32
	// MaxEvidenceExcerpts bounds Explanation.Evidence.
	MaxEvidenceExcerpts = 10
	// MaxExcerptFields bounds the fields of one excerpt.
	MaxExcerptFields = 12
	// MaxExcerptValue bounds one value kept (bytes; longer ones are cut
	// and end with "…").
	MaxExcerptValue = 256
)

// ExcerptFields returns the key fields an excerpt keeps when the event
// has them, after the fields the explanation names (ExcerptOf).
func ExcerptFields() []string { return slices.Clone(excerptFields) }

// excerptFields are the fields an excerpt keeps when the event has them,
// after the fields the explanation names.
var excerptFields = []string{
	"event.category", "event.action", "event.outcome",
	"source.ip", "source.port", "destination.ip", "destination.port",
	"user.name", "process.executable", "process.command_line",
	"mqtt.client_id", "mqtt.topic", "url.full", "dns.question.name", "file.hash.sha256",
}

// CutValue returns s cut to at most MaxExcerptValue bytes on a rune
// boundary, ending with "…" when cut.
func CutValue(s string) string {
	if len(s) <= MaxExcerptValue {
		return strings.Clone(s)
	}
	n := MaxExcerptValue - len("…")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// ExcerptOf returns a bounded excerpt of ev: its id, time, device and kind,
// and the values of the fields named (first) and of a few key fields,
// at most MaxExcerptFields, each cut to MaxExcerptValue bytes.
func ExcerptOf(ev *Event, fields ...string) EvidenceExcerpt {
	x := EvidenceExcerpt{EventID: ev.ID, Time: ev.Time, DeviceID: ev.DeviceID, Kind: ev.Kind}
	for _, list := range [][]string{fields, excerptFields} {
		for _, f := range list {
			if len(x.Fields) >= MaxExcerptFields {
				return x
			}
			if _, dup := x.Fields[f]; dup {
				continue
			}
			v, ok := ev.Field(f)
			if !ok || v == nil {
				continue
			}
			if x.Fields == nil {
				x.Fields = map[string]string{}
			}
			x.Fields[f] = CutValue(ValueString(v))
		}
	}
	return x
}

// AddEvidence appends excerpts to e.Evidence, skipping events it already
// holds, up to MaxEvidenceExcerpts.
func (e *Explanation) AddEvidence(xs ...EvidenceExcerpt) {
	for _, x := range xs {
		if len(e.Evidence) >= MaxEvidenceExcerpts {
			return
		}
		if x.EventID != "" && slices.ContainsFunc(e.Evidence, func(y EvidenceExcerpt) bool { return y.EventID == x.EventID }) {
			continue
		}
		e.Evidence = append(e.Evidence, x)
	}
}

// MergeExplanation folds b's explanation into a when the alerts merge: a
// keeps its own explanation (the first alert's), or takes b's when it had
// none, and gains b's evidence excerpts up to MaxEvidenceExcerpts. a's
// explanation is copied, never changed in place.
func (a *Alert) MergeExplanation(b *Alert) {
	switch {
	case b.Explanation == nil:
		return
	case a.Explanation == nil:
		x := *b.Explanation
		x.Evidence = slices.Clone(x.Evidence)
		a.Explanation = &x
		return
	}
	x := *a.Explanation
	x.Evidence = slices.Clone(x.Evidence)
	x.AddEvidence(b.Explanation.Evidence...)
	a.Explanation = &x
}
