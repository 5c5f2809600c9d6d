package sigma

import (
	"bytes"
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vigil-iot/vigil/internal/testfiles"

	"github.com/vigil-iot/vigil"
)

// fuzzEvents are the NDJSON events every compiled rule is evaluated on:
// flat and nested objects, lists, numbers, null, booleans, times close
// together (so that correlations fire) and lines that are not objects.
const fuzzEvents = `{"logsource":{"product":"test","category":"process_creation"},"a":"x","b":{"c":"y","d":[1,"two",{"e":null}]},"Image":"/bin/sh","CommandLine":"wget -O /tmp/x http://e/x","User":"root","source.ip":"10.0.0.7","n":42,"f":1.5,"t":true,"z":null,"@timestamp":"2026-01-01T10:00:00Z"}
{"logsource":{"product":"test"},"a":"x","User":"adm_bob","source.ip":"10.0.0.7","outcome":"failure","CommandLine":"powershell -enc ZQBjAGgAbwAgAGgAaQA=","@timestamp":"2026-01-01T10:00:01Z"}
{"a":"y","b.c":"y","User":"adm_bob","source":{"ip":"192.168.1.1"},"outcome":"failure","count":"5","@timestamp":"2026-01-01T10:00:02Z"}
{"process":{"executable":"/usr/bin/wget","command_line":"wget x","parent":{"name":"sh"}},"event":{"kind":"process"},"kind":"process","time":"2026-01-01T10:00:03.5+01:00"}
{"outcome":"success","User":"adm_bob","source.ip":"10.0.0.7","a":"\u0078","emoji":"\ud83d\ude00","@timestamp":"2026-01-01T10:00:04Z"}
{}
[1,2]
not json
{"a":"x","@timestamp":"2026-01-01T09:59:59Z","n":-1e308,"list":["x","y","z"]}
{"a":"x","@timestamp":"bad time","n":"NaN"}
`

// fuzzVigilEvents are the events given to the online detector.
func fuzzVigilEvents() []*vigil.Event {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	return []*vigil.Event{
		{ID: "e1", Time: t0, DeviceID: "cam-1", Kind: vigil.KindProcess,
			Network: &vigil.Network{SrcIP: netip.MustParseAddr("10.0.0.7")},
			Fields:  map[string]any{"process.executable": "/usr/bin/wget", "process.command_line": "wget -O /tmp/x http://e/x", "a": "x", "n": 42.0}},
		{ID: "e2", Time: t0.Add(time.Second), DeviceID: "cam-1", Kind: vigil.KindAuth,
			Fields: map[string]any{"logsource.product": "test", "outcome": "failure", "user.name": "adm_bob", "a": "x", "list": []any{"x", 1.0, nil}}},
		{ID: "e3", Time: t0.Add(2 * time.Second), DeviceID: "cam-2", Kind: vigil.KindAuth,
			Fields: map[string]any{"logsource.product": "test", "outcome": "failure", "user.name": "root", "b.c": "y", "list": []string{"y"}}},
		{ID: "e4", Time: t0.Add(-time.Hour), DeviceID: "cam-2", Kind: vigil.KindNetwork},
	}
}

