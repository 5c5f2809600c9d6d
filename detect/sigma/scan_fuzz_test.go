package sigma

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

const fuzzScanRules = `title: Fuzz
logsource:
    product: test
detection:
    sel:
        a: x
        b.c|contains: y
        Image|endswith: /sh
        CommandLine|contains: wget
    kw:
        - 'curl'
    condition: sel or kw
`

// FuzzScanEvent feeds arbitrary lines to the NDJSON scanner: it must not
// panic, a line must read the same whatever line came before it (the key
// order prediction must not change what is read), and the string values
// of top-level keys must be what encoding/json reads.
func FuzzScanEvent(f *testing.F) {
	for _, s := range []string{
		`{"a":"x","b.c":"zyz","Image":"/bin/sh","CommandLine":"wget http://e/x"}`,
		`{"Image":"/bin/sh","a":"x"}`,
		`{"b":{"c":"y"},"a":"\u0078"}`,
		`{"a":"x\"","Image":"\\/sh","k":[1,"curl",{"z":null}]}`,
		`{"a" : "x" , "CommandLine" : "a\tb" }`,
		`{"Ima\u0067e":"/sh"}`,
	} {
		f.Add([]byte(s), []byte(`{"Image":"/usr/bin/id","a":"q","b.c":"r","CommandLine":"x"}`))
	}
	rs, errs := LoadBytes("fuzz.yml", []byte(fuzzScanRules), nil)
	if len(errs) > 0 {
		f.Fatal(errs)
	}
	f.Fuzz(func(t *testing.T, line, prev []byte) {
		fresh := rs.NewMatcher()
		n1, err1 := fresh.MatchLine(line, nil)
		vals1 := readSlots(fresh)
		warm := rs.NewMatcher()
		warm.MatchLine(prev, nil)
		warm.MatchLine(line, nil)
		warm.MatchLine(prev, nil)
		n2, err2 := warm.MatchLine(line, nil)
		vals2 := readSlots(warm)
		if (err1 == nil) != (err2 == nil) || n1 != n2 || vals1 != vals2 {
			t.Fatalf("line %q read differently after %q: %d %v %v / %d %v %v", line, prev, n1, err1, vals1, n2, err2, vals2)
		}
		var obj map[string]any
		if err1 != nil || !utf8.Valid(line) || json.Unmarshal(line, &obj) != nil {
			return // invalid UTF-8 is kept as is, encoding/json replaces it
		}
		for _, k := range []string{"a", "Image", "CommandLine"} {
			want, ok := obj[k].(string)
			if !ok {
				continue
			}
			if got := fresh.fieldString(k); got != want {
				// Duplicate keys: encoding/json keeps the last, so does the scanner.
				t.Fatalf("%q: field %s = %q, encoding/json %q", line, k, got, want)
			}
		}
	})
}

type slotValues [4]string

func readSlots(m *Matcher) slotValues {
	var v slotValues
	for i, k := range []string{"a", "b.c", "Image", "CommandLine"} {
		v[i] = m.fieldString(k)
	}
	return v
}

// fieldString returns the string value the last line gave the rule field
// name ("" when absent or not a string).
func (m *Matcher) fieldString(name string) string {
	for f, names := range m.rs.fieldNames {
		if len(names) > 0 && names[0] == name {
			s := &m.ctx.slots[f]
			if s.gen != m.ctx.gen || !s.present || s.null || s.isList {
				return ""
			}
			return s.s
		}
	}
	return ""
}
