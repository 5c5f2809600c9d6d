package vigil

import "time"

// States of an UpdatePlan.
const (
	// PlanProposed: waiting for an approval (the policy did not allow it to
	// run on its own).
	PlanProposed = "proposed"
	// PlanRunning: approved (by a person or the policy); the engine sends
	// its waves one after the other.
	PlanRunning = "running"
	// PlanHalted: a wave failed (or an operator halted it); the failed
	// wave's devices were rolled back and no further wave is sent.
	PlanHalted = "halted"
	// PlanCompleted: every wave passed its health checks.
	PlanCompleted = "completed"
)

// States of one device in a plan wave.
const (
	TargetPending    = "pending"     // not sent yet
	TargetSent       = "sent"        // the update command is queued or running
	TargetInstalled  = "installed"   // the agent reported success; health not yet confirmed
	TargetUpdated    = "updated"     // the device reports the new version and normal health
	TargetFailed     = "failed"      // install or health check failed
	TargetRolledBack = "rolled_back" // a rollback command succeeded after a failure
	TargetSkipped    = "skipped"     // never sent: the plan halted first
)

// UpdatePlan is the remediation of one set of vulnerability findings in one
// cohort of devices (the same class and model) by one update artifact,
// sent in waves: a canary share first, then the rest, with health checks
// between waves and a halt with rollback when a wave fails.
type UpdatePlan struct {
	ID string `json:"id"`
	// Cohort is "class/model" of the devices.
	Cohort string `json:"cohort"`
	// Product and Version are the artifact's: the version that fixes the
	// findings.
	Product    string `json:"product"`
	Version    string `json:"version"`
	ArtifactID string `json:"artifact_id"`
	// Findings are the findings the plan closes.
	Findings []PlanFinding `json:"findings"`
	Waves    []PlanWave    `json:"waves"`
	State    string        `json:"state"`
	// Auto is set when the remediation policy let the plan run without an
	// approval; Reason says why it runs or waits ("KEV and exposed").
	Auto       bool      `json:"auto"`
	Reason     string    `json:"reason,omitempty"`
	ApprovedBy string    `json:"approved_by,omitempty"`
	Approved   time.Time `json:"approved,omitzero"`
	// Halted says why the plan halted.
	Halted   string    `json:"halted,omitempty"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
	Finished time.Time `json:"finished,omitzero"`
}

// PlanFinding is one finding an UpdatePlan remediates, with the time it
// closed: when the device reported the fixed version.
type PlanFinding struct {
	FindingID string `json:"finding_id"`
	DeviceID  string `json:"device_id"`
	Vuln      string `json:"vuln"`
	KEV       bool   `json:"kev,omitempty"`
	Exposed   bool   `json:"exposed,omitempty"`
	Component string `json:"component"`
	From      string `json:"from"`
	// Fixed is the lowest version that fixes it.
	Fixed     string    `json:"fixed,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	Closed    time.Time `json:"closed,omitzero"`
}

// TimeToRemediate is how long the finding stayed open (0 while it is).
func (f PlanFinding) TimeToRemediate() time.Duration {
	if f.Closed.IsZero() {
		return 0
	}
	return f.Closed.Sub(f.FirstSeen)
}

// PlanWave is one wave of an UpdatePlan.
type PlanWave struct {
	Targets  []PlanTarget `json:"targets"`
	Started  time.Time    `json:"started,omitzero"`
	Finished time.Time    `json:"finished,omitzero"`
	// Failed is set when the wave failed its health checks.
	Failed bool `json:"failed,omitempty"`
}

// PlanTarget is one device of a wave.
type PlanTarget struct {
	DeviceID string `json:"device_id"`
	State    string `json:"state"`
	// Previous is the version the device ran before.
	Previous string `json:"previous,omitempty"`
	// Command is the id of the update command, Rollback of the rollback
	// command.
	Command  string    `json:"command,omitempty"`
	Rollback string    `json:"rollback,omitempty"`
	Sent     time.Time `json:"sent,omitzero"`
	Done     time.Time `json:"done,omitzero"`
	Detail   string    `json:"detail,omitempty"`
}
