package sigma

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/vigil-iot/vigil"
	"go.yaml.in/yaml/v3"
)

// Logsource is a rule's logsource: each attribute that is set must equal
// the event's.
type Logsource struct {
	Product  string `yaml:"product,omitempty" json:"product,omitempty"`
	Category string `yaml:"category,omitempty" json:"category,omitempty"`
	Service  string `yaml:"service,omitempty" json:"service,omitempty"`
}

// covers reports whether a rule with logsource l applies to events of
// logsource e.
func (l Logsource) covers(e Logsource) bool {
	return (l.Product == "" || l.Product == e.Product) &&
		(l.Category == "" || l.Category == e.Category) &&
		(l.Service == "" || l.Service == e.Service)
}

func (l Logsource) String() string {
	var p []string
	if l.Product != "" {
		p = append(p, "product="+l.Product)
	}
	if l.Category != "" {
		p = append(p, "category="+l.Category)
	}
	if l.Service != "" {
		p = append(p, "service="+l.Service)
	}
	if len(p) == 0 {
		return "any"
	}
	return strings.Join(p, ",")
}

// Rule is one compiled Sigma detection or correlation rule.
type Rule struct {
	File        string
	Line        int
	ID          string
	Name        string
	Title       string
	Status      string
	Description string
	Level       string
	Severity    vigil.Severity
	Tags        []string
	Techniques  []string
	Logsource   Logsource
	// Fields is the rule's "fields" list (interesting fields to show).
	Fields []string
	// OncePer (Vigil's custom attribute once_per) names event fields: the
	// rule fires once per device and value of these fields until its
	// alert is cleared (vigil.Alert.UntilCleared).
	OncePer []string
	// Refire (Vigil's custom attribute refire) says when the rule raises
	// a new alert for a repeat: RefireWindow (repeats merge within the
	// alert stage's dedup window) or RefireUntilCleared (repeats merge
	// until the alert's incident is resolved or a false positive). Empty:
	// RefireUntilCleared with once_per, else RefireWindow.
	Refire string
	// Unvalued names the expand placeholders the rule uses that the
	// config declares without values (they match no value).
	Unvalued []string

	// Condition is the detection's condition as written (several are
	// joined by " | "), for explanations.
	Condition string

	// Correlation is set for correlation rules; they have no detection.
	Correlation *Correlation

	cond     node
	searches map[string]node // search identifiers, for explanations
	order    []string        // identifiers in file order
	index    int
	prefilt  []atom // necessary literals; nil when the rule is always evaluated
	clauses  int    // number of clauses in prefilt
	keywords bool   // the rule searches keywords (needs every string of the event)
	// generate: a rule referenced by a correlation alerts on its own only
	// when the correlation says generate: true.
	silent bool
	// feeds are the correlations this rule's matches count towards.
	feeds []corrLink

	disabled  atomic.Bool
	matches   atomic.Uint64
	evals     atomic.Uint64
	evalNanos atomic.Uint64
}

// FileError is a rule file or document that could not be loaded.
type FileError struct {
	File string `json:"file"`
	Line int    `json:"line"`
	// Rule is the rule's id or title, when known.
	Rule   string `json:"rule,omitempty"`
	Reason string `json:"reason"`
}

