package stix

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/vigil-iot/vigil/feeds"
)

// Atom is one supported comparison, already mapped to an indicator type.
type Atom struct {
	Type  feeds.Type
	Value string
}

// maxTerms bounds the alternatives of the disjunctive normal form of one
// pattern, maxAtoms the atoms of all its alternatives together (each AND
// adds an atom to every alternative), and maxDepth how deep parentheses
// nest (the parser recurses on each).
const (
	maxTerms = 256
	maxAtoms = 4096
	maxDepth = 64
)

// ParsePattern parses a STIX pattern into its disjunctive normal form: a
// list of alternatives, each a list of atoms that must all hold on one
// event. Unsupported constructs are errors.
func ParsePattern(s string) ([][]Atom, error) {
	p := &parser{src: s}
	if err := p.lex(); err != nil {
		return nil, err
	}
	dnf, err := p.pattern()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("unexpected token at offset %d", p.toks[p.pos].off)
	}
	return dnf, nil
}

type tokKind int

const (
	tWord tokKind = iota // identifiers, keywords, object paths, numbers
	tString
	tPunct
)

type token struct {
	kind tokKind
	text string
	off  int
}

type parser struct {
	src   string
	toks  []token
	pos   int
	depth int // of parentheses open
}

// open enters a parenthesis, as deep as maxDepth.
func (p *parser) open() error {
	p.depth++
	if p.depth > maxDepth {
		return fmt.Errorf("pattern nested deeper than %d at offset %d", maxDepth, p.toks[p.pos].off)
	}
	p.pos++
	return nil
}

// atoms counts the atoms of a normal form.
func atoms(dnf [][]Atom) int {
	n := 0
	for _, alt := range dnf {
		n += len(alt)
	}
	return n
}

// tooLarge is the error for a normal form past maxTerms or maxAtoms.
func tooLarge(terms, atoms int) error {
	if terms > maxTerms {
		return fmt.Errorf("pattern too large (more than %d alternatives)", maxTerms)
	}
	if atoms > maxAtoms {
		return fmt.Errorf("pattern too large (more than %d comparisons in its normal form)", maxAtoms)
	}
	return nil
}

func (p *parser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					b.WriteByte(s[j])
					continue
				}
				if s[j] == '\'' {
					break
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return fmt.Errorf("unterminated string at offset %d", i)
			}
			p.toks = append(p.toks, token{tString, b.String(), i})
			i = j + 1
		case c == '[' || c == ']' || c == '(' || c == ')' || c == ',':
			p.toks = append(p.toks, token{tPunct, string(c), i})
			i++
		case c == '=' || c == '!' || c == '<' || c == '>':
			j := i + 1
			if j < len(s) && s[j] == '=' {
				j++
			}
			p.toks = append(p.toks, token{tPunct, s[i:j], i})
			i = j
		default:
			j := i
			for j < len(s) {
				d := s[j]
				if d == ' ' || d == '\t' || d == '\n' || d == '\r' || d == '(' || d == ')' || d == ']' || d == ',' || d == '=' || d == '!' || d == '<' || d == '>' {
					break
				}
				if d == '[' { // list index inside a path: extensions[*]
					k := strings.IndexByte(s[j:], ']')
					if k < 0 {
						return fmt.Errorf("unterminated [ at offset %d", j)
					}
					j += k + 1
					continue
				}
				if d == '\'' { // quoted path step: hashes.'SHA-256'
					k := strings.IndexByte(s[j+1:], '\'')
					if k < 0 {
						return fmt.Errorf("unterminated string at offset %d", j)
					}
					j += k + 2
					continue
				}
				j++
			}
			if j == i {
				return fmt.Errorf("unexpected character at offset %d", i)
			}
			p.toks = append(p.toks, token{tWord, s[i:j], i})
			i = j
		}
	}
	return nil
}

func (p *parser) peek() (token, bool) {
	if p.pos >= len(p.toks) {
		return token{}, false
	}
	return p.toks[p.pos], true
}

func (p *parser) isWord(w string) bool {
	t, ok := p.peek()
	return ok && t.kind == tWord && strings.EqualFold(t.text, w)
}

