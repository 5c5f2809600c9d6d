package respond

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/respond/playbook"
	"github.com/vigil-iot/vigil/store"
)

// next lists the states each state may move to.
var next = map[vigil.ActionState][]vigil.ActionState{
	vigil.ActionPendingApproval: {vigil.ActionApproved, vigil.ActionDenied, vigil.ActionTimedOut},
	vigil.ActionApproved:        {vigil.ActionSent},
	vigil.ActionSent:            {vigil.ActionAcknowledged, vigil.ActionFailed, vigil.ActionTimedOut},
	vigil.ActionAcknowledged:    {vigil.ActionSucceeded, vigil.ActionFailed},
	vigil.ActionSucceeded:       {vigil.ActionRolledBack},
}

// CanMove reports whether an action may go from one state to another.
func CanMove(from, to vigil.ActionState) bool { return slices.Contains(next[from], to) }

// Terminal reports whether no transition leaves s.
func Terminal(s vigil.ActionState) bool { return len(next[s]) == 0 }

// move changes a's state at t, stores it and audits the transition as
// actor. Callers hold e.mu.
func (e *Engine) move(ctx context.Context, a *vigil.Action, to vigil.ActionState, t time.Time, actor, auditAction, detail string) error {
	from := a.State
	if !CanMove(from, to) {
		return vigil.Errorf(vigil.ECONFLICT, "action %s is %s: it cannot become %s", a.ID, from, to)
	}
	a.State = to
	a.Updated = t.UTC()
	if detail != "" && auditAction == audit.ActionTransition {
		a.Result = detail
	}
	if err := e.st.PutAction(ctx, *a); err != nil {
		a.State = from
		return fmt.Errorf("cannot store action %s: %w", a.ID, err)
	}
	e.transitions.WithLabelValues(string(to)).Inc()
	e.log.Info("action", "action", a.ID, "type", a.Type, "device", a.DeviceID, "from", from, "to", to, "by", actor)
	_, err := e.rec.RecordJSON(ctx, actor, auditAction, "action:"+a.ID, map[string]any{"from": from, "to": to, "detail": detail})
	return err
}

// Approve records user's approval of a pending action. When it has as many
// distinct approvers as it needs, it becomes approved and starts.
// Errors: ENOTFOUND, ECONFLICT when the action is not pending approval or
// user already approved it, EINVALID for an empty user.
func (e *Engine) Approve(ctx context.Context, id, user string) (vigil.Action, error) {
	if user == "" {
		return vigil.Action{}, vigil.Errorf(vigil.EINVALID, "an approval needs a user")
	}
	e.mu.Lock()
	a, err := e.st.GetAction(ctx, id)
	if err != nil {
		e.mu.Unlock()
		return vigil.Action{}, err
	}
	if a.State != vigil.ActionPendingApproval {
		e.mu.Unlock()
		return a, vigil.Errorf(vigil.ECONFLICT, "action %s is %s, not pending approval", id, a.State)
	}
	if slices.Contains(a.Approvers, user) {
		e.mu.Unlock()
		return a, vigil.Errorf(vigil.ECONFLICT, "%s already approved action %s", user, id)
	}
	now := e.clock.Now().UTC()
	a.Approvers = append(a.Approvers, user)
	a.Updated = now
	need, _ := strconv.Atoi(a.Params[MetaApprovals])
	need = max(need, 1)
	if len(a.Approvers) >= need {
		err = e.move(ctx, &a, vigil.ActionApproved, now, user, audit.ActionApprove,
			fmt.Sprintf("approval %d of %d", len(a.Approvers), need))
	} else {
		if err = e.st.PutAction(ctx, a); err == nil {
			_, err = e.rec.RecordJSON(ctx, user, audit.ActionApprove, "action:"+id,
				map[string]any{"detail": fmt.Sprintf("approval %d of %d", len(a.Approvers), need)})
		}
	}
	e.mu.Unlock()
	if err != nil {
		return a, err
	}
	if a.State == vigil.ActionApproved {
		e.dispatch(a.ID)
	}
	return a, nil
}

