package playbook

import (
	"fmt"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/vigil-iot/vigil"
)

// Approval modes.
const (
	ApprovalAuto     = "auto"
	ApprovalRequired = "required"
)

// Incident events a playbook can trigger on.
const (
	EventOpened        = "opened"
	EventContained     = "contained"
	EventResolved      = "resolved"
	EventFalsePositive = "false_positive"
)

// SafetyCriticalTag marks devices that are never isolated (nor quarantined,
// blocked, stopped or rebooted) automatically: such actions wait for
// approval whatever the playbook says.
const SafetyCriticalTag = "safety-critical"

// SafetyCriticalClasses are the device classes whose loss is a hazard in
// itself (they control a physical process or keep someone alive): they
// are never taken down (ActionSpec.TakesDown) automatically, tagged
// safety-critical or not.
var SafetyCriticalClasses = []string{
	vigil.ClassPLCGateway, "plc", "rtu", "ied", "dcs", "sis", "safety", "safety-controller",
	"controller", "medical", "infusion-pump", "patient-monitor", "ventilator",
}

// SafetyCritical reports whether the device is tagged safety-critical or
// is of a safety-critical class. Classes and tags are compared without
// regard to case or surrounding space: a class comes from what a device
// or sensor reports, and "PLC" is a plc.
func SafetyCritical(d *vigil.Device) bool {
	return slices.ContainsFunc(d.Tags, func(t string) bool { return strings.EqualFold(strings.TrimSpace(t), SafetyCriticalTag) }) ||
		SafetyCriticalClass(d.Class)
}

// SafetyCriticalClass reports whether a class is one of
// SafetyCriticalClasses, without regard to case or surrounding space.
func SafetyCriticalClass(class string) bool {
	class = strings.TrimSpace(class)
	return slices.ContainsFunc(SafetyCriticalClasses, func(c string) bool { return strings.EqualFold(c, class) })
}

// ActionSpec describes one action type: the connector that carries it out
// by default, whether it is disruptive (held for approval on devices
// tagged safety-critical), whether it takes the device down (never
// automatic on a SafetyCritical device, tag or class: the playbook that
// would do it automatically does not load, and the engine holds it for
// approval whatever the playbook says), whether its acknowledgement
// contains an incident, and the action type that undoes it.
type ActionSpec struct {
	Connector   string
	Disruptive  bool
	TakesDown   bool
	Containment bool
	Undo        string
}

// Actions are the action types playbooks may use.
var Actions = map[string]ActionSpec{
	"isolate":            {Connector: "agent", Disruptive: true, Containment: true, Undo: "restore"},
	"restore":            {Connector: "agent"},
	"kill_process":       {Connector: "agent", Containment: true},
	"stop_service":       {Connector: "agent", Disruptive: true, Containment: true, Undo: "restart_service"},
	"restart_service":    {Connector: "agent"},
	"update":             {Connector: "agent"},
	"set_param":          {Connector: "agent"},
	"reboot":             {Connector: "agent", Disruptive: true},
	"shutdown":           {Connector: "agent", Disruptive: true, TakesDown: true, Containment: true},
	"block":              {Connector: "agent", Disruptive: true, Containment: true, Undo: "unblock"},
	"unblock":            {Connector: "agent"},
	"quarantine_client":  {Connector: "mqtt", Disruptive: true, Containment: true, Undo: "release_client"},
	"release_client":     {Connector: "mqtt"},
	"revoke_certificate": {Connector: "revoke", Disruptive: true, Containment: true},
	"notify":             {},
}

// Connectors are the connector names a step may name.
var Connectors = []string{"agent", "mqtt", "revoke", "webhook", "slack", "email", "syslog"}

// Playbook is one loaded, validated playbook.
type Playbook struct {
	Name        string
	Description string
	File        string
	// Hash is the hex SHA-256 of the file's content (audited on load).
	Hash       string
	Enabled    bool
	DryRun     bool
	Trigger    Trigger
	Conditions []Condition
	Steps      []Step
	Approval   Approval
	Guards     Guards
	Rollback   Rollback
}

