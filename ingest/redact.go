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
	// kv: the keyword starts a key (password, token): the rule applies
	// only where the key is followed by = or : or is a -flag.
	kv bool
}{
	// Authorization: Bearer x, Proxy-Authorization: Basic x, "authorization=x".
	{"authorization", regexp.MustCompile(`(?i)(authorization\s*[:=]\s*)(?:(?:bearer|basic|token|digest|negotiate)\s+)?[^\s"',;]+`), "${1}" + Redacted, false},
	// A bearer token anywhere ("curl -H 'Bearer x'").
	{"bearer", regexp.MustCompile(`(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*`), "${1}" + Redacted, false},
	// key=value and key: value pairs (quoted as in JSON or not), and
	// -key value flags (--password x, --api-token x).
	{"pass", regexp.MustCompile(`(?i)((?:password|passwd)["']?\s*[=:]\s*["']?|-(?:password|passwd|pass)\s+)[^\s&"',;]+`), "${1}" + Redacted, true},
	{"pwd", regexp.MustCompile(`(?i)(\bpwd["']?\s*[=:]\s*["']?|-pwd\s+)[^\s&"',;]+`), "${1}" + Redacted, true},
	{"token", regexp.MustCompile(`(?i)(token["']?\s*[=:]\s*["']?|-token\s+)[^\s&"',;]+`), "${1}" + Redacted, true},
	{"secret", regexp.MustCompile(`(?i)(secret["']?\s*[=:]\s*["']?|-secret\s+)[^\s&"',;]+`), "${1}" + Redacted, true},
	// User information in a URL: scheme://user:password@host.
	{"://", regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)[^/\s:@]*:[^/\s@]*@`), "${1}" + Redacted + "@", false},
	// Vigil's own tokens, wherever they appear.
	{apiTokenPrefix, regexp.MustCompile(apiTokenPrefix + `[A-Za-z0-9_\-]{8,}`), apiTokenPrefix + Redacted, false},
	{enrollTokenPrefix, regexp.MustCompile(enrollTokenPrefix + `[A-Za-z0-9_\-]{8,}`), enrollTokenPrefix + Redacted, false},
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
// whose keyword s holds, ASCII case-insensitively, where the rule could
// match. It looks up each byte in a table: this is the cost every string
// field pays.
func keywords(s string) uint32 {
	var set uint32
	for i := 0; i < len(s); i++ {
		rules := firstByte[s[i]]
		if rules == 0 {
			continue
		}
		for j, b := range builtinRules {
			if rules&(1<<j) == 0 || set&(1<<j) != 0 || !hasPrefixFold(s[i:], b.keyword) {
				continue
			}
			switch {
			case b.kv && !isKey(s, i, len(b.keyword)):
				continue
			case b.keyword == "://" && strings.IndexByte(s[i:], '@') < 0:
				continue
			}
			set |= 1 << j
		}
	}
	return set
}

// firstByte maps a byte to the built-in rules whose keyword starts with
// it, in either case.
var firstByte = func() (t [256]uint32) {
	for j, b := range builtinRules {
		c := b.keyword[0]
		t[c] |= 1 << j
		if c >= 'a' && c <= 'z' {
			t[c-'a'+'A'] |= 1 << j
		}
	}
	return t
}()

// isKey reports whether the keyword at s[i:i+n] starts a key that a
// kv rule redacts the value of: it is a -flag (preceded by '-'), or the
// word it starts (letters, '_' and '-' on) is followed by = or :, after an
// optional quote and spaces. "Failed password for root" is not.
func isKey(s string, i, n int) bool {
	if i > 0 && s[i-1] == '-' {
		return true
	}
	j := i + n
	for j < len(s) && (s[j]|0x20 >= 'a' && s[j]|0x20 <= 'z' || s[j] == '_' || s[j] == '-') {
		j++
	}
	if j < len(s) && (s[j] == '"' || s[j] == '\'') {
		j++
	}
	for j < len(s) && s[j] == ' ' {
		j++
	}
	return j < len(s) && (s[j] == '=' || s[j] == ':')
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
