package sigma

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/vigil-iot/vigil"
)

// Explaining: when a rule fires, its search identifiers are evaluated
// again on that one event (still loaded in the evaluation context) in an
// explaining mode that records which field values matched which of the
// rule's values. The hot path never explains: only a rule that fired is
// re-evaluated, once.

// explainRule returns what an explanation keeps of rule r.
func explainRule(r *Rule) *vigil.ExplainedRule {
	return &vigil.ExplainedRule{
		ID: firstNonEmpty(r.ID, r.Name, r.Title), Title: r.Title, Description: r.Description,
		Level: r.Level, Condition: r.Condition,
	}
}

// explainMatches returns the values of the event loaded in c that made
// the search identifiers of r match (those that did, in the rule's order),
// at most vigil.MaxExplainMatches, and the event field names they were
// read under.
func (rs *RuleSet) explainMatches(r *Rule, c *evalCtx) ([]vigil.Match, []string) {
	x := explainer{rs: rs, c: c}
	for _, id := range r.order {
		n := r.searches[id]
		if n == nil || !n.eval(c) {
			continue
		}
		x.sel = id
		x.node(n)
	}
	return x.out, x.fields
}

type explainer struct {
	rs     *RuleSet
	c      *evalCtx
	sel    string
	out    []vigil.Match
	fields []string
}

func (x *explainer) add(field int, name, value, pattern string) {
	if len(x.out) >= vigil.MaxExplainMatches {
		return
	}
	x.out = append(x.out, vigil.Match{Selection: x.sel, Field: name, Value: vigil.CutValue(value), Pattern: vigil.CutValue(pattern)})
	if field >= 0 && field < len(x.rs.fieldNames) {
		// The event's name of the field: the first of its names it has.
		names := x.rs.fieldNames[field]
		if len(names) > 0 {
			f := names[0]
			if src, ok := x.c.src.(*eventSource); ok {
				for _, n := range names {
					if _, ok := src.ev.Field(n); ok {
						f = n
						break
					}
				}
			}
			if !slices.Contains(x.fields, f) {
				x.fields = append(x.fields, f)
			}
		}
	}
}

// node records the matches of n, which holds on the event.
func (x *explainer) node(n node) {
	c := x.c
	switch t := n.(type) {
	case andNode:
		for _, k := range t {
			x.node(k)
		}
	case orNode:
		for _, k := range t {
			if k.eval(c) {
				x.node(k)
				return
			}
		}
	case countNode:
		for _, k := range t.kids {
			if k.eval(c) {
				x.node(k)
			}
		}
	case notNode:
		x.add(-1, "", "", "not (a selection that did not match)")
	case existsNode:
		s := c.get(t.field)
		v := ""
		if s.present {
			v = slotText(s)
		}
		if t.want {
			x.add(t.field, x.fieldName(t.field), v, "exists: true")
		} else {
			x.add(-1, x.fieldName(t.field), "", "exists: false")
		}
	case *fieldNode:
		x.field(t)
	case *keywordNode:
		x.keywords(t)
	}
}

// fieldName is a field's first event name (for exists, which keeps no
// rule name).
func (x *explainer) fieldName(f int) string {
	if f >= 0 && f < len(x.rs.fieldNames) && len(x.rs.fieldNames[f]) > 0 {
		return x.rs.fieldNames[f][0]
	}
	return ""
}

func (x *explainer) field(n *fieldNode) {
	c := x.c
	s := c.get(n.field)
	switch {
	case n.neg:
		var raws []string
		for i := range n.preds {
			raws = append(raws, n.preds[i].raw)
		}
		v := ""
		if s.present {
			v = slotText(s)
		}
		x.add(n.field, n.name, v, "neq: "+strings.Join(raws, ", "))
		return
	case !s.present:
		x.add(-1, n.name, "", "(absent)")
		return
	case s.null:
		x.add(n.field, n.name, "null", "null")
		return
	}
	vals := []string{s.s}
	if s.isList {
		vals = s.list
	}
	for i := range n.preds {
		p := &n.preds[i]
		for _, v := range vals {
			vv := val{s: v}
			if p.match(c, &vv) {
				x.add(n.field, n.name, v, patternText(p))
				if !n.all {
					return
				}
				break
			}
		}
	}
}