// Deny refuses a pending action. Errors: ENOTFOUND, ECONFLICT when it is
// not pending approval, EINVALID for an empty user.
func (e *Engine) Deny(ctx context.Context, id, user, reason string) (vigil.Action, error) {
	if user == "" {
		return vigil.Action{}, vigil.Errorf(vigil.EINVALID, "a denial needs a user")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	a, err := e.st.GetAction(ctx, id)
	if err != nil {
		return vigil.Action{}, err
	}
	if a.State != vigil.ActionPendingApproval {
		return a, vigil.Errorf(vigil.ECONFLICT, "action %s is %s, not pending approval", id, a.State)
	}
	a.Result = "denied by " + user
	if reason != "" {
		a.Result += ": " + reason
	}
	err = e.move(ctx, &a, vigil.ActionDenied, e.clock.Now(), user, audit.ActionDeny, reason)
	return a, err
}

// dispatch executes an approved action in its own goroutine.
func (e *Engine) dispatch(id string) {
	e.mu.Lock()
	if e.inflight[id] {
		e.mu.Unlock()
		return
	}
	e.inflight[id] = true
	e.wg.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		defer func() { e.mu.Lock(); delete(e.inflight, id); e.mu.Unlock() }()
		e.execute(context.Background(), id)
	}()
}

// Wait blocks until every action started so far has finished executing.
func (e *Engine) Wait() { e.wg.Wait() }

// execute moves an approved action to sent, runs its connector and records
// the outcome.
func (e *Engine) execute(ctx context.Context, id string) {
	e.mu.Lock()
	a, err := e.st.GetAction(ctx, id)
	if err == nil && a.State != vigil.ActionApproved {
		e.mu.Unlock()
		return
	}
	if err == nil {
		err = e.move(ctx, &a, vigil.ActionSent, e.clock.Now(), "vigil", audit.ActionTransition, "")
	}
	e.mu.Unlock()
	if err != nil {
		e.log.Error("cannot send action", "action", id, "err", err)
		return
	}
	name := a.Params[MetaConnector]
	c, ok := e.conns[name]
	var (
		res  Result
		xerr error
	)
	if !ok {
		xerr = fmt.Errorf("no connector %q is configured", name)
	} else {
		cctx, cancel := context.WithTimeout(ctx, e.opts.AckTimeout)
		pub := a
		pub.Params = PublicParams(a)
		res, xerr = c.Execute(cctx, pub)
		if xerr != nil && cctx.Err() != nil && res.Acknowledged.IsZero() {
			xerr = fmt.Errorf("%w: %w", errTimeout, xerr)
		}
		cancel()
	}
	e.finish(ctx, id, res, xerr)
}

var errTimeout = errors.New("no acknowledgement before the timeout")

// finish records a connector's outcome on a sent action.
func (e *Engine) finish(ctx context.Context, id string, res Result, xerr error) {
	var after func()
	defer func() {
		if after != nil {
			after() // outside e.mu: the callback may call back into the engine
		}
	}()
	e.mu.Lock()
	defer e.mu.Unlock()
	a, err := e.st.GetAction(ctx, id)
	if err != nil {
		e.log.Error("cannot read action", "action", id, "err", err)
		return
	}
	if a.State != vigil.ActionSent {
		return // timed out by Tick meanwhile
	}
	now := e.clock.Now()
	ack := res.Acknowledged
	if ack.IsZero() && xerr == nil {
		ack = now
	}
	if !ack.IsZero() {
		if err := e.move(ctx, &a, vigil.ActionAcknowledged, ack, "vigil", audit.ActionTransition, res.Output); err != nil {
			e.log.Error("cannot record acknowledgement", "action", id, "err", err)
			return
		}
	}
	switch {
	case xerr == nil:
		err = e.move(ctx, &a, vigil.ActionSucceeded, now, "vigil", audit.ActionTransition, res.Output)
		if err == nil {
			after = e.succeeded(ctx, &a, ack)
		}
	case errors.Is(xerr, errTimeout):
		err = e.move(ctx, &a, vigil.ActionTimedOut, now, "vigil", audit.ActionTransition, xerr.Error())
	default:
		err = e.move(ctx, &a, vigil.ActionFailed, now, "vigil", audit.ActionTransition, xerr.Error())
	}
	if err != nil {
		e.log.Error("cannot record action outcome", "action", id, "err", err)
	}
}

