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
}

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

func parseCondition(s string, searches map[string]node, order []string) (node, error) {
	toks, err := tokenizeCond(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("empty condition")
	}
	p := &condParser{toks: toks, searches: searches, order: order}
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

func (p *condParser) expr() (node, error) {
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
			kids = append(kids, p.searches[name])
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
	n, ok := p.searches[t]
	if !ok {
		return nil, fmt.Errorf("unknown search identifier %q", t)
	}
	p.pos++
	return n, nil
}
