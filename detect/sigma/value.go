package sigma

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf16"

	"go.yaml.in/yaml/v3"
)

// Limits on what one rule value may expand to, and on the values of one
// rule and of a rule set once expanded, so that a rule file cannot make
// compiling take unbounded time or memory. Real rules stay far below: the
// largest rule of the public Sigma repository compiles to 4432 values.
const (
	// maxValueVariants bounds the values one rule value gives through
	// expand (every combination of the placeholders' values), windash
	// (five dashes for each dash) and the encodings (base64offset: three).
	maxValueVariants = 4096
	// maxValueBytes bounds the bytes of those values.
	maxValueBytes = 4 << 20
	// maxRuleValues bounds the values of one rule (or filter) once
	// expanded.
	maxRuleValues = 100000
	// valueCost is what a value costs beyond its bytes, in bytes.
	valueCost = 160
)

// maxSetValueBytes bounds the values of a rule set: their bytes plus
// valueCost for each (a variable for tests).
var maxSetValueBytes = 256 << 20

// sstr is a Sigma string: literal runs and wildcards.
type sstr []globTok

// parseWildcards reads a value with the spec's escaping: `\*` and `\?`
// are literal wildcards, `\\` is one backslash, any other `\` is itself.
func parseWildcards(v string) sstr {
	var out sstr
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			out = append(out, globTok{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(v); i++ {
		ch := v[i]
		switch ch {
		case '\\':
			if i+1 < len(v) && (v[i+1] == '*' || v[i+1] == '?' || v[i+1] == '\\') {
				lit.WriteByte(v[i+1])
				i++
				continue
			}
			lit.WriteByte('\\')
		case '*':
			flush()
			if len(out) == 0 || !out[len(out)-1].star {
				out = append(out, globTok{star: true})
			}
		case '?':
			flush()
			out = append(out, globTok{one: true})
		default:
			lit.WriteByte(ch)
		}
	}
	flush()
	return out
}

func (s sstr) plain() (string, bool) {
	var b strings.Builder
	for _, t := range s {
		if t.star || t.one {
			return "", false
		}
		b.WriteString(t.lit)
	}
	return b.String(), true
}

// mapLits applies f to every literal run.
func (s sstr) mapLits(f func(string) string) sstr {
	out := make(sstr, len(s))
	for i, t := range s {
		if !t.star && !t.one {
			t.lit = f(t.lit)
		}
		out[i] = t
	}
	return out
}

// valuePreds compiles one rule value under modifiers m into predicates
// (several when a transformation expands it).
func (cp *compiler) valuePreds(v *yaml.Node, m mods) ([]pred, error) {
	raw := v.Value
	if v.Tag == "!!null" {
		if m.re || m.cidr || m.cmp != 0 || m.fieldref || len(m.transforms) > 0 || m.contains || m.startswith || m.endswith {
			return nil, errAt(v, "null cannot take modifiers")
		}
		return []pred{{op: opNull, raw: "null"}}, nil
	}
	if v.Kind != yaml.ScalarNode {
		return nil, errAt(v, "value must be a scalar")
	}
	switch {
	case m.re:
		flags := ""
		if strings.Contains(m.reFlags, "i") {
			flags += "i"
		}
		if strings.Contains(m.reFlags, "m") {
			flags += "m"
		}
		if strings.Contains(m.reFlags, "s") {
			flags += "s"
		}
		expr := raw
		if flags != "" {
			expr = "(?" + flags + ")" + raw
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, errAt(v, "invalid regular expression %q: %v", raw, unwrapRe(err))
		}
		p := pred{op: opRe, re: re, raw: raw}
		if lits, ok := regexLiterals(expr); ok {
			p.reLits = lits
		}
		if !strings.Contains(flags, "i") && !strings.Contains(raw, "(?") {
			// A case-sensitive expression: its literals as written.
			if lits, ok := regexLiteralsCased(expr); ok {
				p.reCased = lits
			}
		}
		return []pred{p}, nil
	case m.cidr:
		// cidr|expand: the placeholder's values are prefixes or addresses.
		vals := []string{raw}
		if len(m.transforms) > 0 {
			xs, err := cp.expand(raw)
			if err != nil {
				return nil, errAt(v, "%v", err)
			}
			vals = xs
		}
		var nets []netip.Prefix
		for _, x := range vals {
			p, err := netip.ParsePrefix(strings.TrimSpace(x))
			if err != nil {
				a, err2 := netip.ParseAddr(strings.TrimSpace(x))
				if err2 != nil {
					return nil, errAt(v, "invalid CIDR %q", x)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			nets = append(nets, p.Masked())
		}
		return []pred{{op: opCIDR, nets: nets, raw: raw}}, nil
	case m.cmp != 0 || m.part != partNone:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil {
			return nil, errAt(v, "%q is not a number", raw)
		}
		op := m.cmp
		if op == 0 {
			op = opNumEq
		}
		return []pred{{op: op, num: f, part: m.part, raw: raw}}, nil
	case m.fieldref:
		op := opRefEq
		switch {
		case m.contains || (m.startswith && m.endswith):
			op = opRefContains
		case m.startswith:
			op = opRefPrefix
		case m.endswith:
			op = opRefSuffix
		}
		return []pred{{op: op, cased: m.cased, raw: raw}}, nil
	}
	// Strings (numbers and booleans are compared as their text).
	vals := []sstr{nil}
	expanded := false
	for _, t := range m.transforms {
		if t == "expand" {
			xs, err := cp.expand(raw)
			if err != nil {
				return nil, errAt(v, "%v", err)
			}
			vals = vals[:0]
			for _, x := range xs {
				vals = append(vals, parseWildcards(x))
			}
			expanded = true
		}
	}
	if !expanded {
		vals[0] = parseWildcards(raw)
	}
	for _, t := range m.transforms {
		var next []sstr
		switch t {
		case "expand":
			continue
		case "windash":
			size := 0
			for _, s := range vals {
				ws, err := windash(s, maxValueVariants-len(next), maxValueBytes-size)
				if err != nil {
					return nil, errAt(v, "%v", err)
				}
				for _, w := range ws {
					size += w.size()
				}
				next = append(next, ws...)
			}
		default: // base64, base64offset, utf16le, utf16be, utf16, wide
			n, size := 0, 0
			for _, s := range vals {
				k, b := encodedSize(t, s.size())
				n, size = n+k, size+b
			}
			if n > maxValueVariants || size > maxValueBytes {
				return nil, errAt(v, "%s gives %d values of %d bytes in all, more than %d values or %d bytes", t, n, size, maxValueVariants, maxValueBytes)
			}
			for _, s := range vals {
				p, ok := s.plain()
				if !ok {
					return nil, errAt(v, "%s cannot be applied to a value with wildcards (%q)", t, raw)
				}
				for _, x := range encode(t, p) {
					next = append(next, sstr{{lit: x}})
				}
			}
		}
		vals = next
	}
	out := make([]pred, 0, len(vals))
	for _, s := range vals {
		if m.contains || m.endswith {
			s = append(sstr{{star: true}}, s...)
		}
		if m.contains || m.startswith {
			s = append(s, globTok{star: true})
		}
		if !m.cased {
			s = s.mapLits(strings.ToLower)
		}
		out = append(out, classify(s, m.cased, raw))
	}
	return out, nil
}

func unwrapRe(err error) string {
	var e *syntax.Error
	if errors.As(err, &e) {
		return string(e.Code) + " " + strconv.Quote(e.Expr)
	}
	return err.Error()
}

// classify turns a wildcard string into the cheapest predicate.
func classify(s sstr, cased bool, raw string) pred {
	// Merge adjacent stars and literal runs.
	var t sstr
	for _, x := range s {
		if x.star && len(t) > 0 && t[len(t)-1].star {
			continue
		}
		if !x.star && !x.one && len(t) > 0 && !t[len(t)-1].star && !t[len(t)-1].one {
			t[len(t)-1].lit += x.lit
			continue
		}
		t = append(t, x)
	}
	p := pred{cased: cased, raw: raw}
	isLit := func(x globTok) bool { return !x.star && !x.one }
	switch {
	case len(t) == 0:
		p.op, p.lit = opEq, ""
	case len(t) == 1 && isLit(t[0]):
		p.op, p.lit = opEq, t[0].lit
	case len(t) == 1 && t[0].star:
		p.op = opAny
	case len(t) == 2 && t[0].star && isLit(t[1]):
		p.op, p.lit = opSuffix, t[1].lit
	case len(t) == 2 && isLit(t[0]) && t[1].star:
		p.op, p.lit = opPrefix, t[0].lit
	case len(t) == 3 && t[0].star && isLit(t[1]) && t[2].star:
		p.op, p.lit = opContains, t[1].lit
	default:
		p.op, p.glob = opGlob, t
		// The longest literal run: a cheap test before the glob match.
		for _, x := range t {
			if isLit(x) && len(x.lit) > len(p.lit) {
				p.lit = x.lit
			}
		}
	}
	return p
}

var dashes = []string{"-", "/", "–", "—", "―"}

// size is the number of bytes of the string's literal runs.
func (s sstr) size() int {
	n := 0
	for _, t := range s {
		n += len(t.lit)
	}
	return n
}

// windash expands every dash or slash that starts a word (after a non-word
// character or at the start) into all five dash characters. It fails when
// that gives more than maxN values or maxBytes bytes of literals.
func windash(s sstr, maxN, maxBytes int) ([]sstr, error) {
	out := []sstr{nil}
	size := 0 // bytes of the literals of one value of out, at most
	for ti, t := range s {
		if t.star || t.one {
			for i := range out {
				out[i] = append(append(sstr(nil), out[i]...), t)
			}
			continue
		}
		// Split the literal at the dashes to permute.
		var pieces []string
		lit := t.lit
		start := 0
		for i := 0; i < len(lit); {
			d := ""
			for _, x := range dashes {
				if strings.HasPrefix(lit[i:], x) {
					d = x
					break
				}
			}
			prevWord := false
			if i > 0 {
				prevWord = isWordByte(lit[i-1])
			} else if ti > 0 {
				prevWord = true // after a wildcard: treat as mid-word unless star
				if s[ti-1].star {
					prevWord = false
				}
			}
			if d != "" && !prevWord {
				pieces = append(pieces, lit[start:i])
				i += len(d)
				start = i
				continue
			}
			i++
		}
		pieces = append(pieces, lit[start:])
		dashN := len(pieces) - 1
		n := len(out)
		for range dashN {
			if n *= len(dashes); n > maxN {
				return nil, fmt.Errorf("windash gives more than %d values (%q has %d dashes to vary)", maxN, t.lit, dashN)
			}
		}
		// A dash takes at most 3 bytes.
		if size += len(lit) + 2*dashN; n*size > maxBytes {
			return nil, fmt.Errorf("windash gives %d values of up to %d bytes, more than %d bytes in all", n, size, maxBytes)
		}
		// Every choice of dashes, the last dash varying fastest.
		variants := make([]string, 0, n/len(out))
		choice := make([]int, dashN)
		var b strings.Builder
		for range n / len(out) {
			b.Reset()
			for j, p := range pieces {
				b.WriteString(p)
				if j < dashN {
					b.WriteString(dashes[choice[j]])
				}
			}
			variants = append(variants, b.String())
			for j := dashN - 1; j >= 0; j-- {
				if choice[j]++; choice[j] < len(dashes) {
					break
				}
				choice[j] = 0
			}
		}
		next := make([]sstr, 0, n)
		for _, o := range out {
			for _, v := range variants {
				next = append(next, append(append(sstr(nil), o...), globTok{lit: v}))
			}
		}
		out = next
	}
	return out, nil
}

func isWordByte(b byte) bool {
	return b == '_' || ('0' <= b && b <= '9') || ('a' <= b && b <= 'z') || ('A' <= b && b <= 'Z') || b >= 0x80
}

func utf16Bytes(s string, be bool) string {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 0, 2*len(u))
	for _, x := range u {
		if be {
			b = append(b, byte(x>>8), byte(x))
		} else {
			b = append(b, byte(x), byte(x>>8))
		}
	}
	return string(b)
}

// encodedSize returns how many values encode(t, p) gives for a value of n
// bytes, and how many bytes they take, at most.
func encodedSize(t string, n int) (int, int) {
	b64 := func(n int) int { return (n + 2) / 3 * 4 }
	switch t {
	case "base64":
		return 1, b64(n)
	case "base64offset":
		return 3, 3 * b64(n+2)
	case "utf16":
		return 1, 2*n + 2
	}
	return 1, 2 * n // utf16le, utf16be, wide: at most two bytes per byte
}

// encode applies an encoding modifier; base64offset yields three variants.
func encode(t, p string) []string {
	switch t {
	case "base64":
		return []string{base64.StdEncoding.EncodeToString([]byte(p))}
	case "base64offset":
		starts := [3]int{0, 2, 3}
		ends := [3]int{0, -3, -2}
		var out []string
		for i := 0; i < 3; i++ {
			enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat(" ", i) + p))
			e := ends[(len(p)+i)%3]
			end := len(enc)
			if e != 0 {
				end += e
			}
			if starts[i] < end {
				out = append(out, enc[starts[i]:end])
			}
		}
		return out
	case "utf16le", "wide":
		return []string{utf16Bytes(p, false)}
	case "utf16be":
		return []string{utf16Bytes(p, true)}
	case "utf16":
		return []string{"\xff\xfe" + utf16Bytes(p, false)}
	}
	return []string{p}
}

// expand replaces %name% placeholders with the configured values (every
// combination when several placeholders have several values). `\%` is a
// literal percent sign. The combinations are bounded (maxValueVariants,
// maxValueBytes) before they are built.
func (cp *compiler) expand(raw string) ([]string, error) {
	// The value as literal runs each followed by a placeholder's values,
	// then a last run.
	type part struct {
		lit  string
		vals []string
	}
	var parts []part
	var lit strings.Builder
	n := 1
	for i := 0; i < len(raw); i++ {
		ch := raw[i]
		if ch == '\\' && i+1 < len(raw) && raw[i+1] == '%' {
			lit.WriteByte('%')
			i++
			continue
		}
		if ch == '%' {
			end := strings.IndexByte(raw[i+1:], '%')
			if end > 0 {
				name := raw[i+1 : i+1+end]
				vals, ok := cp.cfg.Placeholders[name]
				if !ok {
					return nil, fmt.Errorf("unresolved placeholder %%%s%% (define it under placeholders in the mapping config)", name)
				}
				if len(vals) == 0 {
					cp.unvalued = append(cp.unvalued, name)
				}
				if n*len(vals) > maxValueVariants {
					return nil, fmt.Errorf("expand gives more than %d values (placeholder %%%s%% has %d values, the placeholders before it %d combinations)", maxValueVariants, name, len(vals), n)
				}
				n *= len(vals)
				parts = append(parts, part{lit: lit.String(), vals: vals})
				lit.Reset()
				i += end + 1
				continue
			}
		}
		lit.WriteByte(ch)
	}
	tail := lit.String()
	if n == 0 {
		return nil, nil
	}
	// Each value of a placeholder is in n/len(vals) of the combinations.
	size := n * len(tail)
	for _, p := range parts {
		size += n * len(p.lit)
		for _, v := range p.vals {
			size += n / len(p.vals) * len(v)
		}
	}
	if size > maxValueBytes {
		return nil, fmt.Errorf("expand gives %d values of %d bytes in all, more than %d", n, size, maxValueBytes)
	}
	outs := []string{""}
	for _, p := range parts {
		next := make([]string, 0, len(outs)*len(p.vals))
		for _, o := range outs {
			for _, v := range p.vals {
				next = append(next, o+p.lit+v)
			}
		}
		outs = next
	}
	if tail != "" {
		for j := range outs {
			outs[j] += tail
		}
	}
	return outs, nil
}

// regexLiterals returns literals (lowercased, two bytes or more) one of
// which any match of the expression contains, or false when none is known.
func regexLiterals(expr string) ([]string, bool) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, false
	}
	return reLits(re, true)
}