func (e FileError) Error() string {
	if e.Rule != "" {
		return fmt.Sprintf("%s:%d: rule %q: %s", e.File, e.Line, e.Rule, e.Reason)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
}

// posError is a compile error at a YAML node.
type posError struct {
	line int
	msg  string
}

func (e *posError) Error() string { return e.msg }

func errAt(n *yaml.Node, format string, a ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &posError{line: line, msg: fmt.Sprintf(format, a...)}
}

// mapGet returns the value node of key k in mapping m.
func mapGet(m *yaml.Node, k string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == k {
			return resolveAlias(m.Content[i+1])
		}
	}
	return nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func scalarString(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

func stringList(n *yaml.Node) []string {
	n = resolveAlias(n)
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode {
		if n.Tag == "!!null" {
			return nil
		}
		return []string{n.Value}
	}
	var out []string
	for _, c := range n.Content {
		if c = resolveAlias(c); c.Kind == yaml.ScalarNode {
			out = append(out, c.Value)
		}
	}
	return out
}

// docKind tells detection rules, meta filters and correlations apart.
func docKind(doc *yaml.Node) string {
	switch {
	case mapGet(doc, "correlation") != nil:
		return "correlation"
	case mapGet(doc, "filter") != nil && mapGet(doc, "detection") == nil:
		return "filter"
	case mapGet(doc, "detection") != nil:
		return "rule"
	}
	return ""
}

// parseHeader fills the metadata common to every document kind.
func parseHeader(r *Rule, doc *yaml.Node) error {
	r.Line = doc.Line
	r.Title = scalarString(mapGet(doc, "title"))
	r.ID = scalarString(mapGet(doc, "id"))
	r.Name = scalarString(mapGet(doc, "name"))
	r.Status = scalarString(mapGet(doc, "status"))
	r.Description = scalarString(mapGet(doc, "description"))
	r.Tags = stringList(mapGet(doc, "tags"))
	r.Techniques = vigil.TechniquesFromTags(r.Tags)
	r.Fields = stringList(mapGet(doc, "fields"))
	if n := mapGet(doc, "once_per"); n != nil {
		r.OncePer = stringList(n)
		if n.Kind != yaml.SequenceNode || len(r.OncePer) != len(n.Content) || slices.Contains(r.OncePer, "") {
			return errAt(n, "once_per must be a list of field names")
		}
	}
	if n := mapGet(doc, "refire"); n != nil {
		r.Refire = n.Value
		if n.Kind != yaml.ScalarNode || r.Refire != RefireWindow && r.Refire != RefireUntilCleared {
			return errAt(n, "refire must be %s or %s", RefireWindow, RefireUntilCleared)
		}
	}
	if r.Title == "" {
		return errAt(doc, "missing title")
	}
	if n := mapGet(doc, "level"); n != nil {
		r.Level = n.Value
		sev, err := vigil.ParseSeverity(n.Value)
		if err != nil {
			return errAt(n, "invalid level %q: want informational, low, medium, high or critical", n.Value)
		}
		r.Severity = sev
	}
	if ls := mapGet(doc, "logsource"); ls != nil {
		if ls.Kind != yaml.MappingNode {
			return errAt(ls, "logsource must be a map")
		}
		r.Logsource = Logsource{
			Product:  strings.ToLower(scalarString(mapGet(ls, "product"))),
			Category: strings.ToLower(scalarString(mapGet(ls, "category"))),
			Service:  strings.ToLower(scalarString(mapGet(ls, "service"))),
		}
	}
	return nil
}

// compileDetection compiles a detection section (or a filter section, whose
// shape is the same) into the rule's condition.
func (cp *compiler) compileDetection(r *Rule, det *yaml.Node) error {
	if det.Kind != yaml.MappingNode {
		return errAt(det, "detection must be a map")
	}
	r.searches = map[string]node{}
	var condNode *yaml.Node
	for i := 0; i+1 < len(det.Content); i += 2 {
		k, v := det.Content[i], resolveAlias(det.Content[i+1])
		switch k.Value {
		case "condition":
			condNode = v
			continue
		case "timeframe":
			return errAt(k, "timeframe in a detection is the deprecated aggregation syntax: use a correlation rule")
		case "rules":
			if cp.inFilter {
				continue
			}
		}
		n, kw, err := cp.compileSearch(r, v)
		if err != nil {
			var pe *posError
			if asPos(err, &pe) {
				return &posError{line: pe.line, msg: fmt.Sprintf("search identifier %q: %s", k.Value, pe.msg)}
			}
			return err
		}
		if kw {
			r.keywords = true
		}
		r.searches[k.Value] = n
		r.order = append(r.order, k.Value)
	}
	if condNode == nil {
		return errAt(det, "missing condition")
	}
	var conds []string
	switch condNode.Kind {
	case yaml.ScalarNode:
		conds = []string{condNode.Value}
	case yaml.SequenceNode:
		conds = stringList(condNode)
	default:
		return errAt(condNode, "condition must be a string or a list of strings")
	}
	if len(conds) == 0 {
		return errAt(condNode, "empty condition")
	}
	if !cp.inFilter {
		r.Condition = strings.Join(conds, " | ")
	}
	var alts orNode
	cost := 0
	for _, c := range conds {
		n, err := parseCondition(c, r.searches, r.order, &cost)
		if err != nil {
			return errAt(condNode, "condition %q: %v", c, err)
		}
		alts = append(alts, n)
	}
	if len(alts) == 1 {
		r.cond = alts[0]
	} else {
		r.cond = alts
	}
	return nil
}

func asPos(err error, pe **posError) bool {
	p, ok := err.(*posError)
	if ok {
		*pe = p
	}
	return ok
}

// compileSearch compiles one search identifier's value. kw reports keyword
// searches.
func (cp *compiler) compileSearch(r *Rule, v *yaml.Node) (node, bool, error) {
	switch v.Kind {
	case yaml.MappingNode:
		return cp.compileMap(r, v)
	case yaml.SequenceNode:
		var alts orNode
		var kwVals []*yaml.Node
		kw := false
		for _, e := range v.Content {
			e = resolveAlias(e)
			switch e.Kind {
			case yaml.MappingNode:
				n, k, err := cp.compileMap(r, e)
				if err != nil {
					return nil, false, err
				}
				kw = kw || k
				alts = append(alts, n)
			case yaml.ScalarNode:
				kwVals = append(kwVals, e)
			default:
				return nil, false, errAt(e, "a list item must be a map or a keyword string")
			}
		}
		if len(kwVals) > 0 {
			n, err := cp.compileKeywords(kwVals, nil)
			if err != nil {
				return nil, false, err
			}
			alts = append(alts, n)
			kw = true
		}
		if len(alts) == 0 {
			return nil, false, errAt(v, "empty list")
		}
		if len(alts) == 1 {
			return alts[0], kw, nil
		}
		return alts, kw, nil
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			return nil, false, errAt(v, "empty search identifier")
		}
		n, err := cp.compileKeywords([]*yaml.Node{v}, nil)
		return n, true, err
	}
	return nil, false, errAt(v, "unsupported search identifier value")
}

// compileMap compiles a map of field conditions (ANDed).
func (cp *compiler) compileMap(r *Rule, m *yaml.Node) (node, bool, error) {
	var and andNode
	kw := false
	if len(m.Content) == 0 {
		return nil, false, errAt(m, "empty map")
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], resolveAlias(m.Content[i+1])
		var vals []*yaml.Node
		switch v.Kind {
		case yaml.ScalarNode:
			vals = []*yaml.Node{v}
		case yaml.SequenceNode:
			for _, e := range v.Content {
				e = resolveAlias(e)
				if e.Kind != yaml.ScalarNode {
					return nil, false, errAt(e, "field %q: a value list may hold only scalars", k.Value)
				}
				vals = append(vals, e)
			}
			if len(vals) == 0 {
				return nil, false, errAt(v, "field %q: empty value list", k.Value)
			}
		default:
			return nil, false, errAt(v, "field %q: value must be a scalar or a list of scalars", k.Value)
		}
		field, mods, _ := strings.Cut(k.Value, "|")
		var modList []string
		if mods != "" {
			modList = strings.Split(mods, "|")
		}
		if field == "" { // '|all': keywords with modifiers
			n, err := cp.compileKeywords(vals, modList)
			if err != nil {
				return nil, false, errAt(k, "%v", err)
			}
			and = append(and, n)
			kw = true
			continue
		}
		n, err := cp.compileField(r, field, modList, vals)
		if err != nil {
			var pe *posError
			if asPos(err, &pe) {
				return nil, false, err
			}
			return nil, false, errAt(k, "field %q: %v", k.Value, err)
		}
		and = append(and, n)
	}
	if len(and) == 1 {
		return and[0], kw, nil
	}
	return and, kw, nil
}

