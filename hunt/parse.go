package hunt

import (
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Query is a parsed hunt: a search expression over events, then a
// pipeline of commands.
type Query struct {
	// Search selects events; nil selects all.
	Search Expr
	// Commands run in order on what the search selects.
	Commands []Command
	// Stats is the index in Commands of the aggregating command (stats or
	// top), -1 when the query returns events.
	Stats int
}

// Expr is a boolean expression over one event: *And, *Or, *Not, *Cmp, *All.
type Expr interface{ expr() }

// And is true when both sides are.
type And struct{ L, R Expr }

// Or is true when either side is.
type Or struct{ L, R Expr }

// All is true for every event (a bare *).
type All struct{}

// Not negates X.
type Not struct{ X Expr }

// Cmp compares a field with a value. Field "_time" is the event time.
type Cmp struct {
	Field string
	Op    string // = != < <= > >= , or "regex" (from the regex command)
	Value string
	Pos   int

	// Compiled matchers (by compile).
	glob   *glob
	prefix netip.Prefix
	re     *regexp.Regexp
	num    float64
	isNum  bool
	when   int64 // for _time, Unix nanoseconds
	exists bool  // field=* : present with any value
}

func (*And) expr() {}
func (*Or) expr()  {}
func (*Not) expr() {}
func (*Cmp) expr() {}
func (*All) expr() {}

// Command is one stage of the pipeline.
type Command struct {
	Name string // search, regex, bin, stats, top, sort, head, table
	Pos  int

	Filter Expr      // search, regex
	Span   int64     // bin: bucket width in nanoseconds
	Aggs   []Agg     // stats
	By     []string  // stats, top: group by
	Fields []string  // top: the counted fields; table: the columns
	Sort   []SortKey // sort
	Limit  int       // head, top (limit=), sort (a leading count)
}

// Agg is one aggregation of stats: count, count(f), dc(f), sum, avg, min,
// max; As names its column.
type Agg struct {
	Func  string
	Field string
	As    string
}

// SortKey is a column to sort on, descending when Desc.
type SortKey struct {
	Field string
	Desc  bool
}

// TimeField is the pseudo-field of the event time.
const TimeField = "_time"

// Default and maximum rows of a result.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

type parser struct {
	toks []token
	i    int
	now  time.Time
	nest int // open parentheses
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

// Parse parses a query. Relative times (earliest=-24h) are resolved
// against now. The error is a *SyntaxError.
func Parse(q string, now time.Time) (*Query, error) {
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, now: now}
	out := &Query{Stats: -1}
	if k := p.peek().kind; k != tPipe && k != tEOF {
		if out.Search, err = p.or(); err != nil {
			return nil, err
		}
	}
	if t := p.peek(); t.kind != tPipe && t.kind != tEOF {
		return nil, errAt(t.pos, "unexpected %s", t)
	}
	for p.peek().kind == tPipe {
		p.next()
		c, err := p.command()
		if err != nil {
			return nil, err
		}
		if t := p.peek(); t.kind != tPipe && t.kind != tEOF {
			return nil, errAt(t.pos, "unexpected %s in %s", t, c.Name)
		}
		switch c.Name {
		case "stats", "top":
			if out.Stats >= 0 {
				return nil, errAt(c.Pos, "only one stats or top per query")
			}
			out.Stats = len(out.Commands)
		case "search", "regex", "bin":
			if out.Stats >= 0 {
				return nil, errAt(c.Pos, "%s must come before stats or top", c.Name)
			}
		case "sort":
			if out.Stats < 0 {
				return nil, errAt(c.Pos, "sort needs stats or top before it (events come newest first)")
			}
		}
		out.Commands = append(out.Commands, c)
	}
	return out, nil
}

func (p *parser) or() (Expr, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.peek().kind == tWord && p.peek().text == "OR" {
		p.next()
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = &Or{l, r}
	}
	return l, nil
}

func (p *parser) and() (Expr, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		if t.kind == tWord && t.text == "AND" {
			p.next()
		} else if !(t.kind == tWord && t.text != "OR" || t.kind == tLParen || t.kind == tString) {
			return l, nil
		}
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = &And{l, r}
	}
}

// maxDepth bounds the nesting of an expression.
const maxDepth = 100

