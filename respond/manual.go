package respond

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/respond/playbook"
)

// Request creates an action a person asked for (the console's "isolate"
// button): the step of an enabled playbook that does typ on devices of the
// device's class gives its connector, parameters and rollback, and the
// action is held for approval whatever the playbook says (a person's click
// is not evidence), with the guard it would exceed named when it would. It
// returns the action created. Errors: ENOTFOUND for an unknown device or
// incident, EINVALID when no enabled playbook has such a step for the
// device's class, or when user is empty.
func (e *Engine) Request(ctx context.Context, typ, deviceID, incidentID, user string) (vigil.Action, error) {
	if user == "" {
		return vigil.Action{}, vigil.Errorf(vigil.EINVALID, "a request needs a user")
	}
	dev, err := e.st.GetDevice(ctx, deviceID)
	if err != nil {
		return vigil.Action{}, err
	}
	in := &playbook.Input{Device: dev}
	if incidentID != "" {
		if in.Incident, err = e.st.GetIncident(ctx, incidentID); err != nil {
			return vigil.Action{}, err
		}
	}
	var (
		pb *playbook.Playbook
		st *playbook.Step
	)
	for _, p := range e.Playbooks() {
		if !p.Enabled || (len(p.Trigger.DeviceClasses) > 0 && !slices.Contains(p.Trigger.DeviceClasses, dev.Class)) {
			continue
		}
		if i := slices.IndexFunc(p.Steps, func(s playbook.Step) bool { return s.Action == typ }); i >= 0 {
			pb, st = p, &p.Steps[i]
			break
		}
	}
	if pb == nil {
		return vigil.Action{}, vigil.Errorf(vigil.EINVALID, "no enabled playbook has a %s step for devices of class %q", typ, dev.Class)
	}
	params, err := st.Render(in)
	if err != nil {
		return vigil.Action{}, vigil.Errorf(vigil.EINVALID, "cannot render the parameters of playbook %s: %v", pb.Name, err)
	}
	now := e.clock.Now().UTC()
	actor := user
	a := vigil.Action{
		ID: ActionID(pb.Name, "manual:"+user+":"+now.Format(time.RFC3339Nano), st.Name), Type: typ, DeviceID: dev.ID,
		IncidentID: incidentID, Playbook: pb.Name, RequestedBy: actor, State: vigil.ActionPendingApproval, Created: now, Updated: now,
	}
	_, n := pb.Wants()
	why := "requested by " + user
	e.mu.Lock()
	defer e.mu.Unlock()
	if g := e.guard(pb, dev.Class, now); g != "" {
		why += "; " + g
	}
	timeout := pb.Approval.Timeout
	if timeout <= 0 {
		timeout = e.opts.ApprovalTimeout
	}
	meta := map[string]string{MetaConnector: st.Connector, MetaStep: st.Name, MetaDeviceClass: dev.Class,
		MetaApprovals: strconv.Itoa(max(n, 1)), MetaDeadline: now.Add(timeout).Format(time.RFC3339Nano), MetaHeld: why}
	if st.Containment {
		meta[MetaContainment] = "true"
	}
	if st.Rollback != "" {
		meta[MetaUndo] = st.Rollback
		if pb.Rollback.OnFalsePositive {
			meta[MetaRollbackFP] = "true"
		}
	}
	a.Params = withMeta(params, meta)
	if err := e.create(ctx, a, actor, fmt.Sprintf("held for approval: %s", why)); err != nil {
		return vigil.Action{}, err
	}
	return a, nil
}
