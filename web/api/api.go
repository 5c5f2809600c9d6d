package api

import (
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
)

// Version prefix of every API path.
const Prefix = "/api/v1"

// List is one page of a list: the items and the cursor to pass as
// ?cursor= for the next page ("" on the last page).
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong: Code is one of vigil's error codes
// ("invalid", "not_found", "busy", ...), Message is for people.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// DeviceDetail is a device and its recent health samples, oldest first.
type DeviceDetail struct {
	vigil.Device
	HealthHistory []vigil.Health `json:"health_history"`
}

// Incident is an incident with its computed durations. TimeToDetect is a
// Go duration string ("1.5s"); TimeToContain and its seconds are present
// only once the incident is contained.
type Incident struct {
	vigil.Incident
	TimeToDetect         string   `json:"time_to_detect"`
	TimeToDetectSeconds  float64  `json:"time_to_detect_seconds"`
	TimeToContain        string   `json:"time_to_contain,omitempty"`
	TimeToContainSeconds *float64 `json:"time_to_contain_seconds,omitempty"`
}

// NewIncident computes the durations of an incident.
func NewIncident(i vigil.Incident) Incident {
	ttd := i.TimeToDetect()
	out := Incident{Incident: i, TimeToDetect: ttd.String(), TimeToDetectSeconds: ttd.Seconds()}
	if !i.Contained.IsZero() {
		ttc := i.TimeToContain()
		s := ttc.Seconds()
		out.TimeToContain, out.TimeToContainSeconds = ttc.String(), &s
	}
	return out
}

// Durations returns the time to detect and the time to contain (zero when
// not contained) as durations.
func (i Incident) Durations() (ttd, ttc time.Duration) {
	return i.Incident.TimeToDetect(), i.Incident.TimeToContain()
}

// CreateTokenRequest asks for a new API token.
type CreateTokenRequest struct {
	Name string    `json:"name"`
	Role auth.Role `json:"role"`
	// TTL, when set, is how long the token works, as a Go duration
	// ("720h"); empty: it never expires.
	TTL string `json:"ttl,omitempty"`
	// Devices bind an agent token to these device ids.
	Devices []string `json:"devices,omitempty"`
}

// CreatedToken is a new token: its secret, shown this once, and its record.
type CreatedToken struct {
	Secret string `json:"token"`
	auth.Token
}

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string `json:"status"` // "ok" or "not ready"
	Error  string `json:"error,omitempty"`
}