// Trigger says what starts a playbook: alerts (every non-empty list must
// match) or incident events.
type Trigger struct {
	Rules         []string
	Tags          []string
	MinSeverity   vigil.Severity
	DeviceClasses []string
	Incident      []string
}

// Condition is one compiled expression; all must be true.
type Condition struct {
	Source  string
	program *vm.Program
}

// Step is one action to create.
type Step struct {
	Name      string
	Action    string
	Connector string
	Params    map[string]*template.Template
	// Rollback is the action type that undoes this one ("" when none).
	Rollback string
	// Containment says whether the step's success contains the incident.
	Containment bool
}

// Approval says who lets actions run.
type Approval struct {
	Mode      string
	Approvers int
	Timeout   time.Duration
}

// Guards bound automatic actions.
type Guards struct {
	// MaxActions actions at most per Window (0: no bound).
	MaxActions int
	Window     time.Duration
	// PerClass bounds actions per device class in the same window.
	PerClass map[string]int
}

// Rollback says when to undo steps.
type Rollback struct {
	// OnFalsePositive undoes succeeded steps when their incident is closed
	// as a false positive.
	OnFalsePositive bool
}

// Input is what a playbook is evaluated against.
type Input struct {
	Alert    vigil.Alert
	Device   vigil.Device
	Incident vigil.Incident
	// Event is the incident event for incident triggers ("" for alerts).
	Event string
}

// MatchAlert reports whether the trigger takes the alert on that device.
func (t *Trigger) MatchAlert(a *vigil.Alert, d *vigil.Device) bool {
	if len(t.Incident) > 0 && len(t.Rules) == 0 && len(t.Tags) == 0 && t.MinSeverity == 0 && len(t.DeviceClasses) == 0 {
		return false // an incident-only trigger
	}
	if len(t.Rules) > 0 && !slices.Contains(t.Rules, a.RuleID) {
		return false
	}
	if len(t.Tags) > 0 && !slices.ContainsFunc(t.Tags, func(tag string) bool {
		return slices.ContainsFunc(a.Tags, func(at string) bool { return strings.EqualFold(at, tag) })
	}) {
		return false
	}
	if a.Severity < t.MinSeverity {
		return false
	}
	if len(t.DeviceClasses) > 0 && !slices.Contains(t.DeviceClasses, d.Class) {
		return false
	}
	return true
}

// MatchIncident reports whether the trigger takes that incident event.
func (t *Trigger) MatchIncident(event string) bool {
	return slices.Contains(t.Incident, event)
}

// Eval runs the playbook's conditions on in; it returns false at the first
// false one, and an error naming the condition when one cannot run.
func (p *Playbook) Eval(in *Input) (bool, error) {
	if len(p.Conditions) == 0 {
		return true, nil
	}
	env := NewEnv(in)
	for _, c := range p.Conditions {
		ok, err := c.run(env)
		if err != nil {
			return false, fmt.Errorf("cannot evaluate condition %q of playbook %s: %w", c.Source, p.Name, err)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// Render executes the step's parameter templates on in.
func (s *Step) Render(in *Input) (map[string]string, error) {
	out := make(map[string]string, len(s.Params))
	data := templateData(in)
	for k, t := range s.Params {
		var b strings.Builder
		if err := t.Execute(&b, data); err != nil {
			return nil, fmt.Errorf("cannot render parameter %s of step %s: %w", k, s.Name, err)
		}
		out[k] = b.String()
	}
	return out, nil
}

// Wants reports whether actions of this playbook need approval before
// they run, and from how many distinct approvers.
func (p *Playbook) Wants() (bool, int) {
	if p.Approval.Mode == ApprovalRequired {
		return true, max(1, p.Approval.Approvers)
	}
	return false, 0
}