func (p *parser) unary() (Expr, error) {
	depth := 0
	neg := false
	for p.peek().kind == tWord && p.peek().text == "NOT" {
		p.next()
		neg = !neg
		if depth++; depth > maxDepth {
			return nil, errAt(p.peek().pos, "too many NOT")
		}
	}
	x, err := p.primary()
	if err != nil {
		return nil, err
	}
	if neg {
		return &Not{x}, nil
	}
	return x, nil
}

func (p *parser) primary() (Expr, error) {
	t := p.next()
	switch t.kind {
	case tLParen:
		if p.nest++; p.nest > maxDepth {
			return nil, errAt(t.pos, "parentheses nested deeper than %d", maxDepth)
		}
		x, err := p.or()
		p.nest--
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, errAt(c.pos, "expected \")\" to close the \"(\" at position %d, found %s", t.pos+1, c)
		}
		return x, nil
	case tWord:
		if t.text == "*" && p.peek().kind != tOp {
			return &All{}, nil
		}
		if t.text == "AND" || t.text == "OR" {
			return nil, errAt(t.pos, "%s needs a condition before it", t.text)
		}
		op := p.peek()
		if op.kind != tOp {
			return nil, errAt(t.pos, "expected field=value, found the bare word %q (free-text search is not supported: name the field, e.g. process.command_line=\"*%s*\")", t.text, t.text)
		}
		p.next()
		v := p.next()
		if v.kind != tWord && v.kind != tString {
			return nil, errAt(v.pos, "expected a value after %q, found %s", t.text+op.text, v)
		}
		return p.cmp(t, op.text, v)
	case tEOF:
		return nil, errAt(t.pos, "expected a condition, found the end of the query")
	}
	return nil, errAt(t.pos, "expected a condition (field=value, NOT or \"(\"), found %s", t)
}

// cmp makes and compiles the comparison field op value.
func (p *parser) cmp(f token, op string, v token) (Expr, error) {
	field := f.text
	switch field {
	case "earliest", "latest":
		if op != "=" {
			return nil, errAt(f.pos, "%s takes =, not %s", field, op)
		}
		t, err := parseTime(v.text, p.now)
		if err != nil {
			return nil, errAt(v.pos, "%s: %v", field, err)
		}
		c := &Cmp{Field: TimeField, Op: ">=", Value: v.text, Pos: f.pos, when: t.UnixNano()}
		if field == "latest" {
			c.Op = "<"
		}
		return c, nil
	}
	if err := checkField(field); err != nil {
		return nil, errAt(f.pos, "%v", err)
	}
	c := &Cmp{Field: field, Op: op, Value: v.text, Pos: f.pos}
	if err := c.compile(p.now, v.pos, v.kind == tString); err != nil {
		return nil, err
	}
	return c, nil
}

