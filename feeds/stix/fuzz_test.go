package stix

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/internal/corpus"
	"github.com/vigil-iot/vigil/feeds/internal/feedtest"
)

// patterns are the patterns of the package's tests, accepted and refused.
var patterns = []string{
	"[ipv4-addr:value = '10.0.0.1']",
	"[ipv4-addr:value = '10.0.0.1/32']",
	"[ipv4-addr:value ISSUBSET '10.1.2.3/16']",
	"[domain-name:value = 'a.example' OR domain-name:value = 'b.example']",
	"[(ipv4-addr:value = '10.0.0.1' OR ipv4-addr:value = '10.0.0.2') AND network-traffic:dst_port = 23]",
	"([url:value = 'http://x.example/a'] OR [file:hashes.MD5 = 'D41D8CD98F00B204E9800998ECF8427E'])",
	`[file:name = 'it\'s.exe' AND file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']`,
	"[ipv4-addr:value = '10.0.0.1'] AND [ipv4-addr:value = '10.0.0.2']",
	"[ipv4-addr:value = '10.0.0.1'] WITHIN 5 SECONDS",
	"[url:value LIKE 'http://%']",
	"[ipv4-addr:value != '10.0.0.1']",
	"[process:name = 'sh']",
	"[ipv4-addr:value = '10.0.0.300']",
	"[ipv4-addr:value = '10.0.0.1'",
	"[domain-name:value = 'x",
	"[ipv6-addr:value IN ('2001:db8::1', '2001:db8::/32')] FOLLOWEDBY [x:y = 1]",
	"[network-traffic:dst_ref.value = '10.0.0.1' AND network-traffic:dst_port = 99999]",
	"[file:name = 'a' AND file:extensions[*].x = 'b']",
	"[file:hashes.'SHA-256' = 'E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855' AND NOT file:name = 'x']",
	"", "[", "]", "()", "[]", "[a:b = ]", "[a:b = 'x' OR]", "[ipv4-addr:value = '\x00']", "[ipv4-addr:value = '\xff']",
	strings.Repeat("(", 100) + "[ipv4-addr:value = '10.0.0.1']" + strings.Repeat(")", 100),
	"[" + strings.Repeat("(", 100) + "ipv4-addr:value = '10.0.0.1'" + strings.Repeat(")", 100) + "]",
}

// FuzzParsePattern checks that ParsePattern never panics, that an error
// says something, and that a pattern it accepts gives at most maxTerms
// alternatives, none empty, of atoms whose values are canonical for their
// types.
func FuzzParsePattern(f *testing.F) {
	for _, p := range patterns {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dnf, err := ParsePattern(s)
		if err != nil {
			if err.Error() == "" || dnf != nil {
				t.Fatalf("error %q with %v", err, dnf)
			}
			return
		}
		if len(dnf) == 0 || len(dnf) > maxTerms {
			t.Fatalf("%q: %d alternatives", s, len(dnf))
		}
		for _, alt := range dnf {
			if len(alt) == 0 {
				t.Fatalf("%q: an empty alternative in %v", s, dnf)
			}
			for _, a := range alt {
				if n, err := feeds.Normalize(a.Type, a.Value); err != nil || n != a.Value {
					t.Fatalf("%q: atom %+v is not canonical (%q, %v)", s, a, n, err)
				}
			}
		}
	})
}

// FuzzParse checks that Parse never panics and that what it returns holds
// together: an error (saying what it cannot do) comes with no indicators,
// the result counts at most as many imported objects as indicators
// returned (an OR gives several) and one error per rejection, and every
// indicator has an id, the feed's name, a canonical value of a type to
// match on, conditions with values and a confidence in 1..100.
func FuzzParse(f *testing.F) {
	f.Add(feedtest.File(f, "testdata/bundle21.json"))
	for _, s := range feedtest.EdgeJSON {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"type": "bundle", "objects": null}`))
	f.Add([]byte(`{"type": "bundle", "objects": 5}`))
	f.Add([]byte(`{"type": "Bundle", "objects": []}`))
	f.Add([]byte(`{"type": "bundle", "objects": [1, "x", null, [], {"type": "indicator"}, {"type": "indicator", "id": "indicator--1", "pattern": "[ipv4-addr:value = '10.0.0.1']", "confidence": 101},
		{"type": "indicator", "pattern": "[ipv4-addr:value = '10.0.0.1']"}, {"type": "indicator", "id": "indicator--2", "pattern": "[ipv4-addr:value = '10.0.0.1']", "confidence": -1},
		{"type": "indicator", "id": "indicator--3", "pattern": "[domain-name:value = 'a.example']", "pattern_type": "snort"},
		{"type": "indicator", "id": "indicator--4", "pattern": "[domain-name:value = 'a.example']", "valid_from": "yesterday"},
		{"type": "indicator", "id": "indicator--5", "pattern": "[file:name = 'x']", "confidence": 0, "revoked": true},
		{"type": "indicator", "id": "indicator--6", "pattern": "[file:name = 'x']", "confidence": 0}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ins, res, err := Parse(bytes.NewReader(data), &feeds.Feed{Name: "stix"}, now)
		feedtest.Failed(t, err, len(ins), res)
		feedtest.Result(t, res, -1)
		if res.Imported > len(ins) || len(ins) > res.Imported*maxTerms {
			t.Fatalf("%d objects imported as %d indicators", res.Imported, len(ins))
		}
		feedtest.Indicators(t, ins, "stix")
	})
}

