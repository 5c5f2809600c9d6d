package graph

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// DefaultRules are the built-in extraction rules (rules.yaml).
//
//go:embed rules.yaml
var DefaultRules []byte

// Rule makes one relation From Rel To for every event that names both
// ends and passes When and Unless (see rules.yaml for the format).
type Rule struct {
	From   End                 `yaml:"from"`
	Rel    string              `yaml:"rel"`
	To     End                 `yaml:"to"`
	When   map[string][]string `yaml:"when"`
	Unless map[string][]string `yaml:"unless"`
}

// End is one end of a rule: the entity type and where its values come from.
type End struct {
	Type string `yaml:"type"`
	// Field is a dotted field name; Value a template of fields
	// ("{destination.ip}:{destination.port}"). Exactly one is set.
	Field     string `yaml:"field"`
	Value     string `yaml:"value"`
	Decode    string `yaml:"decode"`    // "", components, url_hosts
	Normalize string `yaml:"normalize"` // "", ip, lower

	tmpl []tmplPart
}

type tmplPart struct {
	lit   string
	field string // set for a {field} part
}

// Entity types an end may have, besides "host" (ip or domain by value).
var entityTypes = []string{store.EntityDevice, store.EntityIP, store.EntityMAC, store.EntityUser, store.EntityMQTTClient,
	store.EntityTopic, store.EntityBroker, store.EntityCoAP, store.EntityCert, store.EntitySoftware, store.EntityFile, store.EntityDomain}

// IsEntityType reports whether t is a type of the graph's entities.
func IsEntityType(t string) bool { return slices.Contains(entityTypes, t) }

