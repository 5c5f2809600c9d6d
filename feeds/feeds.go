package feeds

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Type is the kind of observable an indicator names.
type Type string

// Indicator types. TypeIP values are an address ("192.0.2.7") or a prefix
// ("198.51.100.0/24"); domains are lower case without a trailing dot; hashes
// are lower-case hex.
const (
	TypeIP       Type = "ip"
	TypeDomain   Type = "domain"
	TypeURL      Type = "url"
	TypeMD5      Type = "md5"
	TypeSHA1     Type = "sha1"
	TypeSHA256   Type = "sha256"
	TypeSHA512   Type = "sha512"
	TypeFileName Type = "file-name" // only as an extra condition (Cond)
	TypePort     Type = "port"      // only as an extra condition (Cond)
)

// Cond is one more condition an event must meet for an indicator to match,
// from a STIX AND ("[file:hashes.MD5 = '..' AND file:name = 'x.exe']").
type Cond struct {
	Type  Type   `json:"type"`
	Value string `json:"value"`
}

// Indicator is one observable value to look for in events.
type Indicator struct {
	// ID identifies the indicator in its source: a STIX indicator id, a
	// MISP attribute uuid, "<feed>:<line>" for lists. One STIX indicator
	// whose pattern has an OR yields several Indicators with the same ID.
	ID    string `json:"id"`
	Feed  string `json:"feed"`
	Type  Type   `json:"type"`
	Value string `json:"value"`
	// And are further conditions on the same event (STIX AND).
	And []Cond `json:"and,omitempty"`

	Name        string   `json:"name,omitempty"`
	Description string   `json:"description,omitempty"`
	Pattern     string   `json:"pattern,omitempty"`
	Labels      []string `json:"labels,omitempty"`
	// Confidence is 0..100 (STIX confidence scale).
	Confidence int       `json:"confidence"`
	ValidFrom  time.Time `json:"valid_from,omitzero"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
}

// Valid reports whether the indicator is in force at t.
func (in *Indicator) Valid(t time.Time) bool {
	if !in.ValidFrom.IsZero() && t.Before(in.ValidFrom) {
		return false
	}
	return in.ValidUntil.IsZero() || t.Before(in.ValidUntil)
}

// Feed is the configuration of one source of indicators.
type Feed struct {
	Name string `json:"name"`
	// URL or file path the feed is read from.
	Source string `json:"source"`
	// Format is stix, misp, misp-feed, list, csv or taxii; empty means
	// detect from the content.
	Format string `json:"format,omitempty"`
	// Confidence is given to indicators that carry none (0 → 50).
	Confidence int `json:"confidence,omitempty"`
	// Expiry bounds the validity of indicators that carry no valid_until:
	// they expire Expiry after their valid_from (or after the import).
	Expiry time.Duration `json:"expiry,omitempty"`
	// Refresh is how often a scheduled refresh re-imports the feed (0: never).
	Refresh time.Duration `json:"refresh,omitempty"`
	// CSV column mapping, for Format csv.
	CSV *CSVMapping `json:"csv,omitempty"`
	// Auth for URLs (TAXII or plain HTTP): a bearer token or basic auth.
	Token    string `json:"token,omitempty"`
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	// Collection is the TAXII collection id or title (Format taxii).
	Collection string `json:"collection,omitempty"`
}

// CSVMapping says which CSV columns hold what. Columns are named by header
// or by 0-based number ("2"). Type, when empty, is inferred per value.
type CSVMapping struct {
	Value      string `json:"value"`
	Type       string `json:"type,omitempty"`
	Confidence string `json:"confidence,omitempty"`
	Name       string `json:"name,omitempty"`
	Comment    rune   `json:"comment,omitempty"`
	Delimiter  rune   `json:"delimiter,omitempty"`
	// NoHeader means the first line is data and columns are numbers.
	NoHeader bool `json:"no_header,omitempty"`
}

// Result tells what one import did.
type Result struct {
	Imported int `json:"imported"`
	Rejected int `json:"rejected"`
	// Skipped counts objects that are not indicators (ATT&CK
	// attack-patterns, MISP link/text attributes) and were ignored.
	Skipped int `json:"skipped"`
	// Errors says, for each rejected item, what and where (bounded).
	Errors []string `json:"errors,omitempty"`
}

// safeID is the form of an identifier a rejection may name: a UUID, a
// STIX id (type--uuid), a CVE id.
var safeID = regexp.MustCompile(`^(?:[a-z][a-z0-9-]{0,40}--)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$|^CVE-[0-9]{4}-[0-9]{4,7}$`)

// Named returns " (id)" when id has the form of an identifier (a UUID, a
// STIX id, a CVE id), else "": a rejection names where (position, and such
// an id) and why, never content it could not parse, which may be a secret
// of a file that is no feed at all.
func Named(id string) string {
	if safeID.MatchString(id) {
		return " (" + id + ")"
	}
	return ""
}

// MaxErrors bounds Result.Errors.
const MaxErrors = 100

// Reject counts one rejected item and records why.
func (r *Result) Reject(format string, args ...any) {
	r.Rejected++
	if len(r.Errors) < MaxErrors {
		r.Errors = append(r.Errors, fmt.Sprintf(format, args...))
	}
}

// Add merges another result into r.
func (r *Result) Add(o Result) {
	r.Imported += o.Imported
	r.Skipped += o.Skipped
	r.Rejected += o.Rejected
	for _, e := range o.Errors {
		if len(r.Errors) < MaxErrors {
			r.Errors = append(r.Errors, e)
		}
	}
}

// Apply fills what the feed configuration gives to an indicator: its feed
// name, the default confidence and the expiry. now is the import time.
func (f *Feed) Apply(in *Indicator, now time.Time) {
	in.Feed = f.Name
	if in.Confidence == 0 {
		in.Confidence = f.Confidence
		if in.Confidence == 0 {
			in.Confidence = 50
		}
	}
	if f.Expiry > 0 && in.ValidUntil.IsZero() {
		base := in.ValidFrom
		if base.IsZero() {
			base = now
		}
		in.ValidUntil = base.Add(f.Expiry)
	}
}

// Normalize checks and canonicalizes a value of type t: addresses and
// prefixes parsed (prefixes masked), domains lower-cased without a trailing
// dot, hashes lower-cased and length-checked, ports in decimal (0..65535).
func Normalize(t Type, v string) (string, error) {
	v = strings.TrimSpace(v)
	switch t {
	case TypeIP:
		if strings.Contains(v, "/") {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				return "", errors.New("bad prefix")
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 { // ::ffff:192.0.2.0/120 is 192.0.2.0/24
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			p = p.Masked()
			if p.Addr().Is4() && p.Bits() == 32 || p.Addr().Is6() && p.Bits() == 128 {
				return p.Addr().String(), nil
			}
			return p.String(), nil
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return "", errors.New("bad address")
		}
		return a.Unmap().WithZone("").String(), nil
	case TypeDomain:
		d := strings.TrimSuffix(strings.ToLower(v), ".")
		tld := d[strings.LastIndexByte(d, '.')+1:]
		if d == "" || !utf8.ValidString(v) || strings.ContainsAny(d, "/:@") || strings.ContainsFunc(d, isSpaceOrControl) ||
			tld == "" || strings.Trim(tld, "0123456789") == "" {
			return "", errors.New("bad domain")
		}
		return d, nil
	case TypeURL:
		return NormalizeURL(v)
	case TypeMD5, TypeSHA1, TypeSHA256, TypeSHA512:
		want := map[Type]int{TypeMD5: 32, TypeSHA1: 40, TypeSHA256: 64, TypeSHA512: 128}[t]
		h := strings.ToLower(v)
		if len(h) != want || strings.Trim(h, "0123456789abcdef") != "" {
			return "", fmt.Errorf("bad %s hash: want %d hex digits", t, want)
		}
		return h, nil
	case TypePort:
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil {
			return "", errors.New("bad port: want 0..65535")
		}
		return strconv.FormatUint(n, 10), nil
	case TypeFileName:
		if v == "" {
			return "", fmt.Errorf("empty %s", t)
		}
		return v, nil
	}
	return "", errors.New("unknown indicator type")
}

// NormalizeURL lower-cases the scheme and host of a URL and drops a
// default port and a fragment, so "HTTP://Evil.example:80/a#x" and
// "http://evil.example/a" compare equal. What it returns, it returns
// unchanged; a URL that is not UTF-8 is an error.
func NormalizeURL(v string) (string, error) {
	v = strings.TrimSpace(v)
	scheme, rest, ok := strings.Cut(v, "://")
	if !ok || scheme == "" || rest == "" || !utf8.ValidString(v) {
		return "", errors.New("bad url")
	}
	scheme = strings.ToLower(scheme)
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = strings.TrimRightFunc(rest[:i], unicode.IsSpace)
	}
	host, path := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		host, path = rest[:i], rest[i:]
	}
	host = strings.ToLower(host)
	port := ""
	switch scheme {
	case "http":
		port = ":80"
	case "https":
		port = ":443"
	}
	for port != "" && strings.HasSuffix(host, port) { // all of them: "a:80:80" once gave "a:80"
		host = host[:len(host)-len(port)]
	}
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// Guess infers the type of a bare value: an address or prefix, a URL, a
// hash by its length, or a domain. ok is false when nothing fits.
func Guess(v string) (Type, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", false
	}
	if strings.Contains(v, "://") {
		return TypeURL, true
	}
	if _, err := netip.ParseAddr(v); err == nil {
		return TypeIP, true
	}
	if _, err := netip.ParsePrefix(v); err == nil {
		return TypeIP, true
	}
	if strings.Trim(strings.ToLower(v), "0123456789abcdef") == "" {
		switch len(v) {
		case 32:
			return TypeMD5, true
		case 40:
			return TypeSHA1, true
		case 64:
			return TypeSHA256, true
		case 128:
			return TypeSHA512, true
		}
	}
	if strings.Contains(v, ".") {
		if _, err := Normalize(TypeDomain, v); err == nil {
			return TypeDomain, true
		}
	}
	return "", false
}

func isSpaceOrControl(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }
