package ingest

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/vigil-iot/vigil"
)

// Redacted replaces a credential in an event field.
const Redacted = "[REDACTED]"

// Token prefixes of Vigil's own secrets: API tokens (auth.TokenPrefix) and
// enrollment tokens (enroll.TokenPrefix). Written out here because ingest
// imports neither package; a test checks that they agree.
const (
	apiTokenPrefix    = "vgl_"
	enrollTokenPrefix = "vge_"
)

// builtinRules are the credentials every Redactor removes. Each keeps
// what names the secret (the header, the key, the scheme) and replaces
// the secret itself. Their keywords (lowercase) are the cheap pre-check:
// a value holding none of them is not searched.
var builtinRules = []struct {
	keyword string
	re      *regexp.Regexp
	repl    string
}{
	// Authorization: Bearer x, Proxy-Authorization: Basic x, "authorization=x".
	{"authorization", regexp.MustCompile(`(?i)(authorization\s*[:=]\s*)(?:(?:bearer|basic|token|digest|negotiate)\s+)?[^\s"',;]+`), "${1}" + Redacted},
	// A bearer token anywhere ("curl -H 'Bearer x'").
	{"bearer", regexp.MustCompile(`(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*`), "${1}" + Redacted},
	// key=value and key: value pairs (quoted as in JSON or not), and
	// -key value flags (--password x, --api-token x).
	{"pass", regexp.MustCompile(`(?i)((?:password|passwd)["']?\s*[=:]\s*["']?|-(?:password|passwd|pass)\s+)[^\s&"',;]+`), "${1}" + Redacted},
	{"pwd", regexp.MustCompile(`(?i)(\bpwd["']?\s*[=:]\s*["']?|-pwd\s+)[^\s&"',;]+`), "${1}" + Redacted},
	{"token", regexp.MustCompile(`(?i)(token["']?\s*[=:]\s*["']?|-token\s+)[^\s&"',;]+`), "${1}" + Redacted},
	{"secret", regexp.MustCompile(`(?i)(secret["']?\s*[=:]\s*["']?|-secret\s+)[^\s&"',;]+`), "${1}" + Redacted},
	// User information in a URL: scheme://user:password@host.
	{"://", regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)[^/\s:@]*:[^/\s@]*@`), "${1}" + Redacted + "@"},
	// Vigil's own tokens, wherever they appear.
	{apiTokenPrefix, regexp.MustCompile(apiTokenPrefix + `[A-Za-z0-9_\-]{8,}`), apiTokenPrefix + Redacted},
	{enrollTokenPrefix, regexp.MustCompile(enrollTokenPrefix + `[A-Za-z0-9_\-]{8,}`), enrollTokenPrefix + Redacted},
}

// Redactor removes credentials from the string fields of events before
// they are published: Authorization headers, bearer tokens, password=,
// passwd=, pwd=, token= and secret= values (and the same as command-line
// flags), URL user information and Vigil's API and enrollment tokens,
// plus the operator's extra patterns. A value is searched by a rule only
// when it holds the rule's keyword (its literal prefix, for an extra
// pattern), so events without credentials cost a scan of their strings
// and nothing more. The zero Redactor has the built-in rules only; a nil
// *Redactor redacts nothing. Safe for concurrent use.
type Redactor struct {
	extra []extraRule
}

type extraRule struct {
	re     *regexp.Regexp
	prefix string // the pattern's literal prefix: the value must hold it
}

// NewRedactor returns a Redactor with the built-in rules and the extra
// patterns (Go regular expressions; every match is replaced by Redacted).
func NewRedactor(extra []string) (*Redactor, error) {
	r := &Redactor{}
	for i, p := range extra {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("cannot compile redaction pattern %d: %w", i+1, err)
		}
		if re.MatchString("") {
			return nil, fmt.Errorf("cannot use redaction pattern %d (%q): it matches the empty string", i+1, p)
		}
		prefix, _ := re.LiteralPrefix()
		r.extra = append(r.extra, extraRule{re: re, prefix: prefix})
	}
	return r, nil
}

// Events redacts the string fields of every event in place and returns how
// many events it changed.
func (r *Redactor) Events(events []vigil.Event) int {
	if r == nil {
		return 0
	}
	n := 0
	for i := range events {
		if r.Event(&events[i]) {
			n++
		}
	}
	return n
}

// Event redacts the string fields of e in place (strings and lists of
// strings; a list is copied before it changes) and reports whether
// anything changed.
func (r *Redactor) Event(e *vigil.Event) bool {
	if r == nil {
		return false
	}
	changed := false
	for k, v := range e.Fields {
		switch x := v.(type) {
		case string:
			if s, ok := r.String(x); ok {
				e.Fields[k] = s
				changed = true
			}
		case []string:
			var out []string
			for j, s := range x {
				if red, ok := r.String(s); ok {
					if out == nil {
						out = append([]string(nil), x...)
					}
					out[j] = red
				}
			}
			if out != nil {
				e.Fields[k] = out
				changed = true
			}
		}
	}
	return changed
}

// String returns s with its credentials replaced and whether it changed.
func (r *Redactor) String(s string) (string, bool) {
	out := s
	if kw := keywords(s); kw != 0 {
		for i, b := range builtinRules {
			if kw&(1<<i) != 0 {
				out = b.re.ReplaceAllString(out, b.repl)
			}
		}
	}
	if r != nil {
		for _, x := range r.extra {
			if x.prefix == "" || strings.Contains(out, x.prefix) {
				out = x.re.ReplaceAllLiteralString(out, Redacted)
			}
		}
	}
	return out, out != s
}

// keywords returns the set of built-in rules (bit i for builtinRules[i])
// whose keyword s holds, ASCII case-insensitively. It looks at each byte
// once or twice: this is the cost every string field pays.
func keywords(s string) uint32 {
	var set uint32
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		switch c {
		case 'a', 'b', 'p', 't', 's', ':', 'v':
		default:
			continue
		}
		for j, b := range builtinRules {
			if set&(1<<j) == 0 && b.keyword[0] == c && hasPrefixFold(s[i:], b.keyword) {
				set |= 1 << j
			}
		}
	}
	return set
}

// hasPrefixFold reports whether s starts with the lowercase ASCII prefix,
// ignoring the case of s.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}
