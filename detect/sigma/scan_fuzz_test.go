package sigma

import (
	"bytes"
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
		if err1 == nil && !jsonObject(line) {
			t.Fatalf("%q: accepted, encoding/json rejects it", line)
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

// jsonObject reports whether encoding/json reads line as one object.
func jsonObject(line []byte) bool {
	t := bytes.TrimLeft(line, " \t\r\n")
	return json.Valid(line) && len(t) > 0 && t[0] == '{'
}

// TestScanRejectsInvalidJSON checks that a line that is not one JSON object
// is a bad line, wherever the fault is (fast path, nested object, array,
// keyword values), and that the valid lines around those faults are read.
func TestScanRejectsInvalidJSON(t *testing.T) {
	rs, errs := LoadBytes("fuzz.yml", []byte(fuzzScanRules), nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	m := rs.NewMatcher()
	for _, line := range []string{
		`{"a":1 "b":2}`, `{"a":1}x`, `{"a":1}}`, `{"a":1,}`, `{"a":01}`, `{"a":tru}`, `{"a":truex}`, `{"a":1.}`,
		`{"a":-}`, `{"a":1e}`, `{"a":[1,2}`, `{"a":[1,,2]}`, `{"a":[1 2]}`, `{"a":[1,]}`, `{"k":[{"z":1,}]}`,
		`{"b":{"c":"y",}}`, `{"":{0":0}}`, `{"b":{"c":"y" "d":1}}`, `{"z":{"q":[1}}`, `{"a":"\q"}`, `{"a":"\u12"}`,
		`{"Image":"\u12zz"}`, `{"a":}`, `{"a" "b"}`, `{a:1}`, `[1]`, `"x"`, `{"a":"x"`, `{"CommandLine":nul}`,
	} {
		if _, err := m.MatchLine([]byte(line), nil); err == nil {
			t.Errorf("%s: accepted", line)
		}
		if jsonObject([]byte(line)) {
			t.Errorf("%s: an object for encoding/json: not a test of invalid input", line)
		}
	}
	for _, line := range []string{
		`{}`, ` { } `, `{"a":[]}`, `{"a":{}}`, `{"a":[{"b":1},[2,3],"c",null,true,false,-0.5e+3]}`,
		`{"a":"x","b":{"c":"zyz","d":[1,{"e":{}}]},"n":0,"f":1.25E-2}`, `{"a":"\u0078\n\"\\\/\b\f\r\t"}` + "\n",
		`{"Image":"/bin/sh","CommandLine":"curl x"}`, "{\t\"a\" :\t1 ,\r\n\"b\":[\t]}\r\n",
	} {
		if _, err := m.MatchLine([]byte(line), nil); err != nil {
			t.Errorf("%s: %v", line, err)
		}
		if !jsonObject([]byte(line)) {
			t.Errorf("%s: not an object for encoding/json", line)
		}
	}
}
