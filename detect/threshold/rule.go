package threshold

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/internal/yamlpos"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-iot/vigil"
)

// Rule types.
const (
	TypeThreshold = "threshold" // a field compared to a value for N consecutive events
	TypeCount     = "count"     // at least N matching events within a window of event time
)

// Limits on rule parameters, so that one rule cannot take unbounded memory
// per group.
const (
	MaxConsecutive = 1000
	MaxCount       = 10000
)

// DefaultEntities maps fields to the entity types put in Alert.Entities
// when a rule does not say otherwise.
var DefaultEntities = map[string]string{"source.ip": "ip", "user.name": "user"}

// Rule is one compiled threshold or count rule. Rules are immutable once
// loaded.
type Rule struct {
	ID          string
	Title       string
	Description string
	Type        string // TypeThreshold or TypeCount
	Level       vigil.Severity
	Tags        []string
	// Where lists the conditions an event must all meet to be considered.
	Where []Condition
	// WhereNot lists conditions that, when all met, exclude an event.
	WhereNot []Condition
	// GroupBy are the fields that split a device's events into groups, in
	// addition to device.id which always does.
	GroupBy []string
	// Entities maps a field to an entity type: an evidence event's value
	// of the field becomes the entity "type:value" of the alert.
	Entities map[string]string

	// Field, Op, Value and Consecutive are set for TypeThreshold.
	Field       string
	Op          string
	Value       float64
	StrValue    string // the value when it is not a number (== and != only)
	IsStr       bool
	Consecutive int

	// Count and Window are set for TypeCount.
	Count  int
	Window time.Duration

	// Refire is RefireWindow (the default: a repeat of the alert merges
	// into it within the alert stage's dedup window) or RefireUntilCleared
	// (repeats merge until its incident is resolved or a false positive:
	// vigil.Alert.UntilCleared).
	Refire string

	// File and Line say where the rule was loaded from.
	File string
	Line int

	entityFields []string // keys of Entities, sorted
}

// Condition is one "field equals any of Values" test.
type Condition struct {
	Field  string
	Values []string

	fixed uint8 // a fixed string field of vigil.Event, or fixedNone
}

// ruleYAML is the file schema; see the package documentation.
type ruleYAML struct {
	ID          string               `yaml:"id"`
	Title       string               `yaml:"title"`
	Description string               `yaml:"description"`
	References  []string             `yaml:"references"`
	Type        string               `yaml:"type"`
	Level       string               `yaml:"level"`
	Tags        []string             `yaml:"tags"`
	Where       map[string]valueList `yaml:"where"`
	WhereNot    map[string]valueList `yaml:"where_not"`
	GroupBy     []string             `yaml:"group_by"`
	Entities    map[string]string    `yaml:"entities"`
	Field       string               `yaml:"field"`
	Op          string               `yaml:"op"`
	Value       yaml.Node            `yaml:"value"` // Kind 0 when absent
	Consecutive *int                 `yaml:"consecutive"`
	Count       *int                 `yaml:"count"`
	Window      string               `yaml:"window"`
	Refire      string               `yaml:"refire"`
}

// valueList is a scalar or a list of scalars.
type valueList []string

// UnmarshalYAML accepts a scalar or a sequence of scalars.
func (v *valueList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*v = valueList{n.Value}
		return nil
	case yaml.SequenceNode:
		if len(n.Content) == 0 {
			return fmt.Errorf("line %d: empty list of values", n.Line)
		}
		out := make(valueList, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: a value must be a scalar (string, number or boolean)", c.Line)
			}
			out = append(out, c.Value)
		}
		*v = out
		return nil
	}
	return fmt.Errorf("line %d: values must be a scalar or a list of scalars", n.Line)
}

// LoadError is a problem with one rule file, or one rule in it. Its code,
// for vigil.ErrorCode, is EINVALID.
type LoadError struct {
	File string
	Line int // 0 when unknown
	Msg  string
}

// Error returns "file:line: msg".
func (e *LoadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Unwrap returns the error as a *vigil.Error with code EINVALID.
func (e *LoadError) Unwrap() error {
	return &vigil.Error{Code: vigil.EINVALID, Message: e.Error()}
}

// LoadDir loads every *.yaml and *.yml file of dir (not its
// subdirectories), in name order. It returns the rules that are valid and
// one error per problem: a bad rule or file does not stop the others.
func LoadDir(dir string) ([]*Rule, []error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, []error{fmt.Errorf("cannot read rule directory: %w", err)}
	}
	var paths []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	return LoadFiles(paths...)
}

