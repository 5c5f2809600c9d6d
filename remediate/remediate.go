package remediate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/respond/playbook"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/vuln"
)

// Store is the state the engine reads and writes: plans, artifacts and
// devices (their inventory and health).
type Store interface {
	store.UpdatePlans
	ListArtifacts(ctx context.Context, product string) ([]vigil.Artifact, error)
	GetDevice(ctx context.Context, id string) (vigil.Device, error)
}

// Commander sends signed commands to devices and tells their results:
// Send queues a command (EBUSY when the device's queue is full; the
// engine tries again next tick); Result returns the command as issued and
// the agent's result once one came (done false until then).
// enroll.Handler is one.
type Commander interface {
	Send(deviceID, action string, params map[string]string, ttl time.Duration) (command.Command, error)
	Result(commandID string) (cmd command.Command, res command.Result, done bool)
}

// Alerts lists stored alerts (store.Alerts is one). The engine asks for
// the alerts of one device, of medium severity and above, created since
// its update was sent (store.AlertFilter DeviceID, MinSeverity, Since).
type Alerts interface {
	ListAlerts(ctx context.Context, f store.AlertFilter) ([]vigil.Alert, string, error)
}

// Baselines tells what a device's learned behaviour makes normal for its
// health (detect/baseline.Detector is one). HealthBounds returns the upper
// bound of normal of each health gauge the device's own baseline has
// learned, by name: the engine compares "cpu_pct", "memory_pct" and
// "temperature" with the device's last health sample. ok is false when the
// device has no baseline of its own (unknown, or still learning): the
// engine then judges its health by the fixed limits only. HealthBounds
// must be read only and return quickly: the engine calls it in its tick.
type Baselines interface {
	HealthBounds(deviceID string) (bounds map[string]float64, ok bool)
}

// Auditor records what the engine does (audit.Recorder is one).
type Auditor interface {
	RecordJSON(ctx context.Context, actor, action, object string, detail any) (vigil.AuditRecord, error)
}

// Audit actions of the engine.
const (
	AuditPropose  = "update_plan.propose"
	AuditApprove  = "update_plan.approve"
	AuditWave     = "update_plan.wave"
	AuditHalt     = "update_plan.halt"
	AuditComplete = "update_plan.complete"
	AuditRollback = "update_plan.rollback"
	AuditClose    = "finding.close"
)

// Condition is one case in which a plan may run without an approval:
// every condition set must hold for at least one of the plan's findings.
type Condition struct {
	KEV     bool    `json:"kev,omitempty"`
	Exposed bool    `json:"exposed,omitempty"`
	MinCVSS float64 `json:"min_cvss,omitempty"`
}

func (c Condition) match(f vigil.PlanFinding, cvss float64) bool {
	return (!c.KEV || f.KEV) && (!c.Exposed || f.Exposed) && cvss >= c.MinCVSS
}

func (c Condition) String() string {
	var w []string
	if c.KEV {
		w = append(w, "KEV")
	}
	if c.Exposed {
		w = append(w, "exposed")
	}
	if c.MinCVSS > 0 {
		w = append(w, fmt.Sprintf("CVSS ≥ %.1f", c.MinCVSS))
	}
	if len(w) == 0 {
		return "any finding"
	}
	return strings.Join(w, " and ")
}

// DefaultAuto is the default policy: known exploited and reachable.
var DefaultAuto = []Condition{{KEV: true, Exposed: true}}

