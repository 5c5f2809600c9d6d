package vuln

import (
	"fmt"
	"net/url"
	"strings"
)

// PURL is a parsed package URL (pkg:type/namespace/name@version?qualifiers#subpath).
type PURL struct {
	Type       string
	Namespace  string
	Name       string
	Version    string
	Qualifiers map[string]string
	Subpath    string
}

// ParsePURL parses a package URL per the purl specification: type and
// namespace of the known types are lower-cased, components are
// percent-decoded.
func ParsePURL(s string) (PURL, error) {
	var p PURL
	rest, ok := strings.CutPrefix(s, "pkg:")
	if !ok {
		return p, fmt.Errorf("bad purl %q: no pkg: scheme", s)
	}
	rest = strings.TrimLeft(rest, "/")
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		p.Subpath = strings.Trim(rest[i+1:], "/")
		rest = rest[:i]
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		q, err := url.ParseQuery(rest[i+1:])
		if err != nil {
			return p, fmt.Errorf("bad purl %q: qualifiers: %v", s, err)
		}
		p.Qualifiers = map[string]string{}
		for k, v := range q {
			p.Qualifiers[strings.ToLower(k)] = v[0]
		}
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		v, err := url.PathUnescape(rest[i+1:])
		if err != nil {
			return p, fmt.Errorf("bad purl %q: version: %v", s, err)
		}
		p.Version = v
		rest = rest[:i]
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	if len(parts) < 2 || parts[0] == "" || parts[len(parts)-1] == "" {
		return p, fmt.Errorf("bad purl %q: needs a type and a name", s)
	}
	p.Type = strings.ToLower(parts[0])
	for i, part := range parts[1:] {
		d, err := url.PathUnescape(part)
		if err != nil {
			return p, fmt.Errorf("bad purl %q: %v", s, err)
		}
		parts[i+1] = d
	}
	p.Name = parts[len(parts)-1]
	p.Namespace = strings.Join(parts[1:len(parts)-1], "/")
	switch p.Type {
	case "deb", "apk", "opkg", "ipk", "rpm", "alpm", "github", "bitbucket", "composer", "pypi", "npm":
		p.Namespace = strings.ToLower(p.Namespace)
		if p.Type != "npm" {
			p.Name = strings.ToLower(p.Name)
		}
	}
	if p.Type == "pypi" {
		p.Name = strings.ReplaceAll(p.Name, "_", "-")
	}
	if p.Type == "ipk" {
		p.Type = "opkg"
	}
	return p, nil
}

// Key identifies the package regardless of version and qualifiers:
// "type/namespace/name".
func (p PURL) Key() string { return p.Type + "/" + p.Namespace + "/" + p.Name }

// String formats the purl without qualifiers, percent-encoding what
// ParsePURL would otherwise read differently ("%", "@", "?", "#", and "/"
// in the name), so that ParsePURL(p.String()) gives p back
// ("pkg:npm/%40angular/core").
func (p PURL) String() string {
	s := "pkg:" + p.Type + "/"
	if p.Namespace != "" {
		s += escapePURL(p.Namespace, false) + "/"
	}
	s += escapePURL(p.Name, true)
	if p.Version != "" {
		s += "@" + escapePURL(p.Version, false)
	}
	return s
}

// escapePURL percent-encodes the characters that delimit purl components.
func escapePURL(s string, slash bool) string {
	if !strings.ContainsAny(s, "%@?#/") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '%' || c == '@' || c == '?' || c == '#' || c == '/' && slash:
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
