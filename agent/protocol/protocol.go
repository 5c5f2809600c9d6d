package protocol

import "time"

// Paths of the agent endpoints.
const (
	PathEnroll   = "/api/v1/enroll"
	PathRenew    = "/api/v1/agent/renew"
	PathCommands = "/api/v1/agent/commands"
	PathResults  = "/api/v1/agent/commands/result"
	PathReport   = "/api/v1/agent/report"
)

// EnrollRequest is the body of POST /api/v1/enroll. Hostname is a hint
// the server may use in the device id.
type EnrollRequest struct {
	Token    string `json:"token"`
	CSR      string `json:"csr"` // PEM CERTIFICATE REQUEST
	Hostname string `json:"hostname,omitempty"`
}

// EnrollResponse is the answer of a successful enrollment.
type EnrollResponse struct {
	DeviceID    string `json:"device_id"`
	Class       string `json:"class,omitempty"`
	Certificate string `json:"certificate"` // PEM
	CA          string `json:"ca"`          // PEM
	CommandKey  []byte `json:"command_key"` // Ed25519 public key, base64 in JSON
	// UpdateKey is the server's Ed25519 public update key (base64 in
	// JSON): update artifacts are signed with it, never with the command
	// key. Absent from a server that has none.
	UpdateKey []byte    `json:"update_key,omitempty"`
	NotAfter  time.Time `json:"not_after"`
}

// RenewRequest is the body of POST /api/v1/agent/renew, sent over mTLS
// with the current certificate.
type RenewRequest struct {
	CSR string `json:"csr"`
}

// RenewResponse is the answer of a renewal.
type RenewResponse struct {
	Certificate string    `json:"certificate"`
	NotAfter    time.Time `json:"not_after"`
	// UpdateKey is the server's public update key, as at enrollment: an
	// agent enrolled before its server handed one gets it here.
	UpdateKey []byte `json:"update_key,omitempty"`
}

// Error is the error answer of these endpoints (the shape of every Vigil
// API error).
type Error struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}
