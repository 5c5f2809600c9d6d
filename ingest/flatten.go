package ingest

import (
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/vigil-iot/vigil"
)

// Flattener stores decoded JSON (encoding/json's maps, slices, strings,
// float64, bool, nil) in an event's Fields under dotted names, as cloud
// audit logs are matched by Sigma rules written with their own names
// (userIdentity.type, properties.status.errorCode): objects are followed;
// an array gives a list of strings (an array of objects gives, under each
// of their names, the list of their values); null gives nothing. At most
// MaxFields names are kept and MaxDepth levels followed; Truncated tells
// whether anything was dropped. Invalid UTF-8 is replaced.
type Flattener struct {
	Fields    map[string]any
	MaxFields int
	MaxDepth  int
	Truncated bool
	n         int
}

// Add stores v under name (its fields under name.<key>; name "" for the
// top level).
func (fl *Flattener) Add(name string, v any) { fl.walk(name, v, 0) }

func (fl *Flattener) walk(name string, v any, depth int) {
	if depth > fl.MaxDepth {
		fl.Truncated = true
		return
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys) // the same fields kept whatever the map order
		for _, k := range keys {
			n := ValidUTF8(k)
			if name != "" {
				n = name + "." + n
			}
			fl.walk(n, x[k], depth+1)
		}
	case []any:
		for _, y := range x {
			switch y.(type) {
			case map[string]any, []any:
				fl.walk(name, y, depth+1)
			case nil:
			default:
				fl.add(name, vigil.ValueString(y), true)
			}
		}
	case nil:
	case string:
		fl.add(name, ValidUTF8(x), false)
	default:
		fl.add(name, v, false)
	}
}

// add stores a value; a name given more than once (in arrays) holds the
// list of its values.
func (fl *Flattener) add(name string, v any, list bool) {
	if name == "" {
		return
	}
	old, ok := fl.Fields[name]
	if !ok {
		if fl.n >= fl.MaxFields {
			fl.Truncated = true
			return
		}
		fl.n++
		if list {
			fl.Fields[name] = []string{vigil.ValueString(v)}
		} else {
			fl.Fields[name] = v
		}
		return
	}
	if l, ok := old.([]string); ok {
		if len(l) >= fl.MaxFields {
			fl.Truncated = true
			return
		}
		fl.Fields[name] = append(l, vigil.ValueString(v))
		return
	}
	fl.Fields[name] = []string{vigil.ValueString(old), vigil.ValueString(v)}
}

// Clip shortens s to 64 bytes and an ellipsis, as valid UTF-8, for a
// value quoted in an error message.
func Clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return ValidUTF8(s)
}

// ValidUTF8 returns s with invalid UTF-8 replaced by U+FFFD.
func ValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