func (p *parser) isPunct(w string) bool {
	t, ok := p.peek()
	return ok && t.kind == tPunct && t.text == w
}

func (p *parser) expect(w string) error {
	if !p.isPunct(w) {
		if t, ok := p.peek(); ok {
			return fmt.Errorf("expected %q at offset %d", w, t.off)
		}
		return fmt.Errorf("expected %q at end of pattern", w)
	}
	p.pos++
	return nil
}

// pattern: obs ((OR|AND|FOLLOWEDBY) obs)*
func (p *parser) pattern() ([][]Atom, error) {
	out, err := p.observation()
	if err != nil {
		return nil, err
	}
	for {
		switch {
		case p.isWord("OR"):
			p.pos++
			r, err := p.observation()
			if err != nil {
				return nil, err
			}
			out = append(out, r...)
			if err := tooLarge(len(out), atoms(out)); err != nil {
				return nil, err
			}
		case p.isWord("AND"):
			return nil, fmt.Errorf("AND between observations (offset %d) needs correlation across events: unsupported", p.toks[p.pos].off)
		case p.isWord("FOLLOWEDBY"):
			return nil, fmt.Errorf("FOLLOWEDBY (offset %d) is unsupported", p.toks[p.pos].off)
		default:
			return out, nil
		}
	}
}

func (p *parser) observation() ([][]Atom, error) {
	var out [][]Atom
	var err error
	switch {
	case p.isPunct("("):
		if err := p.open(); err != nil {
			return nil, err
		}
		if out, err = p.pattern(); err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		p.depth--
	case p.isPunct("["):
		p.pos++
		if out, err = p.compOr(); err != nil {
			return nil, err
		}
		if err := p.expect("]"); err != nil {
			return nil, err
		}
	default:
		if t, ok := p.peek(); ok {
			return nil, fmt.Errorf("expected [ or ( at offset %d", t.off)
		}
		return nil, fmt.Errorf("empty pattern")
	}
	for _, q := range []string{"WITHIN", "REPEATS", "START", "STOP"} {
		if p.isWord(q) {
			return nil, fmt.Errorf("qualifier %s (offset %d) is unsupported", q, p.toks[p.pos].off)
		}
	}
	return out, nil
}