// succeeded follows up a succeeded action: containment of its incident,
// or the rollback it was undoing. It returns the OnContained call to make
// once e.mu is released, or nil. Callers hold e.mu.
func (e *Engine) succeeded(ctx context.Context, a *vigil.Action, ack time.Time) func() {
	if orig := a.Params[MetaRollbackOf]; orig != "" {
		o, err := e.st.GetAction(ctx, orig)
		if err == nil && o.State == vigil.ActionSucceeded {
			err = e.move(ctx, &o, vigil.ActionRolledBack, ack, a.RequestedBy, audit.ActionTransition, "undone by action "+a.ID)
		}
		if err != nil {
			e.log.Error("cannot mark action rolled back", "action", orig, "err", err)
		}
		return nil
	}
	if a.Params[MetaContainment] != "true" || a.IncidentID == "" || e.contained[a.IncidentID] {
		return nil
	}
	if len(e.contained) > 100_000 {
		clear(e.contained)
	}
	inc, err := e.st.GetIncident(ctx, a.IncidentID)
	if err == nil && !inc.Contained.IsZero() {
		e.contained[a.IncidentID] = true
		return nil
	}
	e.contained[a.IncidentID] = true
	if err == nil && !inc.Detected.IsZero() {
		e.timeToContain.Observe(ack.Sub(inc.Detected).Seconds())
	}
	if _, err := e.rec.RecordJSON(ctx, "vigil", audit.IncidentContainedAct, "incident:"+a.IncidentID,
		map[string]any{"action": a.ID, "at": ack.UTC()}); err != nil {
		e.log.Error("cannot audit containment", "incident", a.IncidentID, "err", err)
	}
	if e.opts.OnContained == nil {
		return nil
	}
	id := a.IncidentID
	return func() {
		if err := e.opts.OnContained(ctx, id, ack); err != nil {
			e.log.Warn("cannot mark incident contained", "incident", id, "err", err)
		}
	}
}

// Tick times out pending approvals past their deadline and sent actions
// unacknowledged for longer than AckTimeout, and starts approved actions
// that are not running (after a restart). Call it every few seconds, or
// use Run.
func (e *Engine) Tick(ctx context.Context) error {
	now := e.clock.Now()
	var errs []error
	for _, st := range []vigil.ActionState{vigil.ActionPendingApproval, vigil.ActionSent, vigil.ActionApproved} {
		acts, err := e.list(ctx, store.ActionFilter{State: st})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, a := range acts {
			switch st {
			case vigil.ActionApproved:
				e.dispatch(a.ID)
			case vigil.ActionPendingApproval:
				dl, err := time.Parse(time.RFC3339Nano, a.Params[MetaDeadline])
				if err != nil || now.Before(dl) {
					continue
				}
				errs = append(errs, e.timeout(ctx, a.ID, st, "no approval before "+dl.Format(time.RFC3339)))
			case vigil.ActionSent:
				if now.Sub(a.Updated) < e.opts.AckTimeout {
					continue
				}
				errs = append(errs, e.timeout(ctx, a.ID, st, "no acknowledgement within "+e.opts.AckTimeout.String()))
			}
		}
	}
	return errors.Join(errs...)
}

func (e *Engine) timeout(ctx context.Context, id string, was vigil.ActionState, why string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	a, err := e.st.GetAction(ctx, id)
	if err != nil || a.State != was {
		return err
	}
	return e.move(ctx, &a, vigil.ActionTimedOut, e.clock.Now(), "vigil", audit.ActionTransition, why)
}

// Run calls Tick every interval until ctx ends.
func (e *Engine) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.Tick(ctx); err != nil {
				e.log.Warn("response tick", "err", err)
			}
		}
	}
}

