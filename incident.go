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
	// Detected is when its first alert was raised.
	Detected time.Time `json:"detected"`
	// Contained is when a containment action was acknowledged (zero until then).
	Contained time.Time `json:"contained,omitzero"`
	// Resolved is when the incident was closed (zero until then).
	Resolved time.Time `json:"resolved,omitzero"`
	Updated  time.Time `json:"updated"`
}

// TimeToDetect is the time from the first malicious event to detection.
func (i *Incident) TimeToDetect() time.Duration {
	if i.Detected.IsZero() || i.FirstEventTime.IsZero() {
		return 0
	}
	return i.Detected.Sub(i.FirstEventTime)
}

// TimeToContain is the time from detection to acknowledged containment, or
// zero when the incident is not contained.
func (i *Incident) TimeToContain() time.Duration {
	if i.Contained.IsZero() || i.Detected.IsZero() {
		return 0
	}
	return i.Contained.Sub(i.Detected)
}