func (cp *compiler) compileKeywords(vals []*yaml.Node, mods []string) (node, error) {
	kn := &keywordNode{}
	m, err := parseMods(mods)
	if err != nil {
		return nil, err
	}
	if m.exists || m.fieldref || m.cmp != 0 || m.neq || m.part != partNone {
		return nil, fmt.Errorf("modifier not allowed on keywords")
	}
	kn.all = m.all
	// A keyword is searched anywhere in the event's strings.
	if !m.re && !m.cidr && !m.startswith && !m.endswith {
		m.contains = true
	}
	for _, v := range vals {
		ps, err := cp.valuePreds(v, m)
		if err != nil {
			return nil, err
		}
		if err := cp.charge(v, ps); err != nil {
			return nil, err
		}
		for _, p := range ps {
			if p.op == opNull {
				return nil, errAt(v, "null is not a keyword")
			}
		}
		kn.preds = append(kn.preds, ps...)
	}
	if !kn.all {
		kn.idx = newPredIndex(kn.preds)
	}
	return kn, nil
}

// charge counts the values a rule value compiled to against the limits on
// the values of a rule and of the rule set (maxRuleValues,
// maxSetValueBytes).
func (cp *compiler) charge(v *yaml.Node, ps []pred) error {
	cp.values += len(ps)
	if cp.values > maxRuleValues {
		return errAt(v, "the rule has more than %d values once expanded", maxRuleValues)
	}
	for i := range ps {
		p := &ps[i]
		n := valueCost + len(p.lit)
		for _, t := range p.glob {
			n += len(t.lit)
		}
		if p.op == opRe {
			n += len(p.raw)
		}
		cp.rs.valueBytes += n
	}
	if cp.rs.valueBytes > maxSetValueBytes {
		return errAt(v, "the rules take more than %d MiB of values once expanded", maxSetValueBytes>>20)
	}
	return nil
}

