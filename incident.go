package vigil

import "time"

// IncidentStatus is the life of an incident.
type IncidentStatus string

// Incident statuses.
const (
	IncidentOpen      IncidentStatus = "open"
	IncidentContained IncidentStatus = "contained"
	IncidentResolved  IncidentStatus = "resolved"
	// IncidentFalsePositive is a resolution that says the alerts were wrong.
	IncidentFalsePositive IncidentStatus = "false_positive"
)

// Incident groups alerts that belong to one attack: alerts on the same
// device, or sharing an entity, within the grouping window.
type Incident struct {
	ID         string         `json:"id"`
	Title      string         `json:"title"`
	Status     IncidentStatus `json:"status"`
	Severity   Severity       `json:"severity"`
	DeviceIDs  []string       `json:"device_ids,omitempty"`
	Entities   []string       `json:"entities,omitempty"`
	AlertIDs   []string       `json:"alert_ids,omitempty"`
	Techniques []string       `json:"techniques,omitempty"`

	// FirstEventTime is the time of the first malicious event of any of its alerts.
	FirstEventTime time.Time `json:"first_event_time"`
	// FirstReceived is when Vigil received the first live evidence of its
	// alerts (see Alert.FirstReceived): time to detect runs from it.
	FirstReceived time.Time `json:"first_received,omitzero"`
	// Replayed says that every alert of the incident came from replayed or
	// backfilled evidence: it has no time to detect and counts in no MTTD.
	Replayed bool `json:"replayed,omitempty"`
	// Detected is when its first live alert was raised (its first alert,
	// when all its alerts are replayed).
	Detected time.Time `json:"detected"`
	// Contained is when a containment action was acknowledged (zero until then).
	Contained time.Time `json:"contained,omitzero"`
	// Resolved is when the incident was closed (zero until then).
	Resolved time.Time `json:"resolved,omitzero"`
	// Resolution is the reason given when the incident was closed, in
	// the closer's words ("" when none was given); ResolvedBy is who
	// closed it ("user:ana", "token:ci").
	Resolution string    `json:"resolution,omitempty"`
	ResolvedBy string    `json:"resolved_by,omitempty"`
	Updated    time.Time `json:"updated"`
	// Priority ranks the incident in the queue, with its factors,
	// computed again whenever the incident changes (nil for incidents
	// stored before priorities).
	Priority *Priority `json:"priority,omitempty"`
}

// TimeToDetect is the time from when Vigil received the first evidence to
// detection. It is zero for a replayed incident (see MeasuresDetection).
// Without a receipt time (alerts of detectors that give none) it runs
// from the first malicious event. Never negative.
func (i *Incident) TimeToDetect() time.Duration {
	if !i.MeasuresDetection() {
		return 0
	}
	from := i.FirstReceived
	if from.IsZero() {
		from = i.FirstEventTime
	}
	if from.IsZero() {
		return 0
	}
	return max(i.Detected.Sub(from), 0)
}

// MeasuresDetection reports whether the incident has a time to detect
// that belongs in a mean (MTTD): it was detected and not replayed.
func (i *Incident) MeasuresDetection() bool {
	return !i.Replayed && !i.Detected.IsZero()
}

// TimeToContain is the time from detection to acknowledged containment, or
// zero when the incident is not contained.
func (i *Incident) TimeToContain() time.Duration {
	if i.Contained.IsZero() || i.Detected.IsZero() {
		return 0
	}
	return i.Contained.Sub(i.Detected)
}
