package sigma

import (
	"fmt"
	"path"
	"strconv"
	"strings"
)

// condParser parses a Sigma condition:
//
//	expr    = and { "or" and }
//	and     = unary { "and" unary }
//	unary   = "not" unary | primary
//	primary = "(" expr ")" | quant "of" (pattern | "them") | ident
//	quant   = "1" | "any" | "all" | number
type condParser struct {
	toks     []string
	pos      int
	searches map[string]node
	order    []string
	depth    int
	// cost counts the values the condition tests (see maxCondCost);
	// costs caches the cost of each search identifier.
	cost  *int
	costs map[string]int
}

// Limits on a condition, so that a rule cannot make compiling or
// evaluating it take unbounded time or memory: how deep it nests
// (parentheses and not), and how many values it tests, each search
// identifier counted each time the condition names it, "of" included.
// Real rules stay far below: the largest of the public Sigma repository
// tests 4432 values, the deepest nests 4 levels.
const (
	maxCondDepth = 100
	maxCondCost  = 100000
)

func tokenizeCond(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, string(c))
			i++
		case c == '|':
			return nil, fmt.Errorf("the pipe aggregation syntax (%q) is deprecated: use a correlation rule", strings.TrimSpace(s[i:]))
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n()|", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}

// parseCondition parses condition s over the search identifiers. cost
// counts the values tested by the conditions of the rule parsed so far
// (several when the condition is a list).
func parseCondition(s string, searches map[string]node, order []string, cost *int) (node, error) {
	toks, err := tokenizeCond(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("empty condition")
	}
	p := &condParser{toks: toks, searches: searches, order: order, cost: cost, costs: map[string]int{}}
	n, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q at token %d", p.toks[p.pos], p.pos+1)
	}
	return n, nil
}

func (p *condParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

// search returns search identifier name, counting its cost.
func (p *condParser) search(name string) (node, error) {
	n := p.searches[name]
	c, ok := p.costs[name]
	if !ok {
		eachLeaf(n, func(l node) {
			switch x := l.(type) {
			case *fieldNode:
				c += max(len(x.preds), 1)
			case *keywordNode:
				c += max(len(x.preds), 1)
			default:
				c++
			}
		})
		p.costs[name] = c
	}
	if *p.cost += c; *p.cost > maxCondCost {
		return nil, fmt.Errorf("the condition tests more than %d values (each search identifier counted each time it is named)", maxCondCost)
	}
	return n, nil
}

func (p *condParser) expr() (node, error) {
	if p.depth++; p.depth > maxCondDepth {
		return nil, fmt.Errorf("the condition nests more than %d levels deep", maxCondDepth)
	}
	defer func() { p.depth-- }()
	n, err := p.and()
	if err != nil {
		return nil, err
	}
	alts := orNode{n}
	for strings.EqualFold(p.peek(), "or") {
		p.pos++
		m, err := p.and()
		if err != nil {
			return nil, err
		}
		alts = append(alts, m)
	}
	if len(alts) == 1 {
		return n, nil
	}
	return alts, nil
}

func (p *condParser) and() (node, error) {
	n, err := p.unary()
	if err != nil {
		return nil, err
	}
	all := andNode{n}
	for strings.EqualFold(p.peek(), "and") {
		p.pos++
		m, err := p.unary()
		if err != nil {
			return nil, err
		}
		all = append(all, m)
	}
	if len(all) == 1 {
		return n, nil
	}
	return all, nil
}

func (p *condParser) unary() (node, error) {
	if strings.EqualFold(p.peek(), "not") {
		p.pos++
		if p.depth++; p.depth > maxCondDepth {
			return nil, fmt.Errorf("the condition nests more than %d levels deep", maxCondDepth)
		}
		defer func() { p.depth-- }()
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	}
	return p.primary()
}

func isKeyword(t string) bool {
	switch strings.ToLower(t) {
	case "and", "or", "not", "of", "(", ")":
		return true
	}
	return false
}

func (p *condParser) primary() (node, error) {
	t := p.peek()
	switch {
	case t == "":
		return nil, fmt.Errorf("unexpected end of condition")
	case t == "(":
		p.pos++
		n, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("missing closing parenthesis")
		}
		p.pos++
		return n, nil
	case isKeyword(t):
		return nil, fmt.Errorf("unexpected %q at token %d", t, p.pos+1)
	}
	if p.pos+1 < len(p.toks) && strings.EqualFold(p.toks[p.pos+1], "of") {
		q := strings.ToLower(t)
		min := 0 // 0 means all
		switch q {
		case "all":
		case "any":
			min = 1
		default:
			n, err := strconv.Atoi(q)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("invalid quantifier %q before of", t)
			}
			min = n
		}
		p.pos += 2
		pat := p.peek()
		if pat == "" || isKeyword(pat) {
			return nil, fmt.Errorf("missing search identifier pattern after %q of", t)
		}
		p.pos++
		var kids []node
		for _, name := range p.order {
			if strings.EqualFold(pat, "them") {
				if strings.HasPrefix(name, "_") {
					continue
				}
			} else if ok, _ := path.Match(pat, name); !ok {
				continue
			}
			n, err := p.search(name)
			if err != nil {
				return nil, err
			}
			kids = append(kids, n)
		}
		if len(kids) == 0 {
			return nil, fmt.Errorf("%q of %q matches no search identifier", t, pat)
		}
		if min == 0 {
			if len(kids) == 1 {
				return kids[0], nil
			}
			return andNode(kids), nil
		}
		if min == 1 {
			if len(kids) == 1 {
				return kids[0], nil
			}
			return orNode(kids), nil
		}
		return countNode{min: min, kids: kids}, nil
	}
	if _, ok := p.searches[t]; !ok {
		return nil, fmt.Errorf("unknown search identifier %q", t)
	}
	p.pos++
	return p.search(t)
}