// mods is a parsed modifier chain.
type mods struct {
	contains, startswith, endswith bool
	all, cased, neq, exists        bool
	re                             bool
	reFlags                        string
	cidr                           bool
	cmp                            uint8 // opLt..opGte, 0 when none
	part                           uint8
	fieldref                       bool
	transforms                     []string // windash, base64, base64offset, utf16*, expand in order
}

func parseMods(list []string) (mods, error) {
	var m mods
	for _, x := range list {
		switch strings.ToLower(x) {
		case "contains":
			m.contains = true
		case "startswith":
			m.startswith = true
		case "endswith":
			m.endswith = true
		case "all":
			m.all = true
		case "cased":
			m.cased = true
		case "neq":
			m.neq = true
		case "exists":
			m.exists = true
		case "re":
			m.re = true
		case "i", "m", "s":
			if !m.re {
				return m, fmt.Errorf("modifier %q is only valid after re", x)
			}
			m.reFlags += strings.ToLower(x)
		case "cidr":
			m.cidr = true
		case "lt":
			m.cmp = opLt
		case "lte":
			m.cmp = opLte
		case "gt":
			m.cmp = opGt
		case "gte":
			m.cmp = opGte
		case "minute":
			m.part = partMinute
		case "hour":
			m.part = partHour
		case "day":
			m.part = partDay
		case "week":
			m.part = partWeek
		case "month":
			m.part = partMonth
		case "year":
			m.part = partYear
		case "fieldref":
			m.fieldref = true
		case "windash", "base64", "base64offset", "utf16le", "utf16be", "utf16", "wide", "expand":
			m.transforms = append(m.transforms, strings.ToLower(x))
		default:
			return m, fmt.Errorf("unknown modifier %q", x)
		}
	}
	n := 0
	for _, b := range []bool{m.re, m.cidr, m.cmp != 0 && m.part == partNone, m.fieldref, m.exists} {
		if b {
			n++
		}
	}
	if n > 1 {
		return m, fmt.Errorf("modifiers %s cannot be combined", strings.Join(list, "|"))
	}
	onlyExpand := len(m.transforms) == 1 && m.transforms[0] == "expand"
	if (m.re || m.cidr || m.cmp != 0 || m.part != 0 || m.exists) && (m.contains || m.startswith || m.endswith || (len(m.transforms) > 0 && !(m.cidr && onlyExpand))) {
		return m, fmt.Errorf("modifiers %s cannot be combined", strings.Join(list, "|"))
	}
	return m, nil
}

func (cp *compiler) compileField(r *Rule, field string, modList []string, vals []*yaml.Node) (node, error) {
	m, err := parseMods(modList)
	if err != nil {
		return nil, err
	}
	fi := cp.field(field, r.Logsource)
	if m.exists {
		if len(vals) != 1 || vals[0].Tag != "!!bool" {
			return nil, errAt(vals[0], "field %q: exists takes true or false", field)
		}
		return existsNode{field: fi, want: strings.EqualFold(vals[0].Value, "true")}, nil
	}
	fn := &fieldNode{field: fi, name: field, all: m.all, neg: m.neq}
	for _, v := range vals {
		ps, err := cp.valuePreds(v, m)
		if err != nil {
			var pe *posError
			if asPos(err, &pe) {
				return nil, &posError{line: pe.line, msg: fmt.Sprintf("field %q: %s", field, pe.msg)}
			}
			return nil, errAt(v, "field %q: %v", field, err)
		}
		if err := cp.charge(v, ps); err != nil {
			return nil, err
		}
		for _, p := range ps {
			if p.op == opNull {
				if len(vals) > 1 {
					return nil, errAt(v, "field %q: null cannot be part of a value list", field)
				}
				fn.absent, fn.null = true, true
				continue
			}
			if m.fieldref {
				p.ref = cp.field(p.raw, r.Logsource)
			}
			fn.preds = append(fn.preds, p)
		}
	}
	if !m.all {
		fn.idx = newPredIndex(fn.preds)
	}
	if m.all && len(fn.preds) > 1 {
		// Put the cheapest tests first.
		sort.SliceStable(fn.preds, func(i, j int) bool { return fn.preds[i].op < fn.preds[j].op })
	}
	return fn, nil
}

// Values of Rule.Refire.
const (
	RefireWindow       = "window"
	RefireUntilCleared = "until_cleared"
)

// untilCleared reports whether the rule's alerts take their repeats until
// cleared (vigil.Alert.UntilCleared).
func (r *Rule) untilCleared() bool {
	return r.Refire == RefireUntilCleared || r.Refire == "" && len(r.OncePer) > 0
}
