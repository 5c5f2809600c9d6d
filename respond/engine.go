package respond

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/respond/playbook"
	"github.com/vigil-iot/vigil/store"
)

// Store is what the engine reads and writes.
type Store interface {
	store.Actions
	store.Alerts
	store.Devices
	store.Incidents
}

// Options configures an Engine.
type Options struct {
	// Store persists actions and gives devices and incidents. Required.
	Store Store
	// Audit records every action, transition, approval and playbook change. Required.
	Audit *audit.Recorder
	// Playbooks are the loaded playbooks (SetPlaybooks replaces them).
	Playbooks []*playbook.Playbook
	// Connectors carry out actions, by Name() (agent, mqtt, revoke,
	// webhook, slack, email, syslog). An action whose connector is absent fails.
	Connectors []Connector
	// Guards bound automatic actions across all playbooks (zero: no bound).
	Guards playbook.Guards
	// DryRun makes every playbook record what it would have done instead of doing it.
	DryRun bool
	// AckTimeout is how long a sent action may wait for its
	// acknowledgement before it is timed_out (default 2m).
	AckTimeout time.Duration
	// ApprovalTimeout is the deadline of actions held by a guard or a
	// safety-critical device when their playbook has none (default 1h).
	ApprovalTimeout time.Duration
	// OnContained is called once per incident when a containment action
	// succeeded, with its acknowledgement time (incident.Correlator.Contain).
	// It is called without the engine's lock held: it may call the engine
	// (HandleIncident with "contained").
	OnContained func(ctx context.Context, incidentID string, at time.Time) error
	Clock       vigil.Clock
	Logger      *slog.Logger
	// Registerer receives the metrics (nil: not registered).
	Registerer prometheus.Registerer
}

// Engine runs playbooks and governs actions. It is safe for concurrent use.
type Engine struct {
	opts  Options
	st    Store
	rec   *audit.Recorder
	clock vigil.Clock
	log   *slog.Logger
	conns map[string]Connector

	mu        sync.Mutex // guards everything below and every read-modify-write of an action
	playbooks []*playbook.Playbook
	hits      []hit               // automatic actions, oldest first, for the guards
	inflight  map[string]bool     // action ids being executed
	dry       map[string]struct{} // dry-run action ids already recorded
	contained map[string]bool     // incidents already reported contained
	wg        sync.WaitGroup

	timeToContain prometheus.Histogram
	transitions   *prometheus.CounterVec
	held          *prometheus.CounterVec
}

type hit struct {
	t        time.Time
	class    string
	playbook string
}

// New checks the options and returns an Engine.
func New(opts Options) (*Engine, error) {
	if opts.Store == nil || opts.Audit == nil {
		return nil, vigil.Errorf(vigil.EINVALID, "respond engine needs a store and an audit recorder")
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 2 * time.Minute
	}
	if opts.ApprovalTimeout <= 0 {
		opts.ApprovalTimeout = time.Hour
	}
	if opts.Clock == nil {
		opts.Clock = vigil.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		opts: opts, st: opts.Store, rec: opts.Audit, clock: opts.Clock,
		log:       opts.Logger.With("component", "respond"),
		conns:     map[string]Connector{},
		playbooks: opts.Playbooks,
		inflight:  map[string]bool{},
		dry:       map[string]struct{}{},
		contained: map[string]bool{},
		timeToContain: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_time_to_contain_seconds",
			Help:    "Time from an incident's detection to its first acknowledged containment action.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600},
		}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_response_actions_total",
			Help: "Response action transitions, by the state entered.",
		}, []string{"state"}),
		held: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_response_held_total",
			Help: "Automatic actions held for approval, by reason (guard, safety_critical, untrusted_evidence).",
		}, []string{"reason"}),
	}
	for _, c := range opts.Connectors {
		if _, dup := e.conns[c.Name()]; dup {
			return nil, vigil.Errorf(vigil.EINVALID, "two connectors are named %q", c.Name())
		}
		e.conns[c.Name()] = c
	}
	if r := opts.Registerer; r != nil {
		for _, c := range []prometheus.Collector{e.timeToContain, e.transitions, e.held} {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("cannot register response metrics: %w", err)
			}
		}
	}
	return e, nil
}