func (x *explainer) keywords(n *keywordNode) {
	c := x.c
	if c.src == nil {
		return
	}
	for i := range n.preds {
		p := &n.preds[i]
		found := false
		c.src.strings(c, func(v string) bool {
			vv := val{s: v}
			if p.match(c, &vv) {
				x.add(-1, "", v, "keyword: "+p.raw)
				found = true
				return false
			}
			return true
		})
		if found && !n.all {
			return
		}
	}
}

// slotText is a slot's value as text (a list as its elements joined).
func slotText(s *slot) string {
	if s.isList {
		return strings.Join(s.list, ", ")
	}
	return s.s
}

// patternText is a rule value as written, with the test it makes.
func patternText(p *pred) string {
	if strings.ContainsAny(p.raw, "*?") {
		switch p.op {
		case opEq, opPrefix, opSuffix, opContains, opGlob, opAny:
			return "wildcard: " + p.raw
		}
	}
	var op string
	switch p.op {
	case opEq, opNumEq:
		op = "equals"
	case opPrefix:
		op = "startswith"
	case opSuffix:
		op = "endswith"
	case opContains:
		op = "contains"
	case opAny:
		op = "any"
	case opGlob:
		op = "wildcard"
	case opRe:
		op = "re"
	case opCIDR:
		op = "cidr"
	case opLt:
		op = "lt"
	case opLte:
		op = "lte"
	case opGt:
		op = "gt"
	case opGte:
		op = "gte"
	case opNull:
		return "null"
	case opRefEq, opRefPrefix, opRefSuffix, opRefContains:
		op = "fieldref"
	}
	return op + ": " + p.raw
}

// explainEvent is the explanation of detection rule r on ev (loaded in c).
func (rs *RuleSet) explainEvent(r *Rule, c *evalCtx, ev *vigil.Event) *vigil.Explanation {
	matches, fields := rs.explainMatches(r, c)
	x := &vigil.Explanation{Rule: explainRule(r), Matches: matches}
	x.AddEvidence(vigil.ExcerptOf(ev, append(fields, r.Fields...)...))
	return x
}

// explainCorr is the explanation of a correlation that fired: its rule and
// condition, the group it counted in, its window and what it measured.
func explainCorr(f corrFire) *vigil.Explanation {
	r := f.rule
	c := r.Correlation
	x := &vigil.Explanation{Rule: explainRule(r), Window: c.Timespan.String()}
	var conds []string
	for _, cc := range c.Conds {
		conds = append(conds, cc.Op+" "+strconv.FormatFloat(cc.Value, 'g', -1, 64))
	}
	series := c.Type
	if c.Field != "" {
		series += " of " + c.Field
	}
	x.Rule.Condition = series + " " + strings.Join(conds, " and ") + " within " + x.Window
	if len(c.GroupBy) > 0 {
		vals := strings.Split(f.key, "\x00")
		x.Group = map[string]string{}
		for i, g := range c.GroupBy {
			if i < len(vals) {
				x.Group[g] = vigil.CutValue(vals[i])
			}
		}
	}
	x.Threshold = &vigil.ExplainedThreshold{Series: series, Op: strings.Join(conds, " and "),
		Observed: strconv.FormatFloat(f.value, 'g', -1, 64), Count: f.count}
	if len(c.Conds) == 1 {
		x.Threshold.Op = c.Conds[0].Op
		x.Threshold.Threshold = strconv.FormatFloat(c.Conds[0].Value, 'g', -1, 64)
	}
	return x
}

