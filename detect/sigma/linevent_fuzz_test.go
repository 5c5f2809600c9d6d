package sigma

import (
	"encoding/json"
	"slices"
	"testing"
)

// FuzzObjectMembers checks the walker the offline stream's excerpts read
// lines with: it never panics, and on a JSON object encoding/json accepts
// it finds the same top-level keys, each value being valid JSON. (On
// input encoding/json refuses it may pass values on: they are decoded by
// encoding/json afterwards, which refuses them.)
func FuzzObjectMembers(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":1}`, `{"a":"x","b":{"c":[1,{"d":"}"}]},"e":null}`,
		`{"k\"ey":"v\\\\","fields":{"user.name":"root"}}`, ` { "a" : [ ] , "b" : true } `,
		`{"a":{"b":{"c":{"d":"deep"}}}}`, `{"a":"\u00e9"}`, `{"a":1,}`, `{"a"}`, `[1]`, `{"a":{"b":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var (
			keys []string
			vals [][]byte
		)
		err := objectMembers(b, func(key string, val []byte) {
			keys = append(keys, key)
			vals = append(vals, val)
		})
		var want map[string]json.RawMessage
		if json.Unmarshal(b, &want) != nil || want == nil {
			return // invalid input: no panic is all that is asked
		}
		for i, v := range vals {
			if !json.Valid(v) {
				t.Errorf("%q: value %q of key %q is not JSON", b, v, keys[i])
			}
		}
		if err != nil {
			t.Fatalf("%q: %v, but encoding/json reads it", b, err)
		}
		got := map[string]bool{}
		for i, k := range keys {
			// encoding/json makes each invalid UTF-8 byte U+FFFD; the
			// walker keeps the bytes (names looked up are valid).
			keys[i] = string([]rune(k))
			got[keys[i]] = true
		}
		for k := range want {
			if !got[k] {
				t.Errorf("%q: key %q not found (got %v)", b, k, keys)
			}
		}
		slices.Sort(keys)
		if len(slices.Compact(keys)) != len(want) {
			t.Errorf("%q: keys %v, want %d", b, keys, len(want))
		}
	})
}