// fuzzRuleSeeds are hand-made edge cases of rule files.
var fuzzRuleSeeds = []string{
	// Conditions.
	"title: t\nlogsource: {product: test}\ndetection:\n  sel: {a: x}\n  condition: sel and (not sel or\n",
	"title: t\nlogsource: {product: test}\ndetection:\n  sel: {a: x}\n  condition: " + strings.Repeat("(", 300) + "sel" + strings.Repeat(")", 300) + "\n",
	"title: t\nlogsource: {product: test}\ndetection:\n  sel: {a: x}\n  condition: " + strings.Repeat("not ", 300) + "sel\n",
	"title: t\nlogsource: {product: test}\ndetection:\n  sel: {a: x}\n  condition: sel | count() > 5\n",
	"title: t\nlogsource: {product: test}\ndetection:\n  sel1: {a: x}\n  sel2: {b: y}\n  _x: {c: z}\n  condition: 2 of sel* and 0 of them or 99999999999999999999 of them or all of _* and 1 of [\n",
	"title: t\nlogsource: {product: test}\ndetection:\n  sel: {a: x}\n  condition: [sel, 'not sel', '']\n",
	"title: t\nlogsource: {product: test}\ndetection:\n  sel: {a: x}\n  condition: {x: y}\n",
	"title: t\nlogsource: {product: test}\ndetection:\n  sel: {a: x}\n  condition: " + strings.Repeat("1 of sel* and ", 200) + "sel\n",
	// Modifiers.
	"title: t\nlogsource: {product: test}\ndetection:\n  sel:\n    a|foo: x\n  condition: sel\n",
	"title: t\nlogsource: {product: test}\ndetection:\n  sel:\n    a|re|i|m|s: '(?i)^(a+)+$'\n    b|re: '(x{1000}){1000}'\n    c|re: '((((((((((a|b|c|d)))))))))){8}'\n  condition: sel\n",
	"title: t\nlogsource: {product: test}\ndetection:\n  sel:\n    a|re: '[a-\\x{10FFFF}]{100}|' \n  condition: sel\n",
	"title: t\nlogsource: {product: test}\ndetection:\n  sel:\n    a|i: x\n    b|re|contains: x\n    c|cidr: 10.0.0.0/33\n    d|gt: abc\n    e|exists: maybe\n  condition: sel\n",
	"title: t\nlogsource: {product: test}\ndetection:\n  sel:\n    a|expand: '" + strings.Repeat("%a%%c%", 12) + "'\n  condition: sel\n",
	"title: t\nlogsource: {product: test}\ndetection:\n  sel:\n    a|cidr|expand: '%b%'\n    b|expand: '%none%'\n    c|expand: '%missing%'\n    d|expand: '100\\%%a%%'\n  condition: sel\n",
	"title: t\nlogsource: {product: test}\ndetection:\n  sel:\n    a|windash|contains: '" + strings.Repeat("-a*/b*", 8) + "'\n  condition: sel\n",
	"title: t\nlogsource: {product: test}\ndetection:\n  sel:\n    a|windash|base64offset|contains: ' -a -b -c -d -e -f -g'\n    b|utf16le|base64offset|contains: x\n    c|wide|base64: y*\n    d|expand|windash|base64offset|contains: '%c% -x%c% -y%c%'\n  condition: sel\n",
	"title: t\nlogsource: {product: test}\ndetection:\n  sel:\n    a|fieldref|contains: b\n    c|fieldref|neq: d\n    e|lt|hour: 10\n    f|cased|all: [x, y]\n    '|all': [p, q]\n    ? |re\n    : x\n  keywords: [a, '*b*', 'c?d\\*']\n  condition: sel or keywords\n",
	"title: t\nlogsource: {product: test}\ndetection:\n  sel:\n    a: null\n    b: [null, x]\n    c: []\n    d: {e: f}\n    '': x\n  condition: sel\n",
	// YAML oddities.
	"title: &t t\nlogsource: &l {product: test}\ndetection:\n  sel: &s {a: *t}\n  other: [*s, *s, *s]\n  condition: other\n",
	"title: t\nlogsource: {product: test}\ndetection:\n  sel: &s {a: x}\n  condition: *s\n",
	"title: t\nlogsource: test\ndetection: [x]\n",
	"title: [t]\nlevel: [x]\nlogsource: {product: test}\ndetection:\n  sel: {a: x}\n  condition: sel\n",
	"title: t\nlevel: bogus\nlogsource: {product: test}\ndetection:\n  timeframe: 5m\n  sel: {a: x}\n  condition: sel\n",
	"- a\n- b\n---\n42\n---\n\n---\ntitle: t\n",
	"title: t\n\tbad: tab\n",
	"title: \"\\xff\"\nlogsource: {product: \x00}\n",
	"%YAML 1.1\n---\ntitle: t\n...\n",
	"title: t\nid: x\nlogsource: {product: test}\ndetection:\n  sel: {a: x}\n  condition: sel\n---\ntitle: t2\nid: x\nlogsource: {product: test}\ndetection:\n  sel: {a: x}\n  condition: sel\n",
	// Filters.
	"title: f\nlogsource: {product: test}\nfilter:\n  rules: [r, r, missing]\n  sel: {User|startswith: adm_}\n  condition: not sel\n---\ntitle: r\nname: r\nlogsource: {product: test}\ndetection:\n  sel: {a: x}\n  condition: sel\n",
	"title: f\nfilter: x\n",
	"title: f\nfilter:\n  sel: {a: x}\n  condition: sel\n",
	// Correlations.
	"title: c\nname: c\ncorrelation:\n  type: event_count\n  rules: [c]\n  timespan: 5m\n  condition: {gte: 2}\n",
	"title: c\nname: c\ncorrelation:\n  type: event_count\n  rules: [missing]\n  timespan: 5m\n  condition: {gte: 2}\n",
	"title: r\nname: r\nlogsource: {product: test}\ndetection:\n  sel: {a: x}\n  condition: sel\n---\ntitle: c1\nname: c1\ncorrelation:\n  type: event_count\n  rules: [r, c2]\n  timespan: 0s\n  condition: {gte: 1}\n---\ntitle: c2\nname: c2\ncorrelation:\n  type: event_count\n  rules: [c1]\n  timespan: 99999999d\n  condition: {gte: 1}\n",
	"title: r\nname: r\nlogsource: {product: test}\ndetection:\n  sel: {a: x}\n  condition: sel\n---\ntitle: c1\nname: c1\ncorrelation:\n  type: event_count\n  rules: [r]\n  group-by: [User]\n  timespan: 9223372036s\n  condition: {lt: 3}\n---\ntitle: c2\nname: c2\ncorrelation:\n  type: value_count\n  rules: [r, c1]\n  group-by: [source.ip]\n  timespan: 1y\n  condition: {field: User, gte: 2, neq: NaN}\n",
	"title: r\nname: r\nlogsource: {product: test}\ndetection:\n  sel: {a: x}\n  condition: sel\n---\ntitle: c\nname: c\ncorrelation:\n  type: temporal_ordered\n  rules: [r, r, r]\n  aliases: {al: {r: User}, bad: x}\n  group-by: [al]\n  timespan: 10s\n---\ntitle: p\ncorrelation:\n  type: value_percentile\n  rules: [r]\n  timespan: 1h\n  condition: {field: n, gte: 101}\n",
	"title: c\ncorrelation:\n  type: value_sum\n  rules: r\n  timespan: -5m\n  condition: {field: n, gte: x}\n",
	"title: c\ncorrelation:\n  type: value_avg\n  rules: [r]\n  timeframe: 5\n  condition: [gte, 1]\n",
	"title: c\ncorrelation:\n  type: nonsense\n  rules: []\n",
}

