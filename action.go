package vigil

import "time"

// ActionState is a step of an action's state machine:
// pending_approval → approved → sent → acknowledged → succeeded | failed |
// timed_out | rolled_back.
type ActionState string

// Action states.
const (
	ActionPendingApproval ActionState = "pending_approval"
	ActionApproved        ActionState = "approved"
	ActionDenied          ActionState = "denied"
	ActionSent            ActionState = "sent"
	ActionAcknowledged    ActionState = "acknowledged"
	ActionSucceeded       ActionState = "succeeded"
	ActionFailed          ActionState = "failed"
	ActionTimedOut        ActionState = "timed_out"
	ActionRolledBack      ActionState = "rolled_back"
)

// Action is one response step against a device or an entity: isolate,
// quarantine a broker client, block an address, update software, notify.
type Action struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"` // isolate, restore, quarantine_client, block, update, set_param, notify, ...
	DeviceID   string            `json:"device_id,omitempty"`
	IncidentID string            `json:"incident_id,omitempty"`
	AlertID    string            `json:"alert_id,omitempty"`
	Playbook   string            `json:"playbook,omitempty"`
	Params     map[string]string `json:"params,omitempty"`
	State      ActionState       `json:"state"`
	// RequestedBy is who or what asked for it: "playbook:<name>" or a user.
	RequestedBy string    `json:"requested_by"`
	Approvers   []string  `json:"approvers,omitempty"`
	Result      string    `json:"result,omitempty"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
}