var relName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// ParseRules decodes and checks rules in the rules.yaml format. name is
// said in errors, with the rule's index and line.
func ParseRules(name string, b []byte) ([]Rule, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, vigil.Errorf(vigil.EINVALID, "%s: cannot parse graph rules: %v", name, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	list := doc.Content[0]
	if list.Kind != yaml.SequenceNode {
		return nil, vigil.Errorf(vigil.EINVALID, "%s:%d: graph rules must be a list", name, list.Line)
	}
	rules := make([]Rule, 0, len(list.Content))
	for i, n := range list.Content {
		var r Rule
		// Decode strictly: a misspelt key is an error, not a rule that
		// silently matches nothing.
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		if err := enc.Encode(n); err != nil {
			return nil, vigil.Errorf(vigil.EINVALID, "%s:%d: rule %d: %v", name, n.Line, i+1, err)
		}
		dec := yaml.NewDecoder(&buf)
		dec.KnownFields(true)
		if err := dec.Decode(&r); err != nil {
			return nil, vigil.Errorf(vigil.EINVALID, "%s:%d: rule %d: %v", name, n.Line, i+1, err)
		}
		if err := r.check(); err != nil {
			return nil, vigil.Errorf(vigil.EINVALID, "%s:%d: rule %d: %v", name, n.Line, i+1, err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func (r *Rule) check() error {
	if !relName.MatchString(r.Rel) {
		return fmt.Errorf("rel %q: want a lower-case snake_case name", r.Rel)
	}
	for _, e := range []*End{&r.From, &r.To} {
		if err := e.check(); err != nil {
			return err
		}
	}
	for _, m := range []map[string][]string{r.When, r.Unless} {
		for f, vs := range m {
			if f == "" || len(vs) == 0 {
				return fmt.Errorf("condition on %q needs a field and at least one value", f)
			}
		}
	}
	return nil
}

func (e *End) check() error {
	if e.Type != "host" && !IsEntityType(e.Type) {
		return fmt.Errorf("entity type %q: want one of %s or host", e.Type, strings.Join(entityTypes, ", "))
	}
	if (e.Field == "") == (e.Value == "") {
		return fmt.Errorf("end of type %s: give exactly one of field and value", e.Type)
	}
	switch e.Decode {
	case "", "components", "url_hosts":
	default:
		return fmt.Errorf("decode %q: want components or url_hosts", e.Decode)
	}
	switch e.Normalize {
	case "", "ip", "lower":
	default:
		return fmt.Errorf("normalize %q: want ip or lower", e.Normalize)
	}
	if e.Value != "" {
		if e.Decode != "" {
			return fmt.Errorf("a value template cannot be decoded")
		}
		t, err := parseTemplate(e.Value)
		if err != nil {
			return err
		}
		e.tmpl = t
	}
	return nil
}

func parseTemplate(tmpl string) ([]tmplPart, error) {
	var out []tmplPart
	s := tmpl
	for s != "" {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			if strings.IndexByte(s, '}') >= 0 {
				return nil, fmt.Errorf("template: unmatched }")
			}
			out = append(out, tmplPart{lit: s})
			break
		}
		if i > 0 {
			if strings.IndexByte(s[:i], '}') >= 0 {
				return nil, fmt.Errorf("template: unmatched }")
			}
			out = append(out, tmplPart{lit: s[:i]})
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("template: unmatched {")
		}
		f := s[i+1 : i+j]
		if f == "" || strings.ContainsAny(f, "{") {
			return nil, fmt.Errorf("template: empty or nested field name")
		}
		out = append(out, tmplPart{field: f})
		s = s[i+j+1:]
	}
	if !slices.ContainsFunc(out, func(p tmplPart) bool { return p.field != "" }) {
		return nil, fmt.Errorf("template %q names no field", tmpl)
	}
	return out, nil
}

// values appends the entity keys of e in ev to dst.
func (e *End) values(ev *vigil.Event, dst []string) []string {
	if e.tmpl != nil {
		var b strings.Builder
		for _, p := range e.tmpl {
			if p.field == "" {
				b.WriteString(p.lit)
				continue
			}
			v, ok := ev.Field(p.field)
			s := vigil.ValueString(v)
			if !ok || s == "" {
				return dst
			}
			b.WriteString(s)
		}
		return e.add(dst, b.String())
	}
	v, ok := ev.Field(e.Field)
	if !ok {
		return dst
	}
	switch x := v.(type) {
	case string:
		return e.decode(dst, x)
	case []string:
		for _, s := range x {
			dst = e.decode(dst, s)
		}
		return dst
	case []any:
		for _, s := range x {
			if s, ok := s.(string); ok {
				dst = e.decode(dst, s)
			}
		}
		return dst
	case float64, bool:
		return e.decode(dst, vigil.ValueString(x))
	}
	return dst
}

func (e *End) decode(dst []string, s string) []string {
	switch e.Decode {
	case "components":
		var cs []vigil.Component
		if json.Unmarshal([]byte(s), &cs) != nil {
			return dst
		}
		for _, c := range cs {
			dst = e.add(dst, SoftwareValue(c))
		}
		return dst
	case "url_hosts":
		for _, m := range urlHost.FindAllStringSubmatch(s, 8) {
			dst = e.add(dst, m[1])
		}
		return dst
	}
	return e.add(dst, s)
}

var urlHost = regexp.MustCompile(`(?i)\b(?:https?|ftp|tftp)://(?:[^\s/@]*@)?(\[[0-9a-f:.]+\]|[a-z0-9.\-]+)`)

// SoftwareValue is the value of a software entity: the component's purl,
// else its CPE, else name@version.
func SoftwareValue(c vigil.Component) string {
	switch {
	case c.PURL != "":
		return c.PURL
	case c.CPE != "":
		return c.CPE
	case c.Name == "":
		return ""
	case c.Version == "":
		return c.Name
	}
	return c.Name + "@" + c.Version
}

// add appends the key of value s (normalized) unless it is empty.
func (e *End) add(dst []string, s string) []string {
	s = strings.TrimSpace(s)
	typ := e.Type
	switch e.Normalize {
	case "ip":
		s = normIP(s)
	case "lower":
		s = strings.TrimSuffix(strings.ToLower(s), ".")
	}
	if typ == "host" {
		s = strings.TrimSuffix(strings.Trim(strings.ToLower(s), "[]"), ".")
		if a := normIP(s); a != "" {
			typ, s = store.EntityIP, a
		} else {
			typ = store.EntityDomain
		}
	}
	if s == "" {
		return dst
	}
	if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
		s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	}
	return append(dst, store.EntityKey(typ, s))
}

// normIP returns the address s (a prefix's address for "a/n") in its
// canonical form, or "" when s is no address, is unspecified or is a
// loopback address (every host has its own: one entity for all of them
// would join unrelated devices).
func normIP(s string) string {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.IsUnspecified() || a.IsLoopback() {
		return ""
	}
	return a.Unmap().String()
}
