package sigma

import (
	"strconv"
	"strings"
	"testing"
)

// testPlaceholders gives the expand modifier values to multiply (the
// embedded config declares its placeholders without values).
const testPlaceholders = `placeholders:
  a: [x, 'y*', 'z\*']
  b: ['10.0.0.0/8', '192.168.1.1', 'fe80::/10']
  c: [one, two, three, four]
  none: []
`

func placeholderConfig(tb testing.TB) *Config {
	cfg, err := ParseConfig([]byte(testPlaceholders))
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// loadOne loads one rule file with testPlaceholders and returns the rule
// set and its errors.
func loadOne(t *testing.T, src string) (*RuleSet, []FileError) {
	t.Helper()
	// The limits are shown by the errors the tests expect, not by a wall
	// time (which a busy machine stretches): a rule over a limit is
	// stopped when it reaches it, not after expanding everything.
	return LoadBytes("limits.yml", []byte(src), placeholderConfig(t))
}

func wantRejected(t *testing.T, src, reason string, line int) {
	t.Helper()
	rs, errs := loadOne(t, src)
	if len(errs) != 1 || !strings.Contains(errs[0].Reason, reason) || errs[0].Line != line || errs[0].File != "limits.yml" {
		t.Fatalf("errors = %v, want one at limits.yml:%d containing %q", errs, line, reason)
	}
	if rs.Compiled() != 0 {
		t.Fatalf("%d rules compiled", rs.Compiled())
	}
}

func fieldRule(field, value string) string {
	return "title: t\nlogsource: {product: test}\ndetection:\n  sel:\n    " + field + ": '" + value + "'\n  condition: sel\n"
}

// TestExpansionLimits: the values one rule value expands to are bounded,
// and rejected with the reason before they are built.
func TestExpansionLimits(t *testing.T) {
	// 3^4 * 4^4 = 20736 combinations of placeholders.
	wantRejected(t, fieldRule("a|expand", strings.Repeat("%a%%c%", 4)), "expand gives more than 4096 values", 5)
	// A long value repeated by each combination: 4 * 3 * 4 * 3 values of
	// 100 KB.
	wantRejected(t, fieldRule("a|expand", strings.Repeat("x", 100000)+"%a%%c%%a%%c%"), "bytes in all, more than", 5)
	// Six dashes to vary: 5^6 values.
	wantRejected(t, fieldRule("a|windash|contains", " -a -b -c -d -e -f"), "windash gives more than 4096 values", 5)
	// Dashes in literals between wildcards multiply too.
	wantRejected(t, fieldRule("a|windash", strings.Repeat("-a*", 6)), "windash gives more than 4096 values", 5)
	// expand then windash: 4^4 * 5^2.
	wantRejected(t, fieldRule("a|expand|windash", "%c%%c%%c%%c% -x -y"), "windash gives more than", 5)
	// windash then base64offset: 5^5 * 3.
	wantRejected(t, fieldRule("a|windash|base64offset|contains", " -a -b -c -d -e"), "base64offset gives 9375 values", 5)
	// Under the limits, every value is there: 5^5 windash values.
	rs, errs := loadOne(t, fieldRule("CommandLine|windash|contains", " -a -b -c -d -e"))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	if n := len(rs.Rules[0].cond.(*fieldNode).preds); n != 3125 {
		t.Fatalf("windash gave %d values, want 3125", n)
	}
}

// TestRuleAndSetValueLimits: the values of a rule, and of a rule set,
// once expanded are bounded.
func TestRuleAndSetValueLimits(t *testing.T) {
	// 30 values of 4096 variants each: more than maxRuleValues.
	var b strings.Builder
	b.WriteString("title: t\nlogsource: {product: test}\ndetection:\n  sel:\n    a|expand:\n")
	for i := range 30 {
		b.WriteString("      - '" + strings.Repeat("%c%", 6) + "-" + string(rune('a'+i%26)) + "'\n")
	}
	b.WriteString("  condition: sel\n")
	rs, errs := loadOne(t, b.String())
	if len(errs) != 1 || !strings.Contains(errs[0].Reason, "the rule has more than 100000 values once expanded") || errs[0].Line != 30 {
		t.Fatalf("errors = %v", errs)
	}
	if rs.Compiled() != 0 {
		t.Fatal("compiled")
	}

	// Documents under the rule limit fill the set's room (lowered to 1
	// MiB here); the ones that overflow it are rejected, the others load.
	defer func(n int) { maxSetValueBytes = n }(maxSetValueBytes)
	maxSetValueBytes = 1 << 20
	one := "title: t\nlogsource: {product: test}\ndetection:\n  sel:\n    a|expand: '%c%%c%" + strings.Repeat("x", 40000) + "'\n  condition: sel\n"
	src := strings.Repeat(one+"---\n", 3) + one
	rs, errs = loadOne(t, src)
	// 16 values of 40 KB: 640 KB a document.
	if len(errs) != 3 || !strings.Contains(errs[0].Reason, "the rules take more than 1 MiB of values once expanded") || errs[0].Line != 12 || errs[2].Line != 26 {
		t.Fatalf("errors = %v", errs)
	}
	if rs.Compiled() != 1 || rs.Rejected != 3 || rs.Total != 4 {
		t.Fatalf("compiled %d, rejected %d, total %d", rs.Compiled(), rs.Rejected, rs.Total)
	}
}

// TestExpandKeepsUTF8: expand copies the bytes around placeholders as
// they are (it used to turn each byte of a multi-byte character into a
// character of its own).
func TestExpandKeepsUTF8(t *testing.T) {
	rs, errs := loadOne(t, fieldRule("a|expand", "été %a%—ü"))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	var got []string
	for _, p := range rs.Rules[0].cond.(*fieldNode).preds {
		got = append(got, p.raw+" "+p.lit)
	}
	// The placeholder's values are x, y* and z\*.
	if strings.Join(got, ",") != "été %a%—ü été x—ü,été %a%—ü été y,été %a%—ü été z*—ü" {
		t.Fatalf("values = %q", got)
	}
	m := rs.NewMatcher()
	if n, _ := m.MatchLine([]byte(`{"logsource":{"product":"test"},"a":"ÉTÉ X—Ü"}`), nil); n != 1 {
		t.Fatalf("matches = %d, want 1", n)
	}
}

// TestConditionLimits: a condition's nesting and the values it tests,
// each search counted each time it is named, are bounded.
func TestConditionLimits(t *testing.T) {
	cond := func(c string) string {
		return "title: t\nlogsource: {product: test}\ndetection:\n  sel1: {a: x}\n  sel2: {b: [x, y, z]}\n  condition: " + c + "\n"
	}
	wantRejected(t, cond(strings.Repeat("(", 101)+"sel1"+strings.Repeat(")", 101)), "the condition nests more than 100 levels deep", 6)
	wantRejected(t, cond(strings.Repeat("not ", 101)+"sel1"), "the condition nests more than 100 levels deep", 6)
	if _, errs := loadOne(t, cond(strings.Repeat("(not ", 49)+"sel1"+strings.Repeat(")", 49))); len(errs) != 0 {
		t.Fatal(errs)
	}
	// 4 values for each "all of them": 25001 of them is too many.
	wantRejected(t, cond(strings.Repeat("all of them and ", 25000)+"sel1"), "the condition tests more than 100000 values", 6)
	// The same across the conditions of a list.
	list := "[" + strings.Repeat("'"+strings.Repeat("all of them and ", 1000)+"sel1', ", 26) + "sel1]"
	wantRejected(t, cond(list), "the condition tests more than 100000 values", 6)
}

// TestFilterNamingRuleTwice: a filter applies once to a rule it names
// several times, and the filters of a rule are ANDed flat.
func TestFilterNamingRuleTwice(t *testing.T) {
	src := "title: r\nname: r\nlogsource: {product: test}\ndetection:\n  sel: {a: x}\n  condition: sel\n"
	for range 3 {
		src += "---\ntitle: f\nlogsource: {product: test}\nfilter:\n  rules: [" + strings.Repeat("r, ", 1000) + "r]\n  sel: {User: root}\n  condition: not sel\n"
	}
	rs, errs := loadOne(t, src)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	and, ok := rs.Rules[0].cond.(andNode)
	if !ok || len(and) != 4 {
		t.Fatalf("condition = %#v, want the rule's and 3 filters", rs.Rules[0].cond)
	}
}

// TestDuplicateIDNotCompiled: a rule rejected for a duplicate id does not
// run (it used to be rejected and still added).
func TestDuplicateIDNotCompiled(t *testing.T) {
	doc := "title: %s\nid: x\nlogsource: {product: test}\ndetection:\n  sel: {a: %s}\n  condition: sel\n"
	src := strings.NewReplacer("%s", "first").Replace(doc) + "---\n" + strings.NewReplacer("%s", "second").Replace(doc)
	rs, errs := loadOne(t, src)
	if len(errs) != 1 || !strings.Contains(errs[0].Reason, "duplicate rule id x") || errs[0].Line != 8 {
		t.Fatalf("errors = %v", errs)
	}
	if len(rs.Rules) != 1 || rs.Rules[0].Title != "first" || rs.Total != 2 || rs.Rejected != 1 {
		t.Fatalf("rules = %d (%s), total %d, rejected %d", len(rs.Rules), rs.Rules[0].Title, rs.Total, rs.Rejected)
	}
}

// TestYAMLErrorLine: YAML errors without a line in their message (those
// of YAML's reader, and the parser's on the first line) get one.
func TestYAMLErrorLine(t *testing.T) {
	for _, c := range []struct {
		src  string
		line int
	}{
		{"title: t\nlogsource:\n  product: te\x01st\n", 3},
		{"title: t\n\nx: \xff\n", 3},
		{"title: t\r\nx: \x7f", 2},
		{"[", 1},
		{"title: t\n  bad: indent\n", 2},
	} {
		_, errs := loadOne(t, c.src)
		if len(errs) != 1 || errs[0].Line != c.line || !strings.HasPrefix(errs[0].Reason, "invalid YAML: ") {
			t.Errorf("%q: errors = %v, want invalid YAML on line %d", c.src, errs, c.line)
		}
	}
}

const corrBase = "title: r\nname: r\nlogsource: {product: test}\ndetection:\n  sel: {a: x}\n  condition: sel\n"

func corrDoc(name string, refs ...string) string {
	return "---\ntitle: " + name + "\nname: " + name + "\ncorrelation:\n  type: event_count\n  rules: [" + strings.Join(refs, ", ") + "]\n  timespan: 5m\n  condition: {gte: 1}\n"
}

// TestRejectedCorrelationDoesNotSilence: the rules a rejected correlation
// names still alert on their own (a correlation naming an unknown rule
// used to silence the rules named before it).
func TestRejectedCorrelationDoesNotSilence(t *testing.T) {
	rs, errs := loadOne(t, corrBase+corrDoc("c", "r", "missing"))
	if len(errs) != 1 || !strings.Contains(errs[0].Reason, `unknown rule "missing"`) {
		t.Fatalf("errors = %v", errs)
	}
	if rs.Rules[0].silent {
		t.Fatal("rule r is silenced by a rejected correlation")
	}
	res, matched, err := rs.TestEvents(strings.NewReader(`{"a":"x"}` + "\n"))
	if err != nil || matched != 1 || len(res) != 1 || res[0].FeedsOnly {
		t.Fatalf("results %+v, matched %d, err %v", res, matched, err)
	}
}

// TestCorrelationCycles: correlations that refer to themselves through
// others, and those that refer to them, are rejected; the rest load.
func TestCorrelationCycles(t *testing.T) {
	src := corrBase + corrDoc("c1", "r", "c2") + corrDoc("c2", "c3") + corrDoc("c3", "c1") +
		corrDoc("c4", "c2") + corrDoc("c5", "r") + corrDoc("c6", "c5")
	rs, errs := loadOne(t, src)
	var got []string
	for _, e := range errs {
		got = append(got, e.Rule+": "+e.Reason)
	}
	want := []string{
		`c1: correlation refers to itself through "c1"`,
		`c2: correlation refers to itself through "c1"`,
		`c3: correlation refers to itself through "c1"`,
		`c4: correlation refers to correlation "c2", which is rejected`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(rs.Correlations) != 2 || rs.Correlations[0].Name != "c5" || rs.Correlations[1].Name != "c6" {
		t.Fatalf("correlations = %v", rs.Correlations)
	}
	// The chain c5 -> c6 fires.
	res, _, err := rs.TestEvents(strings.NewReader(`{"a":"x","@timestamp":"2026-01-01T00:00:00Z"}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	fired := 0
	for _, r := range res {
		if r.Correlation != nil {
			fired++
		}
	}
	if fired != 2 {
		t.Fatalf("results = %+v, want c5 and c6 to fire", res)
	}
}

// TestCorrelationChainDepth: correlations chained deeper than the
// matches are fed are rejected.
func TestCorrelationChainDepth(t *testing.T) {
	src := corrBase + corrDoc("c1", "r")
	for i := 2; i <= maxCorrChain+1; i++ {
		src += corrDoc("c"+strconv.Itoa(i), "c"+strconv.Itoa(i-1))
	}
	rs, errs := loadOne(t, src)
	if len(errs) != 1 || errs[0].Rule != "c17" || !strings.Contains(errs[0].Reason, "more than 16 levels deep") {
		t.Fatalf("errors = %v", errs)
	}
	if len(rs.Correlations) != maxCorrChain {
		t.Fatalf("%d correlations", len(rs.Correlations))
	}
}

// TestTimespanLimits: timespans are positive and at most 10 years (they
// used to overflow into negative durations).
func TestTimespanLimits(t *testing.T) {
	for _, c := range []struct{ ts, err string }{
		{"0s", "invalid timespan"},
		{"-5m", "invalid timespan"},
		{"99999999d", "is longer than 10 years"},
		{"9223372036s", "is longer than 10 years"},
		{"3651d", "is longer than 10 years"},
		{"11y", "is longer than 10 years"},
		{"10y", ""},
		{"521w", ""},
	} {
		src := corrBase + "---\ntitle: c\ncorrelation:\n  type: event_count\n  rules: [r]\n  timespan: " + c.ts + "\n  condition: {gte: 1}\n"
		rs, errs := loadOne(t, src)
		if c.err == "" {
			if len(errs) != 0 || rs.Correlations[0].Correlation.Timespan <= 0 {
				t.Errorf("%s: errors %v", c.ts, errs)
			}
			continue
		}
		if len(errs) != 1 || !strings.Contains(errs[0].Reason, c.err) || errs[0].Line != 12 {
			t.Errorf("%s: errors = %v, want one on line 12 containing %q", c.ts, errs, c.err)
		}
	}
}