// TestParsePatternBounds checks that a pattern cannot make ParsePattern
// recurse or allocate without bound: nesting deeper than maxDepth and a
// normal form of more than maxAtoms atoms are errors.
func TestParsePatternBounds(t *testing.T) {
	atom := "ipv4-addr:value = '10.0.0.1'"
	for _, c := range []struct{ pat, want string }{
		{strings.Repeat("(", maxDepth+1) + "[" + atom + "]" + strings.Repeat(")", maxDepth+1), "nested deeper"},
		{"[" + strings.Repeat("(", maxDepth+1) + atom + strings.Repeat(")", maxDepth+1) + "]", "nested deeper"},
		{strings.Repeat("(", 1_000_000) + "[" + atom + "]", "nested deeper"},
		// 256 alternatives, then each AND adds an atom to every one of them.
		{"[(" + strings.Repeat(atom+" OR ", maxTerms-1) + atom + ")" + strings.Repeat(" AND "+atom, 5000) + "]", "pattern too large"},
		{strings.Repeat("["+strings.Repeat(atom+" AND ", 100)+atom+"] OR ", 100) + "[" + atom + "]", "pattern too large"},
	} {
		if _, err := ParsePattern(c.pat); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.60s...: error %v, want %q", c.pat, err, c.want)
		}
	}
	// Parentheses around observations and inside them count together.
	h := maxDepth / 2
	ok := strings.Repeat("(", h) + "[" + strings.Repeat("(", h) + atom + strings.Repeat(")", h) + "]" + strings.Repeat(")", h)
	if _, err := ParsePattern(ok); err != nil {
		t.Errorf("nesting %d deep: %v", maxDepth, err)
	}
}

// TestCorpusProperties checks what the fuzz target checks on the shared
// corpus's ics-attack.json (skipped when the corpus is absent).
func TestCorpusProperties(t *testing.T) {
	fh := corpus.Open(t, "ics-attack.json")
	ins, res, err := Parse(fh, &feeds.Feed{Name: "stix"}, now)
	if err != nil {
		t.Fatal(err)
	}
	feedtest.Result(t, res, -1)
	feedtest.Indicators(t, ins, "stix")
}

// TestRejectionQuotesNoContent checks that a rejection says where and why
// but quotes none of the content it could not parse (a file that is not a
// feed may be a secret): a valid STIX id is named, anything else is not.
func TestRejectionQuotesNoContent(t *testing.T) {
	pat := "[ipv4-addr:value = 'SECRETSECRET']"
	_, res, err := Parse(strings.NewReader(`{"type": "bundle", "objects": [{"type": "indicator", "id": "indicator--00000000-0000-4000-8000-000000000001", "pattern": "`+pat+`"},
		{"type": "indicator", "id": "SECRETID", "pattern": "[SECRETPATH = '1']"}, {"type": "indicator", "id": "indicator--1", "pattern_type": "SECRETTYPE", "pattern": "x"}]}`), &feeds.Feed{Name: "stix"}, now)
	if err != nil || res.Rejected != 3 || len(res.Errors) != 3 || !strings.HasPrefix(res.Errors[0], "object 0 (indicator--00000000-0000-4000-8000-000000000001): ") {
		t.Fatalf("%v %d rejected, errors %q", err, res.Rejected, res.Errors)
	}
	for _, e := range res.Errors {
		if strings.Contains(e, "SECRET") {
			t.Errorf("a rejection quotes content: %q", e)
		}
	}
}