// Options configure an Engine.
type Options struct {
	Store    Store
	Commands Commander
	// Findings returns the open, unsuppressed findings.
	Findings func() []vuln.Finding
	Audit    Auditor
	// Alert receives the alert of a halted plan.
	Alert func(vigil.Alert)
	// Auto lists when a plan runs without approval (nil: DefaultAuto; an
	// empty non-nil list: never).
	Auto []Condition
	// Guards bound the update commands sent, as they bound actions
	// (MaxActions per Window, PerClass per device class); a wave that
	// would exceed them waits.
	Guards playbook.Guards
	// Canary is the share of a cohort in the first wave (default 0.2; at
	// least one device).
	Canary float64
	// WaveTimeout bounds how long a device of a wave may take to report
	// its result, then the new version with normal health (default 30m).
	WaveTimeout time.Duration
	// CommandTTL is the lifetime of an update command (default 1h).
	CommandTTL time.Duration
	// ArtifactURL is the path agents download an artifact from (default
	// /api/v1/agent/artifacts/{id}).
	ArtifactURL func(id string) string
	// Healthy judges a device after its update (default: a health sample
	// since the update with CPU and memory under 95%).
	Healthy func(d vigil.Device, since time.Time) error
	// Alerts, when set, are read for the device's behaviour after its
	// update: an alert of medium severity or above about the device,
	// raised since its update was sent, fails the device like a failed
	// install (rolled back, the wave halts). Not counted: the engine's own
	// alerts, vulnerability findings, retro-hunt alerts over old history,
	// and the learned-behaviour novelty of the updated product's new
	// version (baseline.new_software for Product).
	Alerts Alerts
	// Baselines, when set, bound the device's health by its own learned
	// normal besides Healthy: a last sample above a learned bound keeps the
	// device from passing (rolled back when the wave times out).
	Baselines Baselines
	// Settle is how long a device is watched after its install before it
	// counts as updated, for the behaviour checks to see it (default the
	// smaller of 5 minutes and a quarter of WaveTimeout; negative: none).
	Settle time.Duration
	Clock  vigil.Clock
	Logger *slog.Logger
}

// Engine proposes and runs update plans. Tick does one round; it is safe
// to call from several goroutines (one round runs at a time).
type Engine struct {
	o   Options
	log *slog.Logger
	mu  sync.Mutex
	// sent are the times of the update commands sent, by class, for the
	// guards.
	sent []sentCmd
}

type sentCmd struct {
	at    time.Time
	class string
}