// LoadFiles loads the rules of the given files. Like LoadDir, it returns
// the valid rules and one error per problem. Rule ids must be unique
// across the files.
func LoadFiles(paths ...string) ([]*Rule, []error) {
	var (
		rules []*Rule
		errs  []error
		seen  = map[string]*Rule{}
	)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, &LoadError{File: p, Msg: "cannot read: " + unwrapPathError(err)})
			continue
		}
		rs, es := Parse(p, data)
		errs = append(errs, es...)
		for _, r := range rs {
			if prev, dup := seen[r.ID]; dup {
				errs = append(errs, &LoadError{File: r.File, Line: r.Line,
					Msg: fmt.Sprintf("duplicate rule id %q (first defined at %s:%d)", r.ID, prev.File, prev.Line)})
				continue
			}
			seen[r.ID] = r
			rules = append(rules, r)
		}
	}
	return rules, errs
}

func unwrapPathError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Parse reads the rules of one YAML file (one rule per document; documents
// are separated by "---"). name is used in errors. It returns the valid
// rules and one error per problem.
func Parse(name string, data []byte) ([]*Rule, []error) {
	var (
		rules []*Rule
		errs  []error
	)
	// Two decoders in step: one keeps the nodes for positions, the other
	// decodes strictly (KnownFields does not apply to Node.Decode).
	nodes := yaml.NewDecoder(bytes.NewReader(data))
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	for {
		var doc yaml.Node
		err := nodes.Decode(&doc)
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, yamlErrors(name, yamlpos.Line(err, data), err)...)
			break // a syntax error: the rest of the file cannot be read
		}
		var ry ruleYAML
		serr := strict.Decode(&ry)
		if len(doc.Content) == 0 || (doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null") {
			continue // an empty document
		}
		top := doc.Content[0]
		if top.Kind != yaml.MappingNode {
			errs = append(errs, &LoadError{File: name, Line: top.Line, Msg: "a rule must be a mapping of keys to values"})
			continue
		}
		if serr != nil {
			errs = append(errs, yamlErrors(name, top.Line, serr)...)
			continue
		}
		r, es := compile(name, top, &ry)
		errs = append(errs, es...)
		if r != nil {
			rules = append(rules, r)
		}
	}
	return rules, errs
}

var (
	lineRE     = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	notFoundRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	intoRE     = regexp.MustCompile(`into (\S+)$`)
	idRE       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// yamlErrors turns a yaml error into LoadErrors with lines, and readable
// messages ("unknown field" rather than Go type names).
func yamlErrors(name string, line int, err error) []error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out []error
	for _, m := range msgs {
		le := &LoadError{File: name, Line: line, Msg: strings.TrimPrefix(m, "yaml: ")}
		if sm := lineRE.FindStringSubmatch(m); sm != nil {
			le.Line, _ = strconv.Atoi(sm[1])
			le.Msg = sm[2]
		}
		if sm := notFoundRE.FindStringSubmatch(le.Msg); sm != nil {
			le.Msg = fmt.Sprintf("unknown field %q", sm[1])
		} else if sm := intoRE.FindStringSubmatch(le.Msg); sm != nil {
			le.Msg = le.Msg[:len(le.Msg)-len(sm[0])] + "where " + goTypeName(sm[1]) + " is expected"
		}
		out = append(out, le)
	}
	return out
}

// goTypeName names a Go type of the schema for people.
func goTypeName(t string) string {
	switch strings.TrimPrefix(t, "*") {
	case "string":
		return "a string"
	case "int":
		return "an integer"
	case "[]string":
		return "a list of strings"
	case "map[string]string":
		return "a mapping of strings"
	case "map[string]threshold.valueList":
		return "a mapping of fields to values"
	case "threshold.ruleYAML":
		return "a rule (a mapping)"
	}
	return t
}

// keyLine returns the line of key in a mapping node, or the mapping's line.
func keyLine(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i].Line
		}
	}
	return m.Line
}