// explainLine is the explanation of detection rule r on the NDJSON event
// the matcher holds (inside MatchLine's hit): the rule, the values that
// matched, and an excerpt of the line (lineEvent).
func (m *Matcher) explainLine(r *Rule) *vigil.Explanation {
	matches, fields := m.rs.explainMatches(r, m.ctx)
	// The line may name a field as the rule does or as the mapping does:
	// the excerpt looks for both.
	for _, mt := range matches {
		if mt.Field != "" && !slices.Contains(fields, mt.Field) {
			fields = append(fields, mt.Field)
		}
	}
	names := append(fields, r.Fields...)
	x := &vigil.Explanation{Rule: explainRule(r), Matches: matches}
	x.AddEvidence(vigil.ExcerptOf(m.lineEvent(names...), names...))
	return x
}

// lineEvent returns the NDJSON event the matcher holds as a vigil.Event
// for an excerpt of the fields named (and vigil.ExcerptFields): its id,
// time, device and kind from the matcher's slots, its action, category
// and outcome, and the values of those fields found in the line, under a
// top-level key, in nested objects (a.b.c), or in a vigil.Event's
// "fields" object. Only alerts pay for it: the line is walked again and
// only the values wanted are decoded.
func (m *Matcher) lineEvent(names ...string) *vigil.Event {
	ev := &vigil.Event{ID: strings.Clone(m.str(slotEventID)), DeviceID: strings.Clone(m.str(slotDevice)), Kind: strings.Clone(m.str(slotKind))}
	ev.Time, _ = m.times.eventTime(m.str(slotTime))
	want := append(slices.Clone(names), vigil.ExcerptFields()...)
	ev.Fields = map[string]any{}
	var walk func(b []byte, prefix string, depth int)
	walk = func(b []byte, prefix string, depth int) {
		_ = objectMembers(b, func(key string, val []byte) {
			name := key
			if prefix != "" {
				name = prefix + "." + key
			}
			switch {
			case val[0] == '{':
				if depth < 8 && prefix == "" && key == "fields" {
					walk(val, "", depth+1) // a vigil.Event's extras
				} else if depth < 8 && slices.ContainsFunc(want, func(w string) bool { return strings.HasPrefix(w, name+".") }) {
					walk(val, name, depth+1)
				}
				return
			case depth == 0 && val[0] == '"' && (key == "action" || key == "category" || key == "outcome"):
				var s string
				_ = json.Unmarshal(val, &s)
				switch key {
				case "action":
					ev.Action = s
				case "category":
					ev.Category = s
				default:
					ev.Outcome = s
				}
			}
			if !slices.Contains(want, name) {
				return
			}
			if _, dup := ev.Fields[name]; dup {
				return
			}
			var v any
			if json.Unmarshal(val, &v) == nil && v != nil {
				ev.Fields[strings.Clone(name)] = v
			}
		})
	}
	walk(m.js.line, "", 0)
	return ev
}

// objectMembers calls fn with the key and the raw value of each member of
// the JSON object b starts with (after white space). The key may point
// into b. It stops at the first malformed byte and reports it.
func objectMembers(b []byte, fn func(key string, val []byte)) error {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errJSON
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return errJSON
		}
		start, end, esc, next, err := scanString(b, i)
		if err != nil {
			return err
		}
		var key string
		if esc {
			if json.Unmarshal(b[start-1:end+1], &key) != nil {
				return errJSON
			}
		} else {
			key = unsafe.String(unsafe.SliceData(b[start:end]), end-start)
		}
		i = skipWS(b, next)
		if i >= len(b) || b[i] != ':' {
			return errJSON
		}
		i = skipWS(b, i+1)
		j, err := skipAny(b, i)
		if err != nil {
			return err
		}
		fn(key, b[i:j])
		var done bool
		if i, done, err = nextElem(b, j, '}'); err != nil || done {
			return err
		}
	}
}

// skipAny returns the index after the JSON value at b[i], objects and
// arrays included (balanced, strings respected; their contents are not
// checked further).
func skipAny(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errJSON
	}
	if b[i] != '{' && b[i] != '[' {
		return skipValue(b, i)
	}
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			_, _, _, n, err := scanString(b, j)
			if err != nil {
				return 0, err
			}
			j = n - 1
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return j + 1, nil
			}
		}
	}
	return 0, errJSON
}