// SetPlaybooks replaces the playbooks (after a reload) and audits, as
// actor, each playbook added, modified (by content hash) or removed
// relative to the current set. The playbooks given to New count as
// current, so call SetPlaybooks at startup (New with none) to audit the
// initial load.
func (e *Engine) SetPlaybooks(ctx context.Context, pbs []*playbook.Playbook, actor string) error {
	now := make(map[string]string, len(pbs))
	for _, pb := range pbs {
		now[pb.Name] = pb.Hash
	}
	e.mu.Lock()
	before := make(map[string]string, len(e.playbooks))
	for _, pb := range e.playbooks {
		before[pb.Name] = pb.Hash
	}
	e.playbooks = pbs
	e.mu.Unlock()
	var errs []error
	for name, h := range now {
		switch old, ok := before[name]; {
		case !ok:
			_, err := e.rec.RecordJSON(ctx, actor, audit.PlaybookLoad, "playbook:"+name, map[string]string{"change": "added", "sha256": h})
			errs = append(errs, err)
		case old != h:
			_, err := e.rec.RecordJSON(ctx, actor, audit.PlaybookChange, "playbook:"+name, map[string]string{"change": "modified", "sha256": h, "was": old})
			errs = append(errs, err)
		}
	}
	for name, h := range before {
		if _, ok := now[name]; !ok {
			_, err := e.rec.RecordJSON(ctx, actor, audit.PlaybookChange, "playbook:"+name, map[string]string{"change": "removed", "was": h})
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Playbooks returns the current playbooks.
func (e *Engine) Playbooks() []*playbook.Playbook {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.playbooks)
}

// ActionID is the id of the action a playbook step makes for one trigger
// (an alert id, or an incident event key): the same inputs always give the
// same id, so a retried or merged alert does not act twice.
func ActionID(playbookName, trigger, step string) string {
	h := sha256.Sum256([]byte(playbookName + "\x00" + trigger + "\x00" + step))
	return hex.EncodeToString(h[:16])
}

// HandleAlert runs every enabled playbook whose trigger and conditions
// take the alert, creates their actions (or finds them, when the alert was
// already handled) and starts those that need no approval. It returns the
// actions it created. Wire it to alert.Options.OnStored.
func (e *Engine) HandleAlert(ctx context.Context, a vigil.Alert) ([]vigil.Action, error) {
	dev := e.device(ctx, a.DeviceID)
	in := &playbook.Input{Alert: a, Device: dev}
	if a.IncidentID != "" {
		inc, err := e.st.GetIncident(ctx, a.IncidentID)
		if err != nil {
			inc = vigil.Incident{ID: a.IncidentID}
		}
		in.Incident = inc
	}
	var (
		out  []vigil.Action
		errs []error
	)
	for _, pb := range e.Playbooks() {
		if !pb.Enabled || !pb.Trigger.MatchAlert(&a, &dev) {
			continue
		}
		ok, err := pb.Eval(in)
		if err != nil {
			e.log.Warn("playbook condition failed", "playbook", pb.Name, "alert", a.ID, "err", err)
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue
		}
		acts, err := e.run(ctx, pb, in, a.ID, dev)
		out = append(out, acts...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// HandleIncident runs the playbooks triggered by an incident event
// (opened, contained, resolved, false_positive) and, on false_positive,
// rolls back the incident's succeeded actions whose playbook asks for it.
// Wire it to wherever incidents are closed (the API) and opened.
func (e *Engine) HandleIncident(ctx context.Context, inc vigil.Incident, event string) ([]vigil.Action, error) {
	var (
		out  []vigil.Action
		errs []error
	)
	if event == playbook.EventFalsePositive {
		acts, err := e.rollback(ctx, inc)
		out = append(out, acts...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	devices := inc.DeviceIDs
	if len(devices) == 0 {
		devices = []string{""}
	}
	for _, pb := range e.Playbooks() {
		if !pb.Enabled || !pb.Trigger.MatchIncident(event) {
			continue
		}
		for _, id := range devices {
			dev := e.device(ctx, id)
			in := &playbook.Input{Device: dev, Incident: inc, Event: event}
			ok, err := pb.Eval(in)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !ok {
				continue
			}
			acts, err := e.run(ctx, pb, in, "incident:"+inc.ID+":"+event+":"+id, dev)
			out = append(out, acts...)
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return out, errors.Join(errs...)
}

// device returns the stored device, or one with only its id.
func (e *Engine) device(ctx context.Context, id string) vigil.Device {
	if id == "" {
		return vigil.Device{}
	}
	d, err := e.st.GetDevice(ctx, id)
	if err != nil {
		if vigil.ErrorCode(err) != vigil.ENOTFOUND {
			e.log.Warn("cannot read device", "device", id, "err", err)
		}
		return vigil.Device{ID: id}
	}
	return d
}

// run creates the actions of one playbook for one trigger.
func (e *Engine) run(ctx context.Context, pb *playbook.Playbook, in *playbook.Input, trigger string, dev vigil.Device) ([]vigil.Action, error) {
	var (
		out  []vigil.Action
		errs []error
	)
	actor := "playbook:" + pb.Name
	for i := range pb.Steps {
		st := &pb.Steps[i]
		id := ActionID(pb.Name, trigger, st.Name)
		params, rerr := st.Render(in)
		now := e.clock.Now().UTC()
		a := vigil.Action{
			ID: id, Type: st.Action, DeviceID: dev.ID, IncidentID: in.Incident.ID, AlertID: in.Alert.ID,
			Playbook: pb.Name, RequestedBy: actor, Created: now, Updated: now,
		}
		meta := map[string]string{MetaConnector: st.Connector, MetaStep: st.Name, MetaDeviceClass: dev.Class}
		if st.Containment {
			meta[MetaContainment] = "true"
		}
		if st.Rollback != "" {
			meta[MetaUndo] = st.Rollback
			if pb.Rollback.OnFalsePositive {
				meta[MetaRollbackFP] = "true"
			}
		}
		if pb.DryRun || e.opts.DryRun {
			a.Params = params
			if err := e.dryRun(ctx, a, rerr); err != nil {
				errs = append(errs, err)
			}
			continue
		}

		e.mu.Lock()
		if _, err := e.st.GetAction(ctx, id); err == nil {
			e.mu.Unlock()
			continue // already made for this trigger: a retry or a merged alert
		} else if vigil.ErrorCode(err) != vigil.ENOTFOUND {
			e.mu.Unlock()
			errs = append(errs, fmt.Errorf("cannot read action %s: %w", id, err))
			continue
		}
		if e.madeForIncident(ctx, pb.Name, st.Action, dev.ID, in.Incident.ID) {
			e.mu.Unlock()
			continue // a second alert of the incident: contained once
		}
		if rerr != nil {
			a.State, a.Result = vigil.ActionFailed, rerr.Error()
			a.Params = meta
			err := e.create(ctx, a, actor, "cannot render parameters: "+rerr.Error())
			e.mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			out = append(out, a)
			continue
		}
		need, n := pb.Wants()
		why := ""
		if need {
			why = "playbook requires approval"
		}
		if !need && playbook.Actions[st.Action].Disruptive && taggedSafetyCritical(dev.Tags) {
			need, n, why = true, 1, "device is safety-critical"
			e.held.WithLabelValues("safety_critical").Inc()
		}
		if !need && playbook.Actions[st.Action].TakesDown && safetyCritical(&dev) {
			// A playbook that would do it does not load; this holds one whose
			// trigger was changed in code after it loaded.
			need, n, why = true, 1, fmt.Sprintf("%s of a safety-critical device (class %q) is never automatic", st.Action, dev.Class)
			e.held.WithLabelValues("safety_critical").Inc()
		}
		if !need && (playbook.Actions[st.Action].Disruptive || st.Containment) {
			if reason := e.untrusted(ctx, in, dev.ID); reason != "" {
				need, n, why = true, 1, reason
				e.held.WithLabelValues("untrusted_evidence").Inc()
			}
		}
		if !need && st.Action != "notify" {
			if reason := e.guard(pb, dev.Class, now); reason != "" {
				need, n, why = true, 1, reason
				e.held.WithLabelValues("guard").Inc()
			}
		}
		if need {
			timeout := pb.Approval.Timeout
			if timeout <= 0 {
				timeout = e.opts.ApprovalTimeout
			}
			meta[MetaApprovals] = strconv.Itoa(n)
			meta[MetaDeadline] = now.Add(timeout).Format(time.RFC3339Nano)
			meta[MetaHeld] = why
			a.State = vigil.ActionPendingApproval
		} else {
			a.State = vigil.ActionApproved
			if st.Action != "notify" {
				e.hits = append(e.hits, hit{t: now, class: dev.Class, playbook: pb.Name})
			}
		}
		a.Params = withMeta(params, meta)
		detail := "automatic"
		if need {
			detail = "held for approval: " + why
		}
		err := e.create(ctx, a, actor, detail)
		e.mu.Unlock()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, a)
		if a.State == vigil.ActionApproved {
			e.dispatch(a.ID)
		}
	}
	return out, errors.Join(errs...)
}

// madeForIncident says whether playbook pb already made a disruptive
// action of type typ on the device for the incident that has not ended in
// failure: two alerts of one incident (a threshold rule and a Sigma rule
// on the same brute force, a moment apart) isolate the device once, not
// twice. Callers hold e.mu, so the check and the creation are one step.
func (e *Engine) madeForIncident(ctx context.Context, pb, typ, deviceID, incidentID string) bool {
	if incidentID == "" || deviceID == "" || !playbook.Actions[typ].Disruptive {
		return false
	}
	acts, _, err := e.st.ListActions(ctx, store.ActionFilter{DeviceID: deviceID, IncidentID: incidentID, Page: store.Page{Limit: 1000}})
	if err != nil {
		return false
	}
	for _, a := range acts {
		switch a.State {
		case vigil.ActionFailed, vigil.ActionDenied, vigil.ActionTimedOut, vigil.ActionRolledBack:
			continue
		}
		if a.Playbook == pb && a.Type == typ {
			return true
		}
	}
	return false
}

// untrusted says why the trigger's evidence does not allow automatic
// containment of device id, or "" when it does. An alert trigger stands on
// its own evidence (untrustedEvidence). An incident trigger stands on the
// incident's alerts about the device: at least one of them must have
// trusted evidence, or anyone holding a token could get the device
// isolated through an incident playbook instead of an alert playbook.
func (e *Engine) untrusted(ctx context.Context, in *playbook.Input, id string) string {
	if in.Alert.ID != "" {
		if in.Alert.EvidenceTrusted() {
			return ""
		}
		return untrustedEvidence(&in.Alert)
	}
	if in.Incident.ID == "" {
		return ""
	}
	alerts, _, err := e.st.ListAlerts(ctx, store.AlertFilter{IncidentID: in.Incident.ID, DeviceID: id, Page: store.Page{Limit: 1000}})
	if err != nil {
		return fmt.Sprintf("cannot read the incident's alerts to check their evidence: %v", err)
	}
	for i := range alerts {
		if alerts[i].EvidenceTrusted() {
			return ""
		}
	}
	return "no alert of the incident on this device has evidence from the device's certificate or an enrolled sensor: automatic containment needs it"
}

// untrustedEvidence says why an alert's evidence does not allow automatic
// containment: some of it was not sent by the device itself (its
// certificate) nor by an enrolled sensor, so anyone holding a token could
// have forged it.
func untrustedEvidence(a *vigil.Alert) string {
	var bad []string
	for _, p := range a.Provenance {
		if !vigil.TrustedProvenance(p, a.DeviceID) {
			bad = append(bad, p)
		}
	}
	if len(bad) == 0 {
		return "evidence of unknown provenance: automatic containment needs evidence from the device's certificate or an enrolled sensor"
	}
	return fmt.Sprintf("evidence from %s: automatic containment needs evidence from the device's certificate or an enrolled sensor", strings.Join(bad, ", "))
}

// guard returns why an automatic action of pb on a device of class would
// exceed a guard at now, or "". Callers hold e.mu.
func (e *Engine) guard(pb *playbook.Playbook, class string, now time.Time) string {
	e.prune(now)
	check := func(g playbook.Guards, scope string, only func(hit) bool) string {
		if g.Window <= 0 {
			return ""
		}
		since := now.Add(-g.Window)
		var all, cls int
		for _, h := range e.hits {
			if h.t.Before(since) || !only(h) {
				continue
			}
			all++
			if h.class == class {
				cls++
			}
		}
		if g.MaxActions > 0 && all >= g.MaxActions {
			return fmt.Sprintf("%s guard: %d actions in %s (max %d)", scope, all, g.Window, g.MaxActions)
		}
		if n, ok := g.PerClass[class]; ok && cls >= n {
			return fmt.Sprintf("%s guard: %d actions on class %q in %s (max %d)", scope, cls, class, g.Window, n)
		}
		return ""
	}
	if r := check(e.opts.Guards, "global", func(hit) bool { return true }); r != "" {
		return r
	}
	return check(pb.Guards, "playbook "+pb.Name, func(h hit) bool { return h.playbook == pb.Name })
}

// prune drops guard hits older than any window. Callers hold e.mu.
func (e *Engine) prune(now time.Time) {
	longest := e.opts.Guards.Window
	for _, pb := range e.playbooks {
		longest = max(longest, pb.Guards.Window)
	}
	i := 0
	for i < len(e.hits) && e.hits[i].t.Before(now.Add(-longest)) {
		i++
	}
	e.hits = e.hits[i:]
}

// dryRun records what an action would have been, once per action id.
func (e *Engine) dryRun(ctx context.Context, a vigil.Action, rerr error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, done := e.dry[a.ID]; done {
		return nil
	}
	if len(e.dry) > 100_000 {
		clear(e.dry)
	}
	e.dry[a.ID] = struct{}{}
	detail := map[string]any{"type": a.Type, "device_id": a.DeviceID, "params": a.Params, "alert_id": a.AlertID, "incident_id": a.IncidentID}
	if rerr != nil {
		detail["error"] = rerr.Error()
	}
	e.log.Info("dry run: action not taken", "playbook", a.Playbook, "type", a.Type, "device", a.DeviceID)
	_, err := e.rec.RecordJSON(ctx, a.RequestedBy, audit.ActionDryRun, "action:"+a.ID, detail)
	return err
}

// create stores a new action and audits it. Callers hold e.mu.
func (e *Engine) create(ctx context.Context, a vigil.Action, actor, why string) error {
	if err := e.st.PutAction(ctx, a); err != nil {
		return fmt.Errorf("cannot store action %s: %w", a.ID, err)
	}
	e.transitions.WithLabelValues(string(a.State)).Inc()
	_, err := e.rec.RecordJSON(ctx, actor, audit.ActionCreate, "action:"+a.ID, map[string]any{
		"type": a.Type, "device_id": a.DeviceID, "state": a.State, "params": PublicParams(a),
		"alert_id": a.AlertID, "incident_id": a.IncidentID, "why": why,
	})
	return err
}

// taggedSafetyCritical reports whether tags hold playbook.SafetyCriticalTag,
// in any case and with surrounding spaces: a tag typed "Safety-Critical " by
// an operator must hold disruptive actions as well as the exact spelling.
func taggedSafetyCritical(tags []string) bool {
	return slices.ContainsFunc(tags, func(t string) bool {
		return strings.EqualFold(strings.TrimSpace(t), playbook.SafetyCriticalTag)
	})
}

// safetyCritical is playbook.SafetyCritical compared as taggedSafetyCritical
// compares tags: case and surrounding spaces of the tag and of the class do
// not matter.
func safetyCritical(d *vigil.Device) bool {
	if taggedSafetyCritical(d.Tags) {
		return true
	}
	class := strings.TrimSpace(d.Class)
	return slices.ContainsFunc(playbook.SafetyCriticalClasses, func(c string) bool { return strings.EqualFold(c, class) })
}