// list returns every action matching f (all pages).
func (e *Engine) list(ctx context.Context, f store.ActionFilter) ([]vigil.Action, error) {
	var out []vigil.Action
	f.Limit = 1000
	for {
		acts, next, err := e.st.ListActions(ctx, f)
		if err != nil {
			return out, fmt.Errorf("cannot list actions: %w", err)
		}
		out = append(out, acts...)
		if next == "" {
			return out, nil
		}
		f.Cursor = next
	}
}

// rollback undoes the succeeded actions of a false-positive incident whose
// playbook asks for it: each gets an undo action (restore for isolate,
// release_client for quarantine_client, ...), approved at once; the
// original becomes rolled_back when its undo succeeds.
func (e *Engine) rollback(ctx context.Context, inc vigil.Incident) ([]vigil.Action, error) {
	acts, err := e.list(ctx, store.ActionFilter{IncidentID: inc.ID})
	if err != nil {
		return nil, err
	}
	var (
		out  []vigil.Action
		errs []error
	)
	for _, o := range acts {
		undo := o.Params[MetaUndo]
		if o.State != vigil.ActionSucceeded || undo == "" || o.Params[MetaRollbackFP] != "true" {
			continue
		}
		now := e.clock.Now().UTC()
		conn := playbook.Actions[undo].Connector
		if conn == "" {
			conn = o.Params[MetaConnector]
		}
		params := PublicParams(o)
		maps.Copy(params, map[string]string{MetaConnector: conn, MetaRollbackOf: o.ID, MetaDeviceClass: o.Params[MetaDeviceClass]})
		a := vigil.Action{
			ID: ActionID(o.Playbook, "rollback:"+o.ID, undo), Type: undo, DeviceID: o.DeviceID, IncidentID: o.IncidentID,
			AlertID: o.AlertID, Playbook: o.Playbook, Params: params, State: vigil.ActionApproved,
			RequestedBy: "rollback:" + o.Playbook, Created: now, Updated: now,
		}
		e.mu.Lock()
		_, gerr := e.st.GetAction(ctx, a.ID)
		if gerr == nil {
			e.mu.Unlock()
			continue
		}
		err := e.create(ctx, a, a.RequestedBy, fmt.Sprintf("incident %s closed as false positive: undo %s %s", inc.ID, o.Type, o.ID))
		e.mu.Unlock()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, a)
		e.dispatch(a.ID)
	}
	return out, errors.Join(errs...)
}

// Recover prepares the engine after a restart: it rebuilds the rate
// guards' counters from the automatic actions created within the longest
// guard window. Call it once before handling alerts; Tick then restarts
// approved actions and times out stale ones.
func (e *Engine) Recover(ctx context.Context) error {
	now := e.clock.Now()
	e.mu.Lock()
	longest := e.opts.Guards.Window
	for _, pb := range e.playbooks {
		longest = max(longest, pb.Guards.Window)
	}
	e.mu.Unlock()
	if longest <= 0 {
		return nil
	}
	since := now.Add(-longest)
	var hits []hit
	f := store.ActionFilter{Page: store.Page{Limit: 1000}}
	for {
		acts, next, err := e.st.ListActions(ctx, f)
		if err != nil {
			return fmt.Errorf("cannot list actions: %w", err)
		}
		done := next == ""
		for _, a := range acts {
			if a.Created.Before(since) {
				done = true // newest first: the rest are older
				break
			}
			if a.Type == "notify" || len(a.Approvers) > 0 || a.Params[MetaHeld] != "" || a.Params[MetaRollbackOf] != "" ||
				!strings.HasPrefix(a.RequestedBy, "playbook:") {
				continue
			}
			hits = append(hits, hit{t: a.Created, class: a.Params[MetaDeviceClass], playbook: a.Playbook})
		}
		if done {
			break
		}
		f.Cursor = next
	}
	slices.SortFunc(hits, func(a, b hit) int { return a.t.Compare(b.t) })
	e.mu.Lock()
	e.hits = append(hits, e.hits...)
	e.mu.Unlock()
	return nil
}
