package playbook

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/template"

	"github.com/expr-lang/expr"

	"github.com/vigil-iot/vigil"
)

// NewEnv returns the variables conditions see: alert, device and incident
// as maps keyed by their JSON names (alert.rule_id, alert.severity is the
// level's name and alert.severity_level its number 1 to 5, device.class,
// device.tags, ...), and event (the incident event, or "").
func NewEnv(in *Input) map[string]any {
	a := toMap(in.Alert)
	a["severity"] = in.Alert.Severity.String()
	a["severity_level"] = int(in.Alert.Severity)
	inc := toMap(in.Incident)
	inc["severity_level"] = int(in.Incident.Severity)
	return map[string]any{"alert": a, "device": toMap(in.Device), "incident": inc, "event": in.Event}
}

// sampleEnv is what conditions are type-checked against at load.
var sampleEnv = map[string]any{"alert": map[string]any{}, "device": map[string]any{}, "incident": map[string]any{}, "event": ""}

func toMap(v any) map[string]any {
	b, _ := json.Marshal(v)
	m := map[string]any{}
	_ = json.Unmarshal(b, &m)
	return m
}

func compileCondition(src string) (Condition, error) {
	p, err := expr.Compile(src, expr.Env(sampleEnv), expr.AsBool())
	if err != nil {
		return Condition{}, err
	}
	return Condition{Source: src, program: p}, nil
}

func (c *Condition) run(env map[string]any) (bool, error) {
	out, err := expr.Run(c.program, env)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}

// TemplateData is what step parameter templates see: .Alert, .Device and
// .Incident are the vigil types (.Alert.RuleID, .Device.Class, ...), .Event
// the incident event.
type TemplateData struct {
	Alert    vigil.Alert
	Device   vigil.Device
	Incident vigil.Incident
	Event    string
}

func templateData(in *Input) TemplateData {
	return TemplateData{Alert: in.Alert, Device: in.Device, Incident: in.Incident, Event: in.Event}
}

func parseTemplate(name, src string) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		"join":  strings.Join,
		"lower": strings.ToLower,
		"upper": strings.ToUpper,
	}).Parse(src)
}

// Entity returns the value of the alert's first entity of type typ
// ("mqtt.client_id" in "mqtt.client_id:cam-7"), or "".
func (d TemplateData) Entity(typ string) string {
	for _, e := range d.Alert.Entities {
		if v, ok := strings.CutPrefix(e, typ+":"); ok {
			return v
		}
	}
	return ""
}

// Field returns the alert's field as text, or "".
func (d TemplateData) Field(name string) string {
	v, ok := d.Alert.Fields[name]
	if !ok || v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// Address returns the device's first network address, or "".
func (d TemplateData) Address() string {
	for _, n := range d.Device.Network {
		if len(n.Addresses) > 0 {
			return n.Addresses[0]
		}
	}
	return ""
}
