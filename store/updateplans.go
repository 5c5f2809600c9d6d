package store

import (
	"context"
	"slices"

	"github.com/vigil-iot/vigil"
)

// UpdatePlans keeps the update plans of the remediation engine
// (remediate.Engine): each plan is stored whole, as the engine changes it
// one tick at a time.
type UpdatePlans interface {
	// PutUpdatePlan creates or replaces a plan (by ID). EINVALID when the
	// plan has no ID, no artifact or an unknown state.
	PutUpdatePlan(ctx context.Context, p vigil.UpdatePlan) error
	// GetUpdatePlan returns a plan; ENOTFOUND when none.
	GetUpdatePlan(ctx context.Context, id string) (vigil.UpdatePlan, error)
	// ListUpdatePlans returns the plans in the given states (none: all),
	// oldest first (created, then id).
	ListUpdatePlans(ctx context.Context, states ...string) ([]vigil.UpdatePlan, error)
}

// PlanStates lists the states of an update plan.
var PlanStates = []string{vigil.PlanProposed, vigil.PlanRunning, vigil.PlanHalted, vigil.PlanCompleted}

// CheckUpdatePlan checks the argument of PutUpdatePlan.
func CheckUpdatePlan(p vigil.UpdatePlan) error {
	switch {
	case p.ID == "" || len(p.ID) > 128:
		return vigil.Errorf(vigil.EINVALID, "update plan: id %q: want 1 to 128 bytes", p.ID)
	case p.ArtifactID == "":
		return vigil.Errorf(vigil.EINVALID, "update plan %s: no artifact", p.ID)
	case !slices.Contains(PlanStates, p.State):
		return vigil.Errorf(vigil.EINVALID, "update plan %s: unknown state %q", p.ID, p.State)
	}
	return nil
}
