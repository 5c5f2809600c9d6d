package remediate

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/vuln"
)

// current returns the index of the first unfinished wave, or -1.
func current(p *vigil.UpdatePlan) int {
	for i := range p.Waves {
		if p.Waves[i].Finished.IsZero() {
			return i
		}
	}
	return -1
}

// advance moves a running plan one step: start the current wave, or
// check its devices, then finish it, halt the plan or complete it.
func (e *Engine) advance(ctx context.Context, p *vigil.UpdatePlan) error {
	i := current(p)
	if i < 0 {
		e.complete(ctx, p)
		return nil
	}
	w := &p.Waves[i]
	if w.Started.IsZero() {
		return e.start(ctx, p, i)
	}
	for j := range w.Targets {
		e.check(ctx, p, &w.Targets[j])
	}
	done, failed := true, 0
	for _, t := range w.Targets {
		switch t.State {
		case vigil.TargetUpdated:
		case vigil.TargetRolledBack:
			failed++
		case vigil.TargetFailed:
			failed++
			if t.Rollback != "" {
				done = false // its rollback has not answered yet
			}
		default:
			done = false
		}
	}
	if !done {
		return nil
	}
	w.Finished = e.now()
	if failed > 0 {
		w.Failed = true
		e.halt(ctx, p, "vigil", fmt.Sprintf("wave %d of %d failed: %d of %d devices", i+1, len(p.Waves), failed, len(w.Targets)))
		return nil
	}
	e.log.Info("update wave passed", "plan", p.ID, "wave", i+1, "devices", len(w.Targets))
	if current(p) < 0 {
		e.complete(ctx, p)
	}
	return nil
}

// start sends the update command to every device of wave i, within the
// guards; a wave the guards do not let through waits for the next tick.
func (e *Engine) start(ctx context.Context, p *vigil.UpdatePlan, i int) error {
	w := &p.Waves[i]
	now := e.now()
	classes := make([]string, len(w.Targets))
	for j, t := range w.Targets {
		if d, err := e.o.Store.GetDevice(ctx, t.DeviceID); err == nil {
			classes[j] = d.Class
			w.Targets[j].Previous = version(d, p.Product)
		}
	}
	if why := e.guard(now, classes); why != "" {
		e.log.Warn("update wave waits for the guards", "plan", p.ID, "wave", i+1, "guard", why)
		return nil
	}
	arts, err := e.o.Store.ListArtifacts(ctx, p.Product)
	if err != nil {
		return err
	}
	var art vigil.Artifact
	for _, a := range arts {
		if a.ID == p.ArtifactID {
			art = a
		}
	}
	if art.ID == "" {
		e.halt(ctx, p, "vigil", "artifact "+p.ArtifactID+" was removed")
		return nil
	}
	params := map[string]string{"url": e.o.ArtifactURL(art.ID), "sha256": art.SHA256, "signature": art.Signature,
		"version": art.Version, "product": art.Product}
	w.Started = now
	for j := range w.Targets {
		t := &w.Targets[j]
		c, err := e.o.Commands.Send(t.DeviceID, command.ActionUpdate, params, e.o.CommandTTL)
		t.Sent = now
		if err != nil {
			t.State, t.Detail, t.Done = vigil.TargetFailed, "cannot send the update: "+err.Error(), now
			continue
		}
		t.State, t.Command = vigil.TargetSent, c.ID
		e.sent = append(e.sent, sentCmd{at: now, class: classes[j]})
	}
	e.log.Info("update wave started", "plan", p.ID, "wave", i+1, "devices", len(w.Targets))
	e.audit(ctx, "vigil", AuditWave, p, map[string]any{"wave": i + 1, "devices": targetIDs(w.Targets), "artifact": art.ID, "version": art.Version})
	return nil
}

// guard returns why sending to devices of these classes now would exceed
// the guards, or "".
func (e *Engine) guard(now time.Time, classes []string) string {
	g := e.o.Guards
	if g.Window <= 0 {
		return ""
	}
	live := e.sent[:0]
	for _, s := range e.sent {
		if now.Sub(s.at) < g.Window {
			live = append(live, s)
		}
	}
	e.sent = live
	if g.MaxActions > 0 && len(live)+len(classes) > g.MaxActions {
		return fmt.Sprintf("%d commands in %s, at most %d", len(live)+len(classes), g.Window, g.MaxActions)
	}
	for c, max := range g.PerClass {
		n := 0
		for _, s := range live {
			if s.class == c {
				n++
			}
		}
		for _, x := range classes {
			if x == c {
				n++
			}
		}
		if n > max {
			return fmt.Sprintf("%d commands to class %s in %s, at most %d", n, c, g.Window, max)
		}
	}
	return ""
}

