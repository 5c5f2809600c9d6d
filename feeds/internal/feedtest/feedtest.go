// Package feedtest checks, for the feed parsers' tests and fuzz targets,
// the properties every parser promises about what it returns: a Result
// whose counts agree with its errors, indicators in canonical form, and
// advisories the vulnerability index can key on.
package feedtest

import (
	"os"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/vuln"
)

// Result checks that the counts of res are not negative, that it holds
// one non-empty error per rejection up to feeds.MaxErrors, and, when
// imported is not negative, that res.Imported is imported.
func Result(t testing.TB, res feeds.Result, imported int) {
	t.Helper()
	if res.Imported < 0 || res.Rejected < 0 || res.Skipped < 0 {
		t.Fatalf("negative count in %+v", res)
	}
	if imported >= 0 && res.Imported != imported {
		t.Fatalf("result says %d imported, %d returned", res.Imported, imported)
	}
	if want := min(res.Rejected, feeds.MaxErrors); len(res.Errors) != want {
		t.Fatalf("%d rejected but %d errors (want %d): %q", res.Rejected, len(res.Errors), want, res.Errors)
	}
	for i, e := range res.Errors {
		if strings.TrimSpace(e) == "" {
			t.Fatalf("error %d is empty", i)
		}
	}
}

// Error checks that a parser's error says what it could not do.
func Error(t testing.TB, err error) {
	t.Helper()
	if err != nil && !strings.HasPrefix(err.Error(), "cannot ") {
		t.Fatalf("error %q does not start with \"cannot \"", err)
	}
}

// Failed checks a parser's error as Error does, and that an error comes
// with nothing returned: n items and no import counted in res.
func Failed(t testing.TB, err error, n int, res feeds.Result) {
	t.Helper()
	Error(t, err)
	if err != nil && (n != 0 || res.Imported != 0) {
		t.Fatalf("error %v with %d items returned, result %+v", err, n, res)
	}
}

// keyTypes are the types an indicator may be looked up by.
var keyTypes = map[feeds.Type]bool{
	feeds.TypeIP: true, feeds.TypeDomain: true, feeds.TypeURL: true,
	feeds.TypeMD5: true, feeds.TypeSHA1: true, feeds.TypeSHA256: true, feeds.TypeSHA512: true,
}

// Indicator checks one indicator value: a type it can be looked up by and
// a value in the canonical form feeds.Normalize gives it.
func Indicator(t testing.TB, typ feeds.Type, v string) {
	t.Helper()
	if !keyTypes[typ] {
		t.Fatalf("value %q has type %q, not one to match on", v, typ)
	}
	n, err := feeds.Normalize(typ, v)
	if err != nil || n != v {
		t.Fatalf("%s value %q is not canonical: normalizes to %q, %v", typ, v, n, err)
	}
}

// Indicators checks what an import returned: every indicator has an id,
// the feed's name, a canonical value of a type to match on, conditions of
// known types with values, and a confidence in 1..100 (feed defaults
// applied).
func Indicators(t testing.TB, ins []feeds.Indicator, feed string) {
	t.Helper()
	for i, in := range ins {
		if in.ID == "" {
			t.Fatalf("indicator %d has no id: %+v", i, in)
		}
		if in.Feed != feed {
			t.Fatalf("indicator %d has feed %q, want %q", i, in.Feed, feed)
		}
		Indicator(t, in.Type, in.Value)
		for _, c := range in.And {
			if _, err := feeds.Normalize(c.Type, c.Value); err != nil || c.Value == "" {
				t.Fatalf("indicator %d has a bad condition %+v: %v", i, c, err)
			}
		}
		if in.Confidence < 1 || in.Confidence > 100 {
			t.Fatalf("indicator %d has confidence %d, not in 1..100", i, in.Confidence)
		}
	}
}

// Advisories checks what an import returned: every advisory has an id, the
// source, a CVE id that looks like one, a CVSS score in 0..10, and names
// each affected product by a purl (that reads back the same) or a CPE
// that parses, as the index needs.
// When needAffected is set, every advisory affects something.
func Advisories(t testing.TB, ads []vuln.Advisory, source string, needAffected bool) {
	t.Helper()
	for i, a := range ads {
		if a.ID == "" || a.Source != source {
			t.Fatalf("advisory %d has id %q, source %q (want %q)", i, a.ID, a.Source, source)
		}
		if a.CVE != "" && !strings.HasPrefix(a.CVE, "CVE-") {
			t.Fatalf("advisory %s has CVE %q", a.ID, a.CVE)
		}
		if a.CVSS < 0 || a.CVSS > 10 {
			t.Fatalf("advisory %s has CVSS %v, not in 0..10", a.ID, a.CVSS)
		}
		if needAffected && len(a.Affected) == 0 {
			t.Fatalf("advisory %s affects nothing", a.ID)
		}
		for j, af := range a.Affected {
			if (af.PURL == "") == (af.CPE == "") {
				t.Fatalf("advisory %s affected %d names a product by purl %q and CPE %q: want exactly one", a.ID, j, af.PURL, af.CPE)
			}
			if af.PURL != "" {
				p, err := vuln.ParsePURL(af.PURL)
				if err != nil {
					t.Fatalf("advisory %s affected %d: purl does not parse: %v", a.ID, j, err)
				}
				if p.String() != af.PURL {
					t.Fatalf("advisory %s affected %d: purl %q reads back as %q", a.ID, j, af.PURL, p.String())
				}
			}
			if af.CPE != "" {
				if _, err := vuln.ParseCPE(af.CPE); err != nil {
					t.Fatalf("advisory %s affected %d: CPE does not parse: %v", a.ID, j, err)
				}
			}
		}
	}
}

// File returns the contents of a test file, failing the test when it
// cannot be read.
func File(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// EdgeJSON are hand-made inputs every JSON decoder's fuzz corpus starts
// with: empty, truncated, wrong top-level types, huge numbers, deep
// nesting, invalid UTF-8 and NUL bytes.
var EdgeJSON = []string{
	"",
	" ",
	"{",
	`{"`,
	"null",
	"[]",
	"{}",
	`"x"`,
	"1e999",
	"-0",
	"[" + strings.Repeat("[", 200) + strings.Repeat("]", 200) + "]",
	strings.Repeat(`{"a":`, 200) + "1" + strings.Repeat("}", 200),
	"{\"a\":\"\xff\xfe\"}",
	"{\"a\":\"\x00\"}\x00",
	"\xef\xbb\xbf{}",
	"{} {}",
	"{}garbage",
}