func (p *parser) compOr() ([][]Atom, error) {
	out, err := p.compAnd()
	if err != nil {
		return nil, err
	}
	for p.isWord("OR") {
		p.pos++
		r, err := p.compAnd()
		if err != nil {
			return nil, err
		}
		out = append(out, r...)
		if err := tooLarge(len(out), atoms(out)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (p *parser) compAnd() ([][]Atom, error) {
	out, err := p.compTerm()
	if err != nil {
		return nil, err
	}
	for p.isWord("AND") {
		p.pos++
		r, err := p.compTerm()
		if err != nil {
			return nil, err
		}
		if err := tooLarge(len(out)*len(r), len(r)*atoms(out)+len(out)*atoms(r)); err != nil {
			return nil, err
		}
		var prod [][]Atom
		for _, a := range out {
			for _, b := range r {
				c := append(append([]Atom(nil), a...), b...)
				prod = append(prod, c)
			}
		}
		out = prod
	}
	return out, nil
}

func (p *parser) compTerm() ([][]Atom, error) {
	if p.isPunct("(") {
		if err := p.open(); err != nil {
			return nil, err
		}
		out, err := p.compOr()
		if err != nil {
			return nil, err
		}
		p.depth--
		return out, p.expect(")")
	}
	t, ok := p.peek()
	if !ok || t.kind != tWord {
		if ok {
			return nil, fmt.Errorf("expected an object path at offset %d", t.off)
		}
		return nil, fmt.Errorf("expected an object path at end of pattern")
	}
	p.pos++
	typ, err := pathType(t.text)
	if err != nil {
		return nil, fmt.Errorf("%v (offset %d)", err, t.off)
	}
	if p.isWord("NOT") {
		return nil, fmt.Errorf("NOT (offset %d) is unsupported", p.toks[p.pos].off)
	}
	op, ok := p.peek()
	if !ok {
		return nil, fmt.Errorf("expected an operator after offset %d", t.off)
	}
	p.pos++
	var values []string
	switch {
	case op.kind == tPunct && op.text == "=":
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		values = []string{v}
	case op.kind == tWord && strings.EqualFold(op.text, "ISSUBSET"):
		if typ != feeds.TypeIP {
			return nil, fmt.Errorf("ISSUBSET (offset %d) is unsupported but on addresses", op.off)
		}
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		values = []string{v}
	case op.kind == tWord && strings.EqualFold(op.text, "IN"):
		if err := p.expect("("); err != nil {
			return nil, err
		}
		for {
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			values = append(values, v)
			if p.isPunct(",") {
				p.pos++
				continue
			}
			break
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("operator %s at offset %d is unsupported (=, IN, ISSUBSET)", cmp.Or(known(op.text, stixOperators), "?"), op.off)
	}
	var out [][]Atom
	for _, v := range values {
		n, err := feeds.Normalize(typ, v)
		if err != nil {
			return nil, fmt.Errorf("value after offset %d: %v", t.off, err)
		}
		out = append(out, []Atom{{Type: typ, Value: n}})
	}
	return out, nil
}

func (p *parser) value() (string, error) {
	t, ok := p.peek()
	if !ok {
		return "", fmt.Errorf("expected a value at end of pattern")
	}
	p.pos++
	switch t.kind {
	case tString:
		return t.text, nil
	case tWord:
		if t.text[0] >= '0' && t.text[0] <= '9' {
			return t.text, nil
		}
	}
	return "", fmt.Errorf("unsupported value at offset %d", t.off)
}

// pathType maps an object path to an indicator type.
func pathType(path string) (feeds.Type, error) {
	obj, prop, ok := strings.Cut(path, ":")
	if !ok {
		return "", fmt.Errorf("bad object path")
	}
	switch obj {
	case "ipv4-addr", "ipv6-addr":
		if prop == "value" {
			return feeds.TypeIP, nil
		}
	case "domain-name":
		if prop == "value" {
			return feeds.TypeDomain, nil
		}
	case "url":
		if prop == "value" {
			return feeds.TypeURL, nil
		}
	case "file", "artifact":
		if alg, ok := strings.CutPrefix(prop, "hashes."); ok {
			alg = strings.ToUpper(strings.Trim(alg, "'"))
			switch strings.ReplaceAll(alg, "-", "") {
			case "MD5":
				return feeds.TypeMD5, nil
			case "SHA1":
				return feeds.TypeSHA1, nil
			case "SHA256":
				return feeds.TypeSHA256, nil
			case "SHA512":
				return feeds.TypeSHA512, nil
			}
			return "", fmt.Errorf("hash algorithm is unsupported (MD5, SHA-1, SHA-256, SHA-512)")
		}
		if obj == "file" && prop == "name" {
			return feeds.TypeFileName, nil
		}
	case "network-traffic":
		switch prop {
		case "dst_ref.value", "src_ref.value":
			return feeds.TypeIP, nil
		case "dst_port", "src_port":
			return feeds.TypePort, nil
		}
	}
	if k := known(obj, stixObjects); k != "" {
		return "", fmt.Errorf("object path on %s is unsupported", k)
	}
	return "", fmt.Errorf("object path is unsupported")
}

// stixOperators and stixObjects are the STIX 2.1 words an error may name.
var (
	stixOperators = []string{"!=", "<", "<=", ">", ">=", "LIKE", "MATCHES", "ISSUPERSET", "EXISTS"}
	stixObjects   = []string{"artifact", "autonomous-system", "directory", "domain-name", "email-addr", "email-message",
		"file", "ipv4-addr", "ipv6-addr", "mac-addr", "mutex", "network-traffic", "process", "software", "url",
		"user-account", "windows-registry-key", "x509-certificate"}
)

// known returns w when it is one of words (case-insensitive), else "": an
// error names a word of STIX, never other content.
func known(w string, words []string) string {
	for _, k := range words {
		if strings.EqualFold(w, k) {
			return k
		}
	}
	return ""
}
