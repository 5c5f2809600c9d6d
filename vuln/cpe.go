package vuln

import (
	"fmt"
	"strings"
)

// CPE is a parsed CPE 2.3 name. "*" is ANY and "-" is NA; values are
// lower-cased and unescaped.
type CPE struct {
	Part, Vendor, Product, Version, Update, Edition, Language string
	SWEdition, TargetSW, TargetHW, Other                      string
}

// ParseCPE parses a CPE 2.3 formatted string ("cpe:2.3:a:vendor:product:...")
// or a CPE 2.2 URI ("cpe:/a:vendor:product:version").
func ParseCPE(s string) (CPE, error) {
	var c CPE
	var f []string
	switch {
	case strings.HasPrefix(s, "cpe:2.3:"):
		f = splitEscaped(s[len("cpe:2.3:"):])
		if len(f) != 11 {
			return c, fmt.Errorf("bad CPE %q: %d components, want 11", s, len(f))
		}
	case strings.HasPrefix(s, "cpe:/"):
		f = strings.Split(s[len("cpe:/"):], ":")
		for i := range f {
			f[i] = strings.ReplaceAll(f[i], "%2f", "/")
			if f[i] == "" {
				f[i] = "*"
			}
		}
		for len(f) < 11 {
			f = append(f, "*")
		}
	default:
		return c, fmt.Errorf("bad CPE %q: not cpe:2.3: or cpe:/", s)
	}
	for i := range f {
		f[i] = strings.ToLower(f[i])
	}
	c = CPE{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10]}
	if c.Part != "a" && c.Part != "o" && c.Part != "h" && c.Part != "*" {
		return c, fmt.Errorf("bad CPE %q: part %q", s, c.Part)
	}
	if c.Vendor == "" || c.Vendor == "*" || c.Product == "" || c.Product == "*" {
		return c, fmt.Errorf("bad CPE %q: needs a vendor and a product", s)
	}
	return c, nil
}

// splitEscaped splits on unescaped colons and removes the escapes.
func splitEscaped(s string) []string {
	var out []string
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case ':':
			out = append(out, b.String())
			b.Reset()
		default:
			b.WriteByte(s[i])
		}
	}
	return append(out, b.String())
}

// Key is "vendor:product", what CPE matching keys on.
func (c CPE) Key() string { return c.Vendor + ":" + c.Product }

// String formats the CPE as a 2.3 formatted string (without re-escaping).
func (c CPE) String() string {
	return "cpe:2.3:" + strings.Join([]string{c.Part, c.Vendor, c.Product, c.Version, c.Update, c.Edition, c.Language, c.SWEdition, c.TargetSW, c.TargetHW, c.Other}, ":")
}

// NormalizeName turns a vendor or model as a device reports it into the
// form CPE dictionaries use: lower case, spaces as underscores
// ("TP-Link" → "tp-link", "Cam Pro 2" → "cam_pro_2").
func NormalizeName(s string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), " ", "_")
}