// compile validates a decoded rule. It returns nil and the problems when
// the rule is invalid.
func compile(file string, top *yaml.Node, ry *ruleYAML) (*Rule, []error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &LoadError{File: file, Line: keyLine(top, key), Msg: fmt.Sprintf(format, args...)})
	}
	r := &Rule{
		ID:          ry.ID,
		Title:       ry.Title,
		Description: ry.Description,
		Type:        ry.Type,
		Tags:        ry.Tags,
		File:        file,
		Line:        top.Line,
	}
	switch {
	case ry.ID == "":
		bad("id", "id is required")
	case !idRE.MatchString(ry.ID):
		bad("id", "id %q must be letters, digits, '.', '_' or '-'", ry.ID)
	}
	if r.Title == "" {
		r.Title = r.ID
	}
	r.Level = vigil.SeverityMedium
	if ry.Level != "" {
		lv, err := vigil.ParseSeverity(ry.Level)
		if err != nil {
			bad("level", "level %q must be informational, low, medium, high or critical", ry.Level)
		}
		r.Level = lv
	}
	for i, t := range ry.Tags {
		if strings.TrimSpace(t) == "" {
			bad("tags", "tag %d is empty", i+1)
		}
	}
	switch ry.Refire {
	case "", RefireWindow, RefireUntilCleared:
		r.Refire = ry.Refire
	default:
		bad("refire", "refire %q must be %s or %s", ry.Refire, RefireWindow, RefireUntilCleared)
	}
	r.Where = conditions(ry.Where, "where", bad)
	r.WhereNot = conditions(ry.WhereNot, "where_not", bad)
	for _, g := range ry.GroupBy {
		switch {
		case g == "":
			bad("group_by", "group_by has an empty field name")
		case g == "device.id":
			// Always grouped by device.
		case slices.Contains(r.GroupBy, g):
			bad("group_by", "group_by lists %q twice", g)
		default:
			r.GroupBy = append(r.GroupBy, g)
		}
	}
	r.Entities = DefaultEntities
	if ry.Entities != nil {
		r.Entities = ry.Entities
		for f, t := range ry.Entities {
			if f == "" || t == "" || strings.Contains(t, ":") {
				bad("entities", "entities maps a field to an entity type without ':' (got %q: %q)", f, t)
			}
		}
	}
	for f := range r.Entities {
		r.entityFields = append(r.entityFields, f)
	}
	slices.Sort(r.entityFields)

	only := func(key string, set bool, typ string) {
		if set {
			bad(key, "%s is only for type %s", key, typ)
		}
	}
	switch ry.Type {
	case TypeThreshold:
		only("count", ry.Count != nil, TypeCount)
		only("window", ry.Window != "", TypeCount)
		if ry.Field == "" {
			bad("field", "field is required for type threshold")
		}
		r.Field = ry.Field
		r.Op = normalizeOp(ry.Op)
		if ry.Op == "" {
			bad("op", "op is required for type threshold: >, >=, <, <=, ==, !=")
		} else if r.Op == "" {
			bad("op", "op %q must be one of >, >=, <, <=, ==, !=", ry.Op)
		}
		switch {
		case ry.Value.Kind == 0:
			bad("value", "value is required for type threshold")
		case ry.Value.Kind != yaml.ScalarNode:
			bad("value", "value must be a number or a string")
		default:
			if f, err := strconv.ParseFloat(ry.Value.Value, 64); err == nil {
				r.Value = f
			} else {
				r.IsStr, r.StrValue = true, ry.Value.Value
				if r.Op != "==" && r.Op != "!=" && r.Op != "" {
					bad("value", "value %q is not a number: only == and != compare strings", ry.Value.Value)
				}
			}
		}
		r.Consecutive = 1
		if ry.Consecutive != nil {
			r.Consecutive = *ry.Consecutive
			if r.Consecutive < 1 || r.Consecutive > MaxConsecutive {
				bad("consecutive", "consecutive must be between 1 and %d, not %d", MaxConsecutive, r.Consecutive)
			}
		}
	case TypeCount:
		only("field", ry.Field != "", TypeThreshold)
		only("op", ry.Op != "", TypeThreshold)
		only("value", ry.Value.Kind != 0, TypeThreshold)
		only("consecutive", ry.Consecutive != nil, TypeThreshold)
		if ry.Count == nil {
			bad("count", "count is required for type count")
		} else if r.Count = *ry.Count; r.Count < 1 || r.Count > MaxCount {
			bad("count", "count must be between 1 and %d, not %d", MaxCount, r.Count)
		}
		if ry.Window == "" {
			bad("window", "window is required for type count (a duration such as 60s or 5m)")
		} else if w, err := time.ParseDuration(ry.Window); err != nil || w <= 0 {
			bad("window", "window %q must be a positive duration such as 60s or 5m", ry.Window)
		} else {
			r.Window = w
		}
	case "":
		bad("type", "type is required: threshold or count")
	default:
		bad("type", "type %q must be threshold or count", ry.Type)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return r, nil
}

func conditions(m map[string]valueList, key string, bad func(key, format string, args ...any)) []Condition {
	var out []Condition
	for f, vs := range m {
		if f == "" {
			bad(key, "%s has an empty field name", key)
			continue
		}
		vals := slices.Clone([]string(vs))
		for _, v := range vs {
			// Numbers are compared as text: add the form fields print in
			// ("90.0" in a rule matches the number 90).
			if n, err := strconv.ParseFloat(v, 64); err == nil {
				if c := vigil.ValueString(n); !slices.Contains(vals, c) {
					vals = append(vals, c)
				}
			}
		}
		out = append(out, Condition{Field: f, Values: vals, fixed: fixedFields[f]})
	}
	// Map order is random: sort so that evaluation (and its cost) is stable.
	slices.SortFunc(out, func(a, b Condition) int { return strings.Compare(a.Field, b.Field) })
	return out
}

func normalizeOp(op string) string {
	switch strings.ToLower(strings.TrimSpace(op)) {
	case ">", "gt":
		return ">"
	case ">=", "gte", "ge":
		return ">="
	case "<", "lt":
		return "<"
	case "<=", "lte", "le":
		return "<="
	case "==", "=", "eq":
		return "=="
	case "!=", "ne", "neq":
		return "!="
	}
	return ""
}

// Values of Rule.Refire.
const (
	RefireWindow       = "window"
	RefireUntilCleared = "until_cleared"
)