// FuzzRule loads arbitrary rule files the way `vigil rules check` does
// (one file's documents, then filters and correlations linked): loading
// must not panic; every rejection must name the file, a line and a reason;
// the counts must add up; and the rules that compile must evaluate on a
// few fixed events (offline, as `vigil rules test` does, and online
// through the detector) without panicking.
func FuzzRule(f *testing.F) {
	for _, b := range testfiles.Read(f, "testdata/*/rule.yml", "../../rules/sigma/*.yml") {
		f.Add(b)
	}
	for _, s := range fuzzRuleSeeds {
		f.Add([]byte(s))
	}
	cfg := placeholderConfig(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		checkRuleFile(t, src, cfg)
	})
}

// maxFuzzLoad is how long loading one fuzz input may take: compiling a
// rule must stay roughly linear in its size.
const maxFuzzLoad = 3 * time.Second

func checkRuleFile(t *testing.T, src []byte, cfg *Config) *RuleSet {
	t.Helper()
	const name = "fuzz/rule.yml"
	start := time.Now()
	rs, errs := LoadBytes(name, src, cfg)
	if d := time.Since(start); d > maxFuzzLoad {
		t.Fatalf("loading %d bytes took %v", len(src), d)
	}
	checkLoadErrors(t, name, src, errs)
	if len(errs) != rs.Rejected {
		t.Fatalf("%d errors for %d rejected documents: %v", len(errs), rs.Rejected, errs)
	}
	if n := rs.Compiled() + rs.Rejected + len(rs.filters); n != rs.Total {
		t.Fatalf("total %d != compiled %d + rejected %d + filters %d", rs.Total, rs.Compiled(), rs.Rejected, len(rs.filters))
	}
	if rs.Compiled() == 0 {
		return rs
	}
	evalFuzzRules(t, rs)
	if d := time.Since(start); d > 2*maxFuzzLoad {
		t.Fatalf("loading %d bytes and evaluating %d rules on %d events took %v", len(src), rs.Compiled(), strings.Count(fuzzEvents, "\n"), d)
	}
	return rs
}