// regexLiteralsCased is regexLiterals without folding case: for an
// expression without the i flag, every match holds one of them as written.
func regexLiteralsCased(expr string) ([]string, bool) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, false
	}
	return reLits(re, false)
}

const maxReAlts = 64

// reFinite returns every string re can match when that set is small.
func reFinite(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		return []string{string(re.Rune)}, true
	case syntax.OpCharClass:
		var out []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if len(out) >= 8 {
					return nil, false
				}
				out = append(out, string(r))
			}
		}
		return out, len(out) > 0
	case syntax.OpCapture:
		return reFinite(re.Sub[0])
	case syntax.OpAlternate:
		var out []string
		for _, s := range re.Sub {
			l, ok := reFinite(s)
			if !ok || len(out)+len(l) > maxReAlts {
				return nil, false
			}
			out = append(out, l...)
		}
		return out, true
	case syntax.OpConcat:
		out := []string{""}
		for _, s := range re.Sub {
			l, ok := reFinite(s)
			if !ok || len(out)*len(l) > maxReAlts {
				return nil, false
			}
			out = product(out, l)
		}
		return out, true
	}
	return nil, false
}

func product(a, b []string) []string {
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x+y)
		}
	}
	return out
}

func minLen(ls []string) int {
	m := 1 << 30
	for _, l := range ls {
		m = min(m, len(l))
	}
	return m
}