func checkField(name string) error {
	if name == "" || len(name) > 256 {
		return errString("a field name has 1 to 256 characters")
	}
	for _, r := range name {
		if !(r == '.' || r == '_' || r == '-' || r == '@' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return errString("bad character " + strconv.QuoteRune(r) + " in field name " + strconv.Quote(name))
		}
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

// compile prepares the comparison. quoted says the value was quoted: a
// quoted * is still a wildcard (as in SPL), but a quoted value is never
// taken as a CIDR block.
func (c *Cmp) compile(now time.Time, vpos int, quoted bool) error {
	if c.Field == TimeField {
		if c.Op == "=" || c.Op == "!=" {
			return errAt(c.Pos, "_time takes <, <=, > or >= (or earliest= and latest=)")
		}
		t, err := parseTime(c.Value, now)
		if err != nil {
			return errAt(vpos, "_time: %v", err)
		}
		c.when = t.UnixNano()
		return nil
	}
	switch c.Op {
	case "=", "!=":
		if c.Value == "*" {
			c.exists = true
			return nil
		}
		if !quoted && strings.Contains(c.Value, "/") {
			if pfx, err := netip.ParsePrefix(c.Value); err == nil {
				c.prefix = pfx.Masked()
				return nil
			}
		}
		c.glob = newGlob(c.Value)
		return nil
	case "regex":
		re, err := regexp.Compile(c.Value)
		if err != nil {
			return errAt(vpos, "bad regular expression: %v", err)
		}
		c.re = re
		return nil
	}
	// < <= > >=: numbers, or else text.
	if n, err := strconv.ParseFloat(c.Value, 64); err == nil && !math.IsNaN(n) {
		c.num, c.isNum = n, true
	}
	return nil
}

// parseTime reads an absolute time (RFC 3339, or a date), "now", or a
// time relative to now: -30m, -24h, -7d, -2w.
func parseTime(s string, now time.Time) (time.Time, error) {
	if s == "now" {
		return now, nil
	}
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		d, err := parseSpan(s[1:])
		if err != nil {
			return time.Time{}, err
		}
		if s[0] == '-' {
			d = -d
		}
		return now.Add(time.Duration(d)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errString("cannot read time " + strconv.Quote(s) + ": want RFC 3339 (2026-12-07T10:00:00Z), a date, now, or relative (-24h, -7d)")
}

// parseSpan reads a span: a count and a unit s, m, h, d or w (30s, 1h, 7d).
func parseSpan(s string) (int64, error) {
	units := map[string]int64{"s": int64(time.Second), "m": int64(time.Minute), "h": int64(time.Hour), "d": 24 * int64(time.Hour), "w": 7 * 24 * int64(time.Hour)}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	u, ok := units[s[i:]]
	if err != nil || !ok || n <= 0 || n > math.MaxInt64/u {
		return 0, errString("cannot read span " + strconv.Quote(s) + ": want a positive count and a unit s, m, h, d or w (1h, 7d)")
	}
	return n * u, nil
}

var aggFuncs = []string{"count", "dc", "distinct_count", "sum", "avg", "min", "max"}

func (p *parser) command() (Command, error) {
	t := p.next()
	if t.kind != tWord {
		return Command{}, errAt(t.pos, "expected a command after \"|\" (search, regex, bin, stats, top, sort, head, table), found %s", t)
	}
	c := Command{Name: strings.ToLower(t.text), Pos: t.pos}
	switch c.Name {
	case "search", "where":
		c.Name = "search"
		x, err := p.or()
		if err != nil {
			return c, err
		}
		c.Filter = x
	case "regex":
		f := p.next()
		op := p.next()
		v := p.next()
		if f.kind != tWord || op.kind != tOp || (op.text != "=" && op.text != "!=") || (v.kind != tString && v.kind != tWord) {
			return c, errAt(f.pos, "regex takes field=\"expression\" or field!=\"expression\"")
		}
		if err := checkField(f.text); err != nil {
			return c, errAt(f.pos, "%v", err)
		}
		cm := &Cmp{Field: f.text, Op: "regex", Value: v.text, Pos: f.pos}
		if err := cm.compile(p.now, v.pos, true); err != nil {
			return c, err
		}
		c.Filter = cm
		if op.text == "!=" {
			c.Filter = &Not{cm}
		}
	case "bin", "bucket":
		c.Name = "bin"
		f := p.next()
		if f.kind != tWord || f.text != TimeField {
			return c, errAt(f.pos, "bin works on _time only: bin _time span=1h")
		}
		k, op, v := p.next(), p.next(), p.next()
		if k.kind != tWord || k.text != "span" || op.text != "=" || v.kind != tWord {
			return c, errAt(k.pos, "expected span=<count><unit> (span=1h)")
		}
		span, err := parseSpan(v.text)
		if err != nil {
			return c, errAt(v.pos, "%v", err)
		}
		c.Span = span
	case "stats":
		for {
			a, err := p.agg()
			if err != nil {
				return c, err
			}
			c.Aggs = append(c.Aggs, a)
			if p.peek().kind == tComma {
				p.next()
				continue
			}
			if t := p.peek(); t.kind == tWord && t.text != "by" && t.text != "BY" {
				continue
			}
			break
		}
		seen := map[string]bool{}
		for _, a := range c.Aggs {
			if seen[a.As] {
				return c, errAt(c.Pos, "two columns named %q: name one with as", a.As)
			}
			seen[a.As] = true
		}
		if t := p.peek(); t.kind == tWord && strings.EqualFold(t.text, "by") {
			p.next()
			by, err := p.fieldList()
			if err != nil {
				return c, err
			}
			c.By = by
		}
	case "top":
		c.Limit = 10
		if t := p.peek(); t.kind == tWord && t.text == "limit" {
			p.next()
			if op := p.next(); op.text != "=" {
				return c, errAt(op.pos, "expected limit=N")
			}
			n, err := p.count()
			if err != nil {
				return c, err
			}
			c.Limit = n
		}
		fs, err := p.fieldList()
		if err != nil {
			return c, err
		}
		for i, f := range fs {
			if strings.EqualFold(f, "by") {
				c.By = fs[i+1:]
				fs = fs[:i]
				break
			}
		}
		if len(fs) == 0 {
			return c, errAt(c.Pos, "top needs a field")
		}
		c.Fields = fs
	case "sort":
		if t := p.peek(); t.kind == tWord && t.text != "" && t.text[0] >= '0' && t.text[0] <= '9' {
			n, err := p.count()
			if err != nil {
				return c, err
			}
			c.Limit = n
		}
		for {
			t := p.next()
			desc := false
			if t.kind == tWord && (t.text == "-" || t.text == "+") {
				desc = t.text == "-"
				t = p.next()
			} else if t.kind == tWord && len(t.text) > 1 && (t.text[0] == '-' || t.text[0] == '+') {
				desc = t.text[0] == '-'
				t.text = t.text[1:]
			}
			if t.kind != tWord && t.kind != tString {
				return c, errAt(t.pos, "expected a column to sort on, found %s", t)
			}
			c.Sort = append(c.Sort, SortKey{Field: t.text, Desc: desc})
			if p.peek().kind == tComma {
				p.next()
				continue
			}
			if p.peek().kind != tWord {
				break
			}
		}
	case "head", "limit":
		c.Name = "head"
		c.Limit = 10
		if p.peek().kind == tWord {
			n, err := p.count()
			if err != nil {
				return c, err
			}
			c.Limit = n
		}
	case "table", "fields":
		c.Name = "table"
		fs, err := p.fieldList()
		if err != nil {
			return c, err
		}
		c.Fields = fs
	default:
		return c, errAt(t.pos, "unknown command %q: want search, regex, bin, stats, top, sort, head or table", t.text)
	}
	return c, nil
}

func (p *parser) count() (int, error) {
	t := p.next()
	n, err := strconv.Atoi(t.text)
	if t.kind != tWord || err != nil || n < 1 || n > MaxLimit {
		return 0, errAt(t.pos, "expected a count from 1 to %d, found %s", MaxLimit, t)
	}
	return n, nil
}

// fieldList reads f1, f2 or f1 f2 up to a pipe.
func (p *parser) fieldList() ([]string, error) {
	var out []string
	for {
		t := p.peek()
		if t.kind == tComma {
			p.next()
			continue
		}
		if t.kind != tWord && t.kind != tString {
			break
		}
		p.next()
		if !strings.EqualFold(t.text, "by") {
			if err := checkField(t.text); err != nil {
				return nil, errAt(t.pos, "%v", err)
			}
		}
		out = append(out, t.text)
	}
	if len(out) == 0 {
		return nil, errAt(p.peek().pos, "expected a field name, found %s", p.peek())
	}
	return out, nil
}

func (p *parser) agg() (Agg, error) {
	t := p.next()
	if t.kind != tWord || !slices.Contains(aggFuncs, strings.ToLower(t.text)) {
		return Agg{}, errAt(t.pos, "expected an aggregation (count, dc(f), sum(f), avg(f), min(f), max(f)), found %s", t)
	}
	a := Agg{Func: strings.ToLower(t.text)}
	if a.Func == "distinct_count" {
		a.Func = "dc"
	}
	if p.peek().kind == tLParen {
		p.next()
		f := p.next()
		if f.kind != tWord {
			return a, errAt(f.pos, "expected a field in %s(), found %s", a.Func, f)
		}
		if err := checkField(f.text); err != nil {
			return a, errAt(f.pos, "%v", err)
		}
		a.Field = f.text
		if c := p.next(); c.kind != tRParen {
			return a, errAt(c.pos, "expected \")\", found %s", c)
		}
	} else if a.Func != "count" {
		return a, errAt(t.pos, "%s needs a field: %s(field)", a.Func, a.Func)
	}
	a.As = a.Func
	if a.Field != "" {
		a.As = a.Func + "(" + a.Field + ")"
	}
	if t := p.peek(); t.kind == tWord && strings.EqualFold(t.text, "as") {
		p.next()
		n := p.next()
		if n.kind != tWord && n.kind != tString {
			return a, errAt(n.pos, "expected a name after as, found %s", n)
		}
		a.As = n.text
	}
	return a, nil
}

// EarliestOf returns the time of a query that is only earliest=T (zero
// otherwise): for callers that read times the way queries do.
func EarliestOf(q *Query) time.Time {
	if c, ok := q.Search.(*Cmp); ok && c.Field == TimeField && c.Op == ">=" {
		return time.Unix(0, c.when).UTC()
	}
	return time.Time{}
}
