package sigma

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Correlation types.
const (
	CorrEventCount      = "event_count"
	CorrValueCount      = "value_count"
	CorrTemporal        = "temporal"
	CorrTemporalOrdered = "temporal_ordered"
	CorrValueSum        = "value_sum"
	CorrValueAvg        = "value_avg"
	CorrValuePercentile = "value_percentile"
)

// Correlation is a parsed correlation section.
type Correlation struct {
	Type     string
	RuleRefs []string
	GroupBy  []string
	Timespan time.Duration
	// Field is the value field of value_* correlations.
	Field string
	// Percentile is value_percentile's rank (0..100).
	Percentile float64
	// Conds are the count conditions (op → value), ANDed.
	Conds    []CorrCond
	Aliases  map[string]map[string]string // alias → rule ref → field
	Generate bool

	rules []*Rule // resolved RuleRefs
}

// CorrCond is one condition criterion: gt, gte, lt, lte, eq or neq.
type CorrCond struct {
	Op    string
	Value float64
}

func (c CorrCond) holds(x float64) bool {
	switch c.Op {
	case "gt":
		return x > c.Value
	case "gte":
		return x >= c.Value
	case "lt":
		return x < c.Value
	case "lte":
		return x <= c.Value
	case "eq":
		return x == c.Value
	case "neq":
		return x != c.Value
	}
	return false
}

// parseTimespan reads "90s", "5m", "1h", "2d" (and "1w", "1M", "1y").
func parseTimespan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 {
		return 0, fmt.Errorf("invalid timespan %q: want a number and one of s, m, h, d", s)
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid timespan %q: want a number and one of s, m, h, d", s)
	}
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour, 'M': 30 * 24 * time.Hour, 'y': 365 * 24 * time.Hour}[s[len(s)-1]]
	if unit == 0 {
		return 0, fmt.Errorf("invalid timespan unit in %q: want s, m, h or d", s)
	}
	return time.Duration(n) * unit, nil
}

func parseCorrelation(cp *compiler, r *Rule, n *yaml.Node) (*Correlation, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errAt(n, "correlation must be a map")
	}
	c := &Correlation{Type: scalarString(mapGet(n, "type")), Aliases: map[string]map[string]string{}}
	switch c.Type {
	case CorrEventCount, CorrValueCount, CorrTemporal, CorrTemporalOrdered, CorrValueSum, CorrValueAvg, CorrValuePercentile:
	case "":
		return nil, errAt(n, "correlation without type")
	default:
		return nil, errAt(mapGet(n, "type"), "unknown correlation type %q", c.Type)
	}
	c.RuleRefs = stringList(mapGet(n, "rules"))
	if len(c.RuleRefs) == 0 {
		return nil, errAt(n, "correlation without rules")
	}
	c.GroupBy = stringList(mapGet(n, "group-by"))
	ts := mapGet(n, "timespan")
	if ts == nil {
		ts = mapGet(n, "timeframe")
	}
	if ts == nil {
		return nil, errAt(n, "correlation without timespan")
	}
	d, err := parseTimespan(ts.Value)
	if err != nil {
		return nil, errAt(ts, "%v", err)
	}
	c.Timespan = d
	if g := mapGet(n, "generate"); g != nil {
		c.Generate = strings.EqualFold(g.Value, "true")
	}
	if al := mapGet(n, "aliases"); al != nil {
		if al.Kind != yaml.MappingNode {
			return nil, errAt(al, "aliases must be a map")
		}
		for i := 0; i+1 < len(al.Content); i += 2 {
			name, m := al.Content[i].Value, resolveAlias(al.Content[i+1])
			if m.Kind != yaml.MappingNode {
				return nil, errAt(m, "alias %q must map rule names to fields", name)
			}
			c.Aliases[name] = map[string]string{}
			for j := 0; j+1 < len(m.Content); j += 2 {
				c.Aliases[name][m.Content[j].Value] = m.Content[j+1].Value
			}
		}
	}
	cond := mapGet(n, "condition")
	switch c.Type {
	case CorrTemporal, CorrTemporalOrdered:
		if cond == nil { // default: all rules
			c.Conds = []CorrCond{{Op: "gte", Value: float64(len(c.RuleRefs))}}
		}
	default:
		if cond == nil {
			return nil, errAt(n, "%s correlation without condition", c.Type)
		}
	}
	if cond != nil {
		if cond.Kind != yaml.MappingNode {
			return nil, errAt(cond, "correlation condition must be a map such as {gte: 10}")
		}
		for i := 0; i+1 < len(cond.Content); i += 2 {
			k, v := cond.Content[i].Value, cond.Content[i+1]
			switch k {
			case "field":
				c.Field = v.Value
			case "percentile":
				p, err := strconv.ParseFloat(v.Value, 64)
				if err != nil || p < 0 || p > 100 {
					return nil, errAt(v, "percentile must be a number from 0 to 100")
				}
				c.Percentile = p
			case "gt", "gte", "lt", "lte", "eq", "neq":
				x, err := strconv.ParseFloat(v.Value, 64)
				if err != nil {
					return nil, errAt(v, "condition %s: %q is not a number", k, v.Value)
				}
				c.Conds = append(c.Conds, CorrCond{Op: k, Value: x})
			default:
				return nil, errAt(cond.Content[i], "unknown correlation condition %q", k)
			}
		}
		if len(c.Conds) == 0 {
			return nil, errAt(cond, "correlation condition without a comparison")
		}
	}
	switch c.Type {
	case CorrValueCount, CorrValueSum, CorrValueAvg, CorrValuePercentile:
		if c.Field == "" {
			return nil, errAt(cond, "%s correlation needs condition.field", c.Type)
		}
	}
	if c.Type == CorrValuePercentile && mapGet(cond, "percentile") == nil {
		return nil, errAt(cond, "value_percentile correlation needs condition.percentile")
	}
	return c, nil
}

// linkCorrelation resolves a correlation's rule references.
func (rs *RuleSet) linkCorrelation(r *Rule) error {
	c := r.Correlation
	c.rules = c.rules[:0]
	for _, ref := range c.RuleRefs {
		t, ok := rs.byRef[ref]
		if !ok {
			return fmt.Errorf("correlation refers to unknown rule %q", ref)
		}
		if t == r {
			return fmt.Errorf("correlation refers to itself")
		}
		c.rules = append(c.rules, t)
		if !c.Generate {
			t.silent = true
		}
	}
	return nil
}