func targetIDs(ts []vigil.PlanTarget) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.DeviceID
	}
	return out
}

// version returns the version of product a device reports ("" when none).
func version(d vigil.Device, product string) string {
	for _, c := range d.Software {
		if c.Name == product {
			return c.Version
		}
	}
	return ""
}

// check moves one target on: the command's result, then the health check
// (the device reports the new version and normal health), then a
// rollback's result.
func (e *Engine) check(ctx context.Context, p *vigil.UpdatePlan, t *vigil.PlanTarget) {
	now := e.now()
	late := now.Sub(t.Sent) > e.o.WaveTimeout
	switch t.State {
	case vigil.TargetSent:
		_, res, done := e.o.Commands.Result(t.Command)
		switch {
		case done && res.Status == command.StatusSucceeded:
			t.State, t.Done = vigil.TargetInstalled, now
		case done:
			t.State, t.Done, t.Detail = vigil.TargetFailed, now, res.Status+": "+firstLine(res.Error)
			if strings.Contains(res.Error, "rolled back") && !strings.Contains(res.Error, "rollback failed") {
				// The agent restored the version before itself.
				t.State = vigil.TargetRolledBack
			}
		case late:
			t.State, t.Done, t.Detail = vigil.TargetFailed, now, fmt.Sprintf("no result within %s", e.o.WaveTimeout)
		}
	case vigil.TargetInstalled:
		bad, aerr := e.misbehaviour(ctx, p, t)
		if bad != "" {
			e.rollback(ctx, p, t, "misbehaves after the update: "+bad)
			return
		}
		d, err := e.o.Store.GetDevice(ctx, t.DeviceID)
		if err != nil {
			return
		}
		v := version(d, p.Product)
		eco := ecosystem(d, p.Product)
		herr := e.o.Healthy(d, t.Sent)
		if herr == nil {
			herr = e.learnedNormal(d, t.Sent)
		}
		if herr == nil {
			herr = aerr
		}
		good := d.LastSeen.After(t.Sent) && v != "" && vuln.Compare(eco, v, p.Version) >= 0 && herr == nil
		switch {
		case good && now.Sub(t.Done) >= e.o.Settle:
			t.State, t.Done, t.Detail = vigil.TargetUpdated, now, "reports "+p.Product+" "+v
		case good:
			// Watched for Settle after its install, even past the wave
			// timeout: a late install is not a failure.
		case late:
			why := fmt.Sprintf("reports %s %q, not %s", p.Product, v, p.Version)
			if v != "" && vuln.Compare(eco, v, p.Version) >= 0 {
				why = "unhealthy after the update"
				if herr != nil {
					why += ": " + herr.Error()
				}
			}
			e.rollback(ctx, p, t, why)
		}
	case vigil.TargetFailed:
		if t.Rollback == "" {
			return
		}
		_, res, done := e.o.Commands.Result(t.Rollback)
		switch {
		case done && res.Status == command.StatusSucceeded:
			t.State, t.Rollback = vigil.TargetRolledBack, ""
			t.Detail += "; rolled back"
		case done:
			t.Detail += "; rollback " + res.Status + ": " + firstLine(res.Error)
			t.Rollback = ""
		case now.Sub(t.Done) > e.o.WaveTimeout:
			t.Detail += "; no rollback result"
			t.Rollback = ""
		}
	}
}

