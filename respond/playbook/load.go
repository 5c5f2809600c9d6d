package playbook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-iot/vigil"
)

// LoadError is one problem in a playbook file, at a line when known.
type LoadError struct {
	File string
	Line int
	Msg  string
}

// Error returns "file:line: msg".
func (e *LoadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// duration is a Go duration in YAML ("15m", "1h30m").
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (want e.g. 30s, 15m, 1h)", n.Line, n.Value)
	}
	*d = duration(v)
	return nil
}

// severity is a vigil.Severity in YAML, with the line in its error.
type severity vigil.Severity

func (s *severity) UnmarshalYAML(n *yaml.Node) error {
	v, err := vigil.ParseSeverity(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*s = severity(v)
	return nil
}

type fileYAML struct {
	Name        string       `yaml:"name"`
	Description string       `yaml:"description"`
	Enabled     *bool        `yaml:"enabled"`
	DryRun      bool         `yaml:"dry_run"`
	Trigger     triggerYAML  `yaml:"trigger"`
	Conditions  []string     `yaml:"conditions"`
	Steps       []stepYAML   `yaml:"steps"`
	Approval    approvalYAML `yaml:"approval"`
	Guards      guardsYAML   `yaml:"guards"`
	Rollback    rollbackYAML `yaml:"rollback"`
}

type triggerYAML struct {
	Rules         []string `yaml:"rules"`
	Tags          []string `yaml:"tags"`
	MinSeverity   severity `yaml:"min_severity"`
	DeviceClasses []string `yaml:"device_classes"`
	Incident      []string `yaml:"incident"`
}

type stepYAML struct {
	Name        string            `yaml:"name"`
	Action      string            `yaml:"action"`
	Connector   string            `yaml:"connector"`
	Params      map[string]string `yaml:"params"`
	Rollback    string            `yaml:"rollback"`
	Containment *bool             `yaml:"containment"`
}

type approvalYAML struct {
	Mode      string   `yaml:"mode"`
	Approvers int      `yaml:"approvers"`
	Timeout   duration `yaml:"timeout"`
}

type guardsYAML struct {
	MaxActions int            `yaml:"max_actions"`
	Window     duration       `yaml:"window"`
	PerClass   map[string]int `yaml:"per_class"`
}

type rollbackYAML struct {
	OnFalsePositive bool `yaml:"on_false_positive"`
}

var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

var events = []string{EventOpened, EventContained, EventResolved, EventFalsePositive}

// Parse reads one playbook file's content; name is used in errors. It
// returns the playbook, or nil and one error per problem found.
func Parse(name string, data []byte) (*Playbook, []error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlErrors(name, err)
	}
	if len(doc.Content) == 0 {
		return nil, []error{&LoadError{File: name, Msg: "the file is empty"}}
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, []error{&LoadError{File: name, Line: top.Line, Msg: "a playbook must be a mapping of keys to values"}}
	}
	var fy fileYAML
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fy); err != nil {
		return nil, yamlErrors(name, err)
	}
	c := &compiler{file: name, top: top}
	p := c.compile(&fy)
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	h := sha256.Sum256(data)
	p.Hash = hex.EncodeToString(h[:])
	return p, nil
}

type compiler struct {
	file string
	top  *yaml.Node
	errs []error
}

// errorf records an error at the node found by path (keys and sequence
// indexes from the top), or at the deepest node found on the way.
func (c *compiler) errorf(path []any, format string, args ...any) {
	c.errs = append(c.errs, &LoadError{File: c.file, Line: lineOf(c.top, path...), Msg: fmt.Sprintf(format, args...)})
}

func p(path ...any) []any { return path }