// checkLoadErrors checks that each load error says where and why.
func checkLoadErrors(t *testing.T, name string, src []byte, errs []FileError) {
	t.Helper()
	for _, e := range errs {
		if e.File != name {
			t.Errorf("error names file %q, not %q: %v", e.File, name, e)
		}
		if e.Line <= 0 {
			t.Errorf("error without a line: %v", e)
		}
		if strings.TrimSpace(e.Reason) == "" {
			t.Errorf("error without a reason: %#v", e)
		}
		if strings.Contains(e.Reason, "%!") && !bytes.Contains(src, []byte("%!")) {
			t.Errorf("badly formatted reason: %v", e)
		}
	}
}

// evalFuzzRules evaluates rs offline on fuzzEvents, line by line through
// a matcher, and online through a detector.
func evalFuzzRules(t *testing.T, rs *RuleSet) {
	t.Helper()
	res, _, err := rs.TestEvents(strings.NewReader(fuzzEvents))
	if err != nil {
		t.Fatalf("TestEvents: %v", err)
	}
	for _, r := range res {
		FormatResult(r)
	}
	m := rs.NewMatcher()
	for _, line := range strings.Split(fuzzEvents, "\n") {
		m.MatchLine([]byte(line), func(*Rule) {})
	}
	d := NewDetector(rs, DetectorOptions{MaxGroups: 4, MaxEntries: 4})
	emit := func(a vigil.Alert) {
		if a.RuleID == "" && a.Title == "" {
			t.Errorf("alert without rule id or title: %+v", a)
		}
	}
	for i, ev := range fuzzVigilEvents() {
		d.Detect(context.Background(), i%2, ev, emit)
	}
	d.Tick(context.Background(), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), emit)
	rs.Stats()
}

// fuzzCondSearches is the detection section the conditions of
// FuzzCondition refer to.
const fuzzCondSearches = `title: Condition
id: fuzz-condition
logsource:
    product: test
detection:
    sel:
        a: x
    sel2:
        b.c|contains: y
    selection_user:
        User|startswith: adm_
    _hidden:
        outcome: failure
    keywords:
        - wget
    filter:
        n|gt: 10
`

// FuzzCondition parses arbitrary conditions over a fixed set of search
// identifiers: parsing must not panic, must fail with a reason, and a
// condition that parses must compile in a rule and evaluate.
func FuzzCondition(f *testing.F) {
	for _, s := range []string{
		"sel", "sel and not sel2", "1 of sel* or all of them", "2 of selection_* and not 1 of _*",
		"(sel or sel2) and (keywords or not filter)", "all of them and 3 of them", "not not not sel",
		"sel and", "sel or or sel2", "((sel)", "sel)", "1 of", "0 of them", "x of sel*", "1 of nothing*",
		"sel | count() > 5", "unknown", "SEL AND NOT Sel2", "any of [s]el*", "1 of \\", "sel\tand\r\nsel2",
		strings.Repeat("(", 200) + "sel" + strings.Repeat(")", 200), strings.Repeat("not ", 200) + "sel",
		strings.Repeat("all of them and ", 100) + "sel",
	} {
		f.Add(s)
	}
	cfg := placeholderConfig(f)
	base, errs := LoadBytes("fuzz/condition.yml", []byte(fuzzCondSearches+"    condition: sel\n"), cfg)
	if len(errs) > 0 {
		f.Fatal(errs)
	}
	r := base.Rules[0]
	f.Fuzz(func(t *testing.T, cond string) {
		start := time.Now()
		_, err := parseCondition(cond, r.searches, r.order, new(int))
		if d := time.Since(start); d > maxFuzzLoad {
			t.Fatalf("parsing a condition of %d bytes took %v", len(cond), d)
		}
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" || strings.Contains(err.Error(), "%!") {
				t.Fatalf("condition %q: bad error %q", cond, err)
			}
		}
		// The same condition in a rule file: rejected with the same
		// reason, or compiled and evaluated.
		src := fuzzCondSearches + "    condition: " + strconv.Quote(cond) + "\n"
		rs := checkRuleFile(t, []byte(src), cfg)
		if err != nil && rs.Compiled() != 0 && utf8.ValidString(cond) {
			t.Fatalf("condition %q is rejected (%v) but its rule compiles", cond, err)
		}
	})
}