// misbehaviour returns what an alert about the device since its update
// says ("" when none counts; see Options.Alerts), or the error that kept
// the alerts from being read (the device does not pass meanwhile).
func (e *Engine) misbehaviour(ctx context.Context, p *vigil.UpdatePlan, t *vigil.PlanTarget) (string, error) {
	if e.o.Alerts == nil {
		return "", nil
	}
	as, _, err := e.o.Alerts.ListAlerts(ctx, store.AlertFilter{DeviceID: t.DeviceID, MinSeverity: vigil.SeverityMedium, Since: t.Sent,
		Page: store.Page{Limit: 100}})
	if err != nil {
		e.log.Warn("cannot read the alerts of an updated device", "plan", p.ID, "device", t.DeviceID, "err", err)
		return "", fmt.Errorf("cannot read its alerts: %w", err)
	}
	for _, a := range as {
		if a.DeviceID != t.DeviceID || a.Severity < vigil.SeverityMedium || a.Created.Before(t.Sent) || !behaviour(a, p.Product) {
			continue
		}
		return fmt.Sprintf("%s alert %q (%s %s, %s)", a.Severity, a.Title, a.Detector, a.RuleID, a.ID), nil
	}
	return "", nil
}

// behaviour reports whether an alert says something of a device's
// behaviour after an update of product: not the engine's own alerts, not
// a vulnerability finding, not a retro-hunt over old history, not the
// new version of the updated product seen for the first time.
func behaviour(a vigil.Alert, product string) bool {
	switch {
	case a.Detector == "remediate" || a.Detector == "vuln" || a.Retro:
		return false
	case a.RuleID == "baseline.new_software":
		obs, _ := a.Fields["baseline.observed"].(string)
		return !strings.HasPrefix(obs, product+" ") && obs != product
	}
	return true
}

// learnedNormal checks the device's last health sample since the update
// against the bounds its own baseline learned (nil without Baselines, a
// baseline of its own or a sample since).
func (e *Engine) learnedNormal(d vigil.Device, since time.Time) error {
	h := d.Health
	if e.o.Baselines == nil || h == nil || h.Time.Before(since) {
		return nil
	}
	bounds, ok := e.o.Baselines.HealthBounds(d.ID)
	if !ok {
		return nil
	}
	for _, g := range []struct {
		name, what string
		v          float64
	}{{"cpu_pct", "CPU", h.CPU}, {"memory_pct", "memory", h.Memory}, {"temperature", "temperature", h.Temperature}} {
		if hi, ok := bounds[g.name]; ok && g.v > hi {
			return fmt.Errorf("%s at %.4g, above its learned normal (at most %.4g)", g.what, g.v, hi)
		}
	}
	return nil
}