func (c *compiler) compile(fy *fileYAML) *Playbook {
	pb := &Playbook{Name: fy.Name, Description: fy.Description, File: c.file, Enabled: true, DryRun: fy.DryRun}
	if fy.Enabled != nil {
		pb.Enabled = *fy.Enabled
	}
	switch {
	case fy.Name == "":
		c.errorf(nil, "name is missing")
	case !nameRe.MatchString(fy.Name):
		c.errorf(p("name"), "name %q must be lowercase letters, digits, '.', '_' or '-' (at most 64)", fy.Name)
	}

	t := fy.Trigger
	pb.Trigger = Trigger{Rules: t.Rules, Tags: t.Tags, MinSeverity: vigil.Severity(t.MinSeverity), DeviceClasses: t.DeviceClasses, Incident: t.Incident}
	if len(t.Rules)+len(t.Tags)+len(t.DeviceClasses)+len(t.Incident) == 0 && t.MinSeverity == 0 {
		c.errorf(p("trigger"), "trigger is missing or empty: give rules, tags, min_severity, device_classes or incident events")
	}
	for i, e := range t.Incident {
		if !slices.Contains(events, e) {
			c.errorf(p("trigger", "incident", i), "unknown incident event %q: want one of %s", e, strings.Join(events, ", "))
		}
	}
	if len(t.Incident) > 0 && len(t.Rules)+len(t.Tags)+len(t.DeviceClasses) > 0 {
		c.errorf(p("trigger", "incident"), "a trigger is on alerts or on incident events, not both")
	}

	for i, src := range fy.Conditions {
		cond, err := compileCondition(src)
		if err != nil {
			c.errorf(p("conditions", i), "condition %q does not compile: %s", src, oneLine(err))
			continue
		}
		pb.Conditions = append(pb.Conditions, cond)
	}

	if len(fy.Steps) == 0 {
		c.errorf(p("steps"), "steps are missing: a playbook needs at least one")
	}
	seen := map[string]bool{}
	for i, sy := range fy.Steps {
		st := c.step(i, &sy)
		if st == nil {
			continue
		}
		if seen[st.Name] {
			c.errorf(p("steps", i, "name"), "step name %q is used twice", st.Name)
		}
		seen[st.Name] = true
		pb.Steps = append(pb.Steps, *st)
	}

	a := fy.Approval
	pb.Approval = Approval{Mode: a.Mode, Approvers: a.Approvers, Timeout: time.Duration(a.Timeout)}
	switch a.Mode {
	case "", ApprovalAuto:
		pb.Approval.Mode = ApprovalAuto
		if a.Approvers != 0 {
			c.errorf(p("approval", "approvers"), "approvers is set but mode is auto: set mode: required")
		}
	case ApprovalRequired:
		if a.Approvers < 0 || a.Approvers > 10 {
			c.errorf(p("approval", "approvers"), "approvers %d is not between 1 and 10", a.Approvers)
		}
		pb.Approval.Approvers = max(1, a.Approvers)
		if a.Timeout <= 0 {
			c.errorf(p("approval"), "approval timeout is missing: a required approval needs one (e.g. timeout: 30m)")
		}
	default:
		c.errorf(p("approval", "mode"), "unknown approval mode %q: want auto or required", a.Mode)
	}
	if a.Timeout < 0 {
		c.errorf(p("approval", "timeout"), "approval timeout %s is negative", time.Duration(a.Timeout))
	}

	g := fy.Guards
	pb.Guards = Guards{MaxActions: g.MaxActions, Window: time.Duration(g.Window), PerClass: g.PerClass}
	if g.MaxActions < 0 {
		c.errorf(p("guards", "max_actions"), "max_actions %d is negative", g.MaxActions)
	}
	for cl, n := range g.PerClass {
		if n < 0 {
			c.errorf(p("guards", "per_class", cl), "per_class %s: %d is negative", cl, n)
		}
	}
	if (g.MaxActions > 0 || len(g.PerClass) > 0) && g.Window <= 0 {
		c.errorf(p("guards"), "guards need a positive window (e.g. window: 10m)")
	}

	if pb.Approval.Mode == ApprovalAuto {
		for i, st := range pb.Steps {
			if !Actions[st.Action].TakesDown {
				continue
			}
			if len(t.DeviceClasses) == 0 {
				c.errorf(p("steps", i, "action"), "step %s: %s with approval auto needs trigger device_classes (it is never automatic on a safety-critical class: %s); name the classes of an alert trigger, or set approval mode: required", st.Name, st.Action, strings.Join(SafetyCriticalClasses, ", "))
			}
			for _, cl := range t.DeviceClasses {
				if SafetyCriticalClass(cl) {
					c.errorf(p("steps", i, "action"), "step %s: %s is never automatic on the safety-critical class %s: set approval mode: required", st.Name, st.Action, cl)
				}
			}
		}
	}

	pb.Rollback = Rollback{OnFalsePositive: fy.Rollback.OnFalsePositive}
	if pb.Rollback.OnFalsePositive && !slices.ContainsFunc(pb.Steps, func(s Step) bool { return s.Rollback != "" }) && len(c.errs) == 0 {
		c.errorf(p("rollback"), "rollback on_false_positive is set but no step can be undone (give a step a rollback action)")
	}
	return pb
}

func (c *compiler) step(i int, sy *stepYAML) *Step {
	at := func(k string) []any { return p("steps", i, k) }
	if sy.Action == "" {
		c.errorf(p("steps", i), "step %d has no action", i+1)
		return nil
	}
	spec, ok := Actions[sy.Action]
	if !ok {
		c.errorf(at("action"), "unknown action %q: want one of %s", sy.Action, strings.Join(sortedKeys(Actions), ", "))
		return nil
	}
	st := &Step{Name: sy.Name, Action: sy.Action, Connector: sy.Connector, Rollback: spec.Undo, Containment: spec.Containment}
	if st.Name == "" {
		st.Name = sy.Action
	}
	if st.Connector == "" {
		st.Connector = spec.Connector
	}
	if st.Connector == "" {
		c.errorf(at("action"), "action %s needs a connector (one of webhook, slack, email, syslog)", sy.Action)
	} else if !slices.Contains(Connectors, st.Connector) {
		c.errorf(at("connector"), "unknown connector %q: want one of %s", st.Connector, strings.Join(Connectors, ", "))
	}
	switch sy.Rollback {
	case "":
	case "none":
		st.Rollback = ""
	default:
		if _, ok := Actions[sy.Rollback]; !ok {
			c.errorf(at("rollback"), "unknown rollback action %q", sy.Rollback)
		}
		st.Rollback = sy.Rollback
	}
	if sy.Containment != nil {
		st.Containment = *sy.Containment
	}
	st.Params = map[string]*template.Template{}
	for k, v := range sy.Params {
		if strings.HasPrefix(k, "vigil.") || k == "" {
			c.errorf(p("steps", i, "params", k), "parameter name %q is reserved (names starting with \"vigil.\" are Vigil's own)", k)
			continue
		}
		t, err := parseTemplate(k, v)
		if err != nil {
			c.errorf(p("steps", i, "params", k), "parameter %s: template does not parse: %s", k, oneLine(err))
			continue
		}
		st.Params[k] = t
	}
	return st
}