// New checks the options.
func New(o Options) (*Engine, error) {
	if o.Store == nil || o.Commands == nil || o.Findings == nil {
		return nil, errors.New("cannot create remediation engine: Store, Commands and Findings are required")
	}
	if o.Auto == nil {
		o.Auto = DefaultAuto
	}
	if o.Canary <= 0 || o.Canary >= 1 {
		o.Canary = 0.2
	}
	if o.WaveTimeout <= 0 {
		o.WaveTimeout = 30 * time.Minute
	}
	switch {
	case o.Settle == 0:
		o.Settle = min(5*time.Minute, o.WaveTimeout/4)
	case o.Settle < 0:
		o.Settle = 0
	case o.Settle >= o.WaveTimeout:
		return nil, fmt.Errorf("cannot create remediation engine: settle %s is not shorter than the wave timeout %s", o.Settle, o.WaveTimeout)
	}
	if o.CommandTTL <= 0 {
		o.CommandTTL = time.Hour
	}
	if o.ArtifactURL == nil {
		o.ArtifactURL = func(id string) string { return "/api/v1/agent/artifacts/" + id }
	}
	if o.Healthy == nil {
		o.Healthy = DefaultHealthy
	}
	if o.Clock == nil {
		o.Clock = vigil.SystemClock{}
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{o: o, log: log.With("component", "remediate")}, nil
}

// DefaultHealthy accepts a device that sent a health sample since the
// update with CPU and memory under 95%.
var DefaultHealthy = HealthBelow(95, 95)

// HealthBelow returns a health check that accepts a device that sent a
// health sample since the update with CPU and memory (percent) under the
// limits.
func HealthBelow(cpu, memory float64) func(d vigil.Device, since time.Time) error {
	return func(d vigil.Device, since time.Time) error {
		h := d.Health
		switch {
		case h == nil || h.Time.Before(since):
			return errors.New("no health sample since the update")
		case h.CPU >= cpu:
			return fmt.Errorf("CPU at %.0f%%", h.CPU)
		case h.Memory >= memory:
			return fmt.Errorf("memory at %.0f%%", h.Memory)
		}
		return nil
	}
}

// Run ticks every interval until ctx ends.
func (e *Engine) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := e.Tick(ctx); err != nil {
			e.log.Warn("remediation tick failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Tick proposes plans for new findings, advances the running plans one
// step and closes the findings whose devices report the fixed version.
func (e *Engine) Tick(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	var errs []error
	if err := e.propose(ctx); err != nil {
		errs = append(errs, err)
	}
	plans, err := e.o.Store.ListUpdatePlans(ctx, vigil.PlanRunning, vigil.PlanHalted, vigil.PlanCompleted)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, p := range plans {
		before := fmt.Sprint(p)
		if p.State == vigil.PlanRunning {
			if err := e.advance(ctx, &p); err != nil {
				errs = append(errs, err)
			}
		}
		e.close(ctx, &p)
		if fmt.Sprint(p) != before {
			p.Updated = e.now()
			if err := e.o.Store.PutUpdatePlan(ctx, p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (e *Engine) now() time.Time { return e.o.Clock.Now().UTC() }

func (e *Engine) audit(ctx context.Context, actor, action string, p *vigil.UpdatePlan, detail map[string]any) {
	if e.o.Audit == nil {
		return
	}
	if _, err := e.o.Audit.RecordJSON(context.WithoutCancel(ctx), actor, action, "update_plan:"+p.ID, detail); err != nil {
		e.log.Error("cannot audit", "action", action, "plan", p.ID, "err", err)
	}
}

// Cohort is "class/model" of a device.
func Cohort(d vigil.Device) string { return cmp.Or(d.Class, "-") + "/" + cmp.Or(d.Model, "-") }

// ecosystem is the version scheme of a device's component.
func ecosystem(d vigil.Device, name string) vuln.Ecosystem {
	for _, c := range d.Software {
		if c.Name == name && strings.HasPrefix(c.PURL, "pkg:") {
			t, _, _ := strings.Cut(strings.TrimPrefix(c.PURL, "pkg:"), "/")
			return vuln.EcosystemOf(t)
		}
	}
	return vuln.Generic
}

// fits reports whether an artifact is for a device.
func fits(a vigil.Artifact, d vigil.Device) bool {
	return (len(a.Classes) == 0 || slices.Contains(a.Classes, d.Class)) && (len(a.Models) == 0 || slices.Contains(a.Models, d.Model))
}

// pick returns the artifact that fixes f on d: of f's component, for d's
// class and model, at a version at least the fixed one and above the
// installed one; the lowest such version (the smallest change).
func pick(as []vigil.Artifact, f vuln.Finding, d vigil.Device) (vigil.Artifact, bool) {
	eco := ecosystem(d, f.Component)
	var best vigil.Artifact
	ok := false
	for _, a := range as {
		if !fits(a, d) || vuln.Compare(eco, a.Version, f.FixedVersion) < 0 || vuln.Compare(eco, a.Version, f.ComponentVersion) <= 0 {
			continue
		}
		if !ok || vuln.Compare(eco, a.Version, best.Version) < 0 {
			best, ok = a, true
		}
	}
	return best, ok
}

// propose makes plans for the findings with an artifact that no plan of
// that artifact covers yet.
func (e *Engine) propose(ctx context.Context) error {
	plans, err := e.o.Store.ListUpdatePlans(ctx)
	if err != nil {
		return err
	}
	covered := map[string]bool{} // finding id | artifact id
	for _, p := range plans {
		for _, f := range p.Findings {
			covered[f.FindingID+"|"+p.ArtifactID] = true
		}
	}
	type key struct{ cohort, artifact string }
	type group struct {
		art      vigil.Artifact
		findings []vigil.PlanFinding
		cvss     []float64
		class    string
	}
	groups := map[key]*group{}
	arts := map[string][]vigil.Artifact{}
	for _, f := range e.o.Findings() {
		if f.FixedVersion == "" || f.Suppressed != "" {
			continue
		}
		as, ok := arts[f.Component]
		if !ok {
			if as, err = e.o.Store.ListArtifacts(ctx, f.Component); err != nil {
				return err
			}
			arts[f.Component] = as
		}
		if len(as) == 0 {
			continue
		}
		d, err := e.o.Store.GetDevice(ctx, f.DeviceID)
		if err != nil {
			continue
		}
		a, ok := pick(as, f, d)
		if !ok || covered[f.ID+"|"+a.ID] {
			continue
		}
		k := key{Cohort(d), a.ID}
		g := groups[k]
		if g == nil {
			g = &group{art: a, class: d.Class}
			groups[k] = g
		}
		g.findings = append(g.findings, vigil.PlanFinding{FindingID: f.ID, DeviceID: f.DeviceID, Vuln: f.Vuln, KEV: f.KEV, Exposed: f.Exposed,
			Component: f.Component, From: f.ComponentVersion, Fixed: f.FixedVersion, FirstSeen: f.FirstSeen})
		g.cvss = append(g.cvss, f.CVSS)
	}
	keys := make([]key, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.cohort, b.cohort), cmp.Compare(a.artifact, b.artifact))
	})
	var errs []error
	for _, k := range keys {
		g := groups[k]
		now := e.now()
		p := vigil.UpdatePlan{ID: vigil.NewID(), Cohort: k.cohort, Product: g.art.Product, Version: g.art.Version, ArtifactID: g.art.ID,
			Findings: g.findings, Waves: e.waves(g.findings), State: vigil.PlanProposed, Created: now, Updated: now}
		p.Reason = "waits for approval: no finding is " + orList(e.o.Auto)
		for i, f := range g.findings {
			if c, ok := e.autoCondition(f, g.cvss[i]); ok {
				p.Auto, p.State, p.Approved, p.ApprovedBy = true, vigil.PlanRunning, now, "policy"
				p.Reason = "runs by policy: " + f.Vuln + " on " + f.DeviceID + " is " + c.String()
				break
			}
		}
		if err := e.o.Store.PutUpdatePlan(ctx, p); err != nil {
			errs = append(errs, err)
			continue
		}
		e.log.Info("update plan proposed", "plan", p.ID, "cohort", p.Cohort, "product", p.Product, "version", p.Version,
			"devices", len(devices(p.Findings)), "waves", len(p.Waves), "state", p.State, "reason", p.Reason)
		e.audit(ctx, "vigil", AuditPropose, &p, map[string]any{"cohort": p.Cohort, "artifact": p.ArtifactID, "product": p.Product,
			"version": p.Version, "devices": devices(p.Findings), "state": p.State, "reason": p.Reason})
	}
	return errors.Join(errs...)
}

func orList(cs []Condition) string {
	if len(cs) == 0 {
		return "allowed to run without approval (the policy allows none)"
	}
	var w []string
	for _, c := range cs {
		w = append(w, c.String())
	}
	return strings.Join(w, " or ")
}

func (e *Engine) autoCondition(f vigil.PlanFinding, cvss float64) (Condition, bool) {
	for _, c := range e.o.Auto {
		if c.match(f, cvss) {
			return c, true
		}
	}
	return Condition{}, false
}

func devices(fs []vigil.PlanFinding) []string {
	var out []string
	for _, f := range fs {
		if !slices.Contains(out, f.DeviceID) {
			out = append(out, f.DeviceID)
		}
	}
	slices.Sort(out)
	return out
}

// waves splits the devices: the canary share first (at least one), then
// the rest.
func (e *Engine) waves(fs []vigil.PlanFinding) []vigil.PlanWave {
	ds := devices(fs)
	n := int(math.Ceil(float64(len(ds)) * e.o.Canary))
	n = max(1, min(n, len(ds)))
	var ws []vigil.PlanWave
	for _, part := range [][]string{ds[:n], ds[n:]} {
		if len(part) == 0 {
			continue
		}
		var w vigil.PlanWave
		for _, d := range part {
			w.Targets = append(w.Targets, vigil.PlanTarget{DeviceID: d, State: vigil.TargetPending})
		}
		ws = append(ws, w)
	}
	return ws
}