// rollback marks a target failed after a good install and sends the
// rollback command.
func (e *Engine) rollback(ctx context.Context, p *vigil.UpdatePlan, t *vigil.PlanTarget, why string) {
	now := e.now()
	t.State, t.Done, t.Detail = vigil.TargetFailed, now, why
	params := map[string]string{"product": p.Product}
	if t.Previous != "" {
		params["version"] = t.Previous
	}
	c, err := e.o.Commands.Send(t.DeviceID, command.ActionRollback, params, e.o.CommandTTL)
	if err != nil {
		t.Detail += "; cannot send the rollback: " + err.Error()
		return
	}
	t.Rollback = c.ID
	e.audit(ctx, "vigil", AuditRollback, p, map[string]any{"device": t.DeviceID, "command": c.ID, "reason": why})
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// halt stops a plan: no further wave; the targets not sent are skipped;
// the failed devices are rolled back (by the agent itself, or by the
// rollback command check sent); an alert says so.
func (e *Engine) halt(ctx context.Context, p *vigil.UpdatePlan, actor, why string) {
	now := e.now()
	p.State, p.Halted, p.Finished = vigil.PlanHalted, why, now
	var failed []string
	for i := range p.Waves {
		for j := range p.Waves[i].Targets {
			t := &p.Waves[i].Targets[j]
			switch t.State {
			case vigil.TargetPending:
				t.State = vigil.TargetSkipped
			case vigil.TargetFailed, vigil.TargetRolledBack:
				failed = append(failed, t.DeviceID)
			}
		}
	}
	e.log.Warn("update plan halted", "plan", p.ID, "cohort", p.Cohort, "reason", why, "failed", failed)
	e.audit(ctx, actor, AuditHalt, p, map[string]any{"reason": why, "failed": failed})
	if e.o.Alert == nil || actor != "vigil" {
		return
	}
	a := vigil.Alert{DedupKey: "update_plan|" + p.ID, Detector: "remediate", RuleID: "update-plan-halted",
		Title:    fmt.Sprintf("Update plan for %s (%s → %s) halted: %s", p.Cohort, p.Product, p.Version, why),
		Severity: vigil.SeverityHigh, Tags: []string{"update", "remediation"}, FirstEventTime: now, LastEventTime: now, Created: now, Count: 1,
		Fields: map[string]any{"update_plan.id": p.ID, "update_plan.cohort": p.Cohort, "update_plan.product": p.Product,
			"update_plan.version": p.Version, "update_plan.failed": strings.Join(failed, ","), "update_plan.reason": why}}
	if len(failed) > 0 {
		a.DeviceID = failed[0]
		for _, d := range failed[1:] {
			a.Entities = append(a.Entities, "device:"+d)
		}
	}
	e.o.Alert(a)
}

func (e *Engine) complete(ctx context.Context, p *vigil.UpdatePlan) {
	p.State, p.Finished = vigil.PlanCompleted, e.now()
	e.log.Info("update plan completed", "plan", p.ID, "cohort", p.Cohort, "product", p.Product, "version", p.Version)
	e.audit(ctx, "vigil", AuditComplete, p, map[string]any{"devices": devices(p.Findings)})
}

// close closes the plan's open findings whose device reports at least
// the fixed version.
func (e *Engine) close(ctx context.Context, p *vigil.UpdatePlan) {
	for i := range p.Findings {
		f := &p.Findings[i]
		d, err := e.o.Store.GetDevice(ctx, f.DeviceID)
		if err != nil {
			continue
		}
		v := version(d, f.Component)
		fixed := f.Fixed
		if fixed == "" {
			fixed = p.Version
		}
		if v == "" || vuln.Compare(ecosystem(d, f.Component), v, fixed) < 0 {
			if !f.Closed.IsZero() && v != "" {
				// Rolled back to a vulnerable version: open again.
				f.Closed = time.Time{}
				e.log.Info("finding reopened", "finding", f.FindingID, "device", f.DeviceID, "version", v)
			}
			continue
		}
		if !f.Closed.IsZero() {
			continue
		}
		f.Closed = e.now()
		e.log.Info("finding closed", "finding", f.FindingID, "vuln", f.Vuln, "device", f.DeviceID, "version", v, "time_to_remediate", f.TimeToRemediate())
		e.audit(ctx, "vigil", AuditClose, p, map[string]any{"finding": f.FindingID, "vuln": f.Vuln, "device": f.DeviceID,
			"version": v, "time_to_remediate_s": int64(f.TimeToRemediate().Seconds())})
	}
}

// Approve lets a proposed plan run. ENOTFOUND for no plan, ECONFLICT when
// it is not proposed.
func (e *Engine) Approve(ctx context.Context, id, actor string) (vigil.UpdatePlan, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := e.o.Store.GetUpdatePlan(ctx, id)
	if err != nil {
		return p, err
	}
	if p.State != vigil.PlanProposed {
		return p, vigil.Errorf(vigil.ECONFLICT, "update plan %s is %s, not proposed", id, p.State)
	}
	now := e.now()
	p.State, p.Approved, p.ApprovedBy, p.Updated = vigil.PlanRunning, now, actor, now
	if err := e.o.Store.PutUpdatePlan(ctx, p); err != nil {
		return p, err
	}
	e.audit(ctx, actor, AuditApprove, &p, map[string]any{"cohort": p.Cohort, "version": p.Version})
	return p, nil
}

// Halt stops a proposed or running plan: no further wave is sent (the
// devices already updated stay so). ENOTFOUND for no plan, ECONFLICT when
// it is already halted or completed.
func (e *Engine) Halt(ctx context.Context, id, actor, reason string) (vigil.UpdatePlan, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := e.o.Store.GetUpdatePlan(ctx, id)
	if err != nil {
		return p, err
	}
	if p.State != vigil.PlanProposed && p.State != vigil.PlanRunning {
		return p, vigil.Errorf(vigil.ECONFLICT, "update plan %s is %s", id, p.State)
	}
	if reason == "" {
		reason = "halted by " + actor
	}
	e.halt(ctx, &p, actor, reason)
	p.Updated = e.now()
	if err := e.o.Store.PutUpdatePlan(ctx, p); err != nil {
		return p, err
	}
	return p, nil
}