// lineOf returns the line of the node at path (mapping keys and sequence
// indexes), or of the deepest node reached.
func lineOf(n *yaml.Node, path ...any) int {
	line := n.Line
	for _, k := range path {
		switch k := k.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return line
			}
			found := false
			for j := 0; j+1 < len(n.Content); j += 2 {
				if n.Content[j].Value == k {
					line, n, found = n.Content[j].Line, n.Content[j+1], true
					break
				}
			}
			if !found {
				return line
			}
		case int:
			if n.Kind != yaml.SequenceNode || k >= len(n.Content) {
				return line
			}
			n = n.Content[k]
			line = n.Line
		}
	}
	return line
}

var lineRe = regexp.MustCompile(`line (\d+): (.*)`)

// yamlErrors turns a yaml error into LoadErrors with their lines.
func yamlErrors(file string, err error) []error {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var out []error
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		le := &LoadError{File: file, Msg: m}
		if sm := lineRe.FindStringSubmatch(m); sm != nil {
			le.Line, _ = strconv.Atoi(sm[1])
			le.Msg = sm[2]
		}
		out = append(out, le)
	}
	return out
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " | ")), " ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Load reads every *.yaml and *.yml file of dir. It returns the valid
// playbooks sorted by name and one error per problem; a bad file does not
// stop the others. Two playbooks with the same name are an error.
func Load(dir string) ([]*Playbook, []error) {
	var files []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		files = append(files, m...)
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, []error{fmt.Errorf("cannot read playbook directory: %w", err)}
	}
	sort.Strings(files)
	var (
		out  []*Playbook
		errs []error
		by   = map[string]string{}
	)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot read playbook: %w", err))
			continue
		}
		pb, es := Parse(f, data)
		errs = append(errs, es...)
		if pb == nil {
			continue
		}
		if other, dup := by[pb.Name]; dup {
			errs = append(errs, &LoadError{File: f, Line: 1, Msg: fmt.Sprintf("playbook name %q is already used by %s", pb.Name, other)})
			continue
		}
		by[pb.Name] = f
		out = append(out, pb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, errs
}

// Check loads dir and returns nil when every playbook is valid, else the
// problems joined (one "file:line: message" per line).
func Check(dir string) error {
	_, errs := Load(dir)
	return errors.Join(errs...)
}

// Summary is one line of `vigil playbooks list`.
type Summary struct {
	Name     string   `json:"name"`
	File     string   `json:"file"`
	Enabled  bool     `json:"enabled"`
	DryRun   bool     `json:"dry_run"`
	Trigger  string   `json:"trigger"`
	Steps    []string `json:"steps"` // "name:action@connector"
	Approval string   `json:"approval"`
}

// List summarises the playbooks of dir (valid ones) and returns the
// problems of the others joined.
func List(dir string) ([]Summary, error) {
	pbs, errs := Load(dir)
	return Summarize(pbs), errors.Join(errs...)
}

// Summarize describes loaded playbooks.
func Summarize(pbs []*Playbook) []Summary {
	out := make([]Summary, 0, len(pbs))
	for _, pb := range pbs {
		s := Summary{Name: pb.Name, File: pb.File, Enabled: pb.Enabled, DryRun: pb.DryRun, Trigger: pb.Trigger.String(), Approval: pb.Approval.String()}
		for _, st := range pb.Steps {
			s.Steps = append(s.Steps, st.Name+":"+st.Action+"@"+st.Connector)
		}
		out = append(out, s)
	}
	return out
}

// String describes the trigger in one line.
func (t Trigger) String() string {
	var parts []string
	if len(t.Incident) > 0 {
		parts = append(parts, "incident "+strings.Join(t.Incident, "|"))
	}
	if len(t.Rules) > 0 {
		parts = append(parts, "rules "+strings.Join(t.Rules, ","))
	}
	if len(t.Tags) > 0 {
		parts = append(parts, "tags "+strings.Join(t.Tags, ","))
	}
	if t.MinSeverity > 0 {
		parts = append(parts, "severity>="+t.MinSeverity.String())
	}
	if len(t.DeviceClasses) > 0 {
		parts = append(parts, "class "+strings.Join(t.DeviceClasses, ","))
	}
	return strings.Join(parts, " ")
}

// String describes the approval in one line.
func (a Approval) String() string {
	if a.Mode == ApprovalRequired {
		return fmt.Sprintf("required x%d within %s", a.Approvers, a.Timeout)
	}
	return "auto"
}