func lowerAll(ls []string) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = strings.ToLower(l)
	}
	return out
}

func reLits(re *syntax.Regexp, fold bool) ([]string, bool) {
	caseOf := func(ls []string) []string {
		if fold {
			return lowerAll(ls)
		}
		return ls
	}
	if l, ok := reFinite(re); ok {
		if minLen(l) >= 2 {
			return caseOf(l), true
		}
		return nil, false
	}
	switch re.Op {
	case syntax.OpCapture, syntax.OpPlus:
		return reLits(re.Sub[0], fold)
	case syntax.OpRepeat:
		if re.Min < 1 {
			return nil, false
		}
		return reLits(re.Sub[0], fold)
	case syntax.OpAlternate:
		var out []string
		for _, s := range re.Sub {
			l, ok := reLits(s, fold)
			if !ok {
				return nil, false
			}
			out = append(out, l...)
		}
		return out, true
	case syntax.OpConcat:
		var best []string
		consider := func(ls []string) {
			if len(ls) == 0 || minLen(ls) < 2 {
				return
			}
			if best == nil || minLen(ls) > minLen(best) || (minLen(ls) == minLen(best) && len(ls) < len(best)) {
				best = caseOf(ls)
			}
		}
		// Runs of consecutive children with small finite sets.
		run := []string{""}
		for _, s := range re.Sub {
			if l, ok := reFinite(s); ok && len(run)*len(l) <= maxReAlts {
				run = product(run, l)
				continue
			}
			consider(run)
			run = []string{""}
			if l, ok := reLits(s, fold); ok {
				consider(l)
			}
		}
		consider(run)
		return best, best != nil
	}
	return nil, false
}
