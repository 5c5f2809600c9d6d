package hunt

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Value kinds in a column's dictionary.
const (
	kString byte = 's'
	kNumber byte = 'n'
	kBool   byte = 'b'
	kList   byte = 'l' // the text is a JSON array of strings
)

// elems returns the elements of a dictionary value: one, or a list's.
func elems(kind byte, text string) []string {
	if kind != kList {
		return []string{text}
	}
	var l []string
	if json.Unmarshal([]byte(text), &l) != nil {
		return []string{text}
	}
	return l
}

// holds reports whether c holds for a present value (kind, text). The
// caller decides for absent values (false for every comparison). A list
// holds when one of its elements does; != holds when none matches.
func (c *Cmp) holds(kind byte, text string) bool {
	if c.exists {
		return c.Op == "="
	}
	if kind != kList {
		return c.one(text) != (c.Op == "!=")
	}
	if c.Op == "!=" {
		for _, e := range elems(kind, text) {
			if c.one(e) {
				return false
			}
		}
		return true
	}
	for _, e := range elems(kind, text) {
		if c.one(e) {
			return true
		}
	}
	return false
}

func (c *Cmp) one(s string) bool {
	switch c.Op {
	case "=", "!=":
		if c.prefix.IsValid() {
			a, err := netip.ParseAddr(s)
			return err == nil && c.prefix.Contains(a.Unmap())
		}
		return c.glob.match(s)
	case "regex":
		return c.re.MatchString(s)
	}
	var cmp int
	if c.isNum {
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return false
		}
		switch {
		case n < c.num:
			cmp = -1
		case n > c.num:
			cmp = 1
		}
	} else {
		cmp = strings.Compare(s, c.Value)
	}
	switch c.Op {
	case "<":
		return cmp < 0
	case "<=":
		return cmp <= 0
	case ">":
		return cmp > 0
	case ">=":
		return cmp >= 0
	}
	return false
}

// timeHolds reports whether a _time comparison holds for t (nanoseconds).
func (c *Cmp) timeHolds(t int64) bool {
	switch c.Op {
	case "<":
		return t < c.when
	case "<=":
		return t <= c.when
	case ">":
		return t > c.when
	case ">=":
		return t >= c.when
	}
	return false
}

// glob is a case-insensitive pattern where * matches any run of
// characters (SPL's wildcard); a value without * is an equality.
type glob struct {
	parts []string // lowercased, split at *
	star  bool
}

func newGlob(p string) *glob {
	lp := strings.ToLower(p)
	if !strings.Contains(lp, "*") {
		return &glob{parts: []string{lp}}
	}
	return &glob{parts: strings.Split(lp, "*"), star: true}
}

func (g *glob) match(s string) bool {
	if !g.star {
		return strings.EqualFold(s, g.parts[0])
	}
	s = lowerASCII(s)
	first, last := g.parts[0], g.parts[len(g.parts)-1]
	if !strings.HasPrefix(s, first) {
		return false
	}
	s = s[len(first):]
	mid := g.parts[1 : len(g.parts)-1]
	for _, m := range mid {
		i := strings.Index(s, m)
		if i < 0 {
			return false
		}
		s = s[i+len(m):]
	}
	return strings.HasSuffix(s, last)
}

// lowerASCII lowercases s, allocating only when it has upper case.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return strings.ToLower(s)
		}
		if c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
