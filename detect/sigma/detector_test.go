package sigma

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-iot/vigil"
)

func mustLoad(t *testing.T, yml string) *RuleSet {
	t.Helper()
	rs, errs := LoadBytes("test.yml", []byte(yml), nil)
	if len(errs) > 0 {
		t.Fatalf("load: %v", errs)
	}
	return rs
}

const procRule = `title: Wget download to tmp
id: 11111111-1111-1111-1111-111111111111
logsource:
    product: linux
    category: process_creation
level: high
tags:
    - attack.execution
    - attack.t1105
detection:
    selection:
        Image|endswith: '/wget'
        CommandLine|contains: '/tmp/'
    filter:
        User: 'updater'
    condition: selection and not filter
`

func procEvent(img, cmd string) *vigil.Event {
	return &vigil.Event{
		ID: "ev-1", Time: time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC), DeviceID: "cam-7", Kind: vigil.KindProcess,
		Network: &vigil.Network{SrcIP: netip.MustParseAddr("10.0.0.7")},
		Fields:  map[string]any{"process.executable": img, "process.command_line": cmd},
	}
}

func TestDetectorRoutesByKindAndMapsFields(t *testing.T) {
	reg := prometheus.NewRegistry()
	d := NewDetector(mustLoad(t, procRule), DetectorOptions{Registerer: reg})
	var got []vigil.Alert
	emit := func(a vigil.Alert) { got = append(got, a) }

	d.Detect(context.Background(), 0, procEvent("/usr/bin/wget", "wget http://x/m -O /tmp/m"), emit)
	if len(got) != 1 {
		t.Fatalf("alerts = %d, want 1", len(got))
	}
	a := got[0]
	if a.RuleID != "11111111-1111-1111-1111-111111111111" || a.Title != "Wget download to tmp" || a.Severity != vigil.SeverityHigh ||
		a.Detector != "sigma" || a.DeviceID != "cam-7" || len(a.EventIDs) != 1 || a.EventIDs[0] != "ev-1" {
		t.Errorf("alert = %+v", a)
	}
	if len(a.Techniques) != 1 || a.Techniques[0] != "T1105" {
		t.Errorf("techniques = %v", a.Techniques)
	}
	if strings.Join(a.Entities, ",") != "ip:10.0.0.7,process:/usr/bin/wget" {
		t.Errorf("entities = %v", a.Entities)
	}

	// The filter's field is absent above; present and matching, it
	// suppresses the alert.
	got = nil
	ev := procEvent("/usr/bin/wget", "wget http://x/m -O /tmp/m")
	ev.Fields["user.name"] = "updater"
	d.Detect(context.Background(), 0, ev, emit)
	if len(got) != 0 {
		t.Errorf("filtered event alerted: %+v", got)
	}

	// Another kind is another logsource: the rule does not see it.
	ev = procEvent("/usr/bin/wget", "wget http://x/m -O /tmp/m")
	ev.Kind = vigil.KindNetwork
	d.Detect(context.Background(), 1, ev, emit)
	if len(got) != 0 {
		t.Errorf("network event alerted: %+v", got)
	}

	// logsource.* fields take precedence over the kind.
	ev.Fields["logsource.product"] = "linux"
	ev.Fields["logsource.category"] = "process_creation"
	d.Detect(context.Background(), 1, ev, emit)
	if len(got) != 1 {
		t.Errorf("event with logsource fields: alerts = %d, want 1", len(got))
	}

	// Disabled by tag: no alert.
	if n := d.RuleSet().SetEnabled("tag:attack.t1105", false); n != 1 {
		t.Fatalf("SetEnabled changed %d rules", n)
	}
	got = nil
	d.Detect(context.Background(), 0, procEvent("/usr/bin/wget", "wget -O /tmp/m"), emit)
	if len(got) != 0 {
		t.Errorf("disabled rule alerted")
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "vigil_sigma_rule_matches_total" {
			found = mf.GetMetric()[0].GetCounter().GetValue() == 2
		}
	}
	if !found {
		t.Errorf("vigil_sigma_rule_matches_total not 2")
	}
}

func TestDetectStreamRoutesByLogsource(t *testing.T) {
	rs := mustLoad(t, procRule)
	in := strings.Join([]string{
		`{"logsource.product":"linux","logsource.category":"process_creation","Image":"/usr/bin/wget","CommandLine":"wget -O /tmp/x","device_id":"d1","id":"e1"}`,
		`{"logsource":{"product":"linux","category":"process_creation"},"Image":"/usr/bin/wget","CommandLine":"wget -O /tmp/y"}`,
		`{"logsource.category":"webserver","Image":"/usr/bin/wget","CommandLine":"wget -O /tmp/x"}`,
		`{"logsource.product":"linux","logsource.category":"process_creation","Image":"/usr/bin/wget","CommandLine":"wget -O /tmp/x","User":"updater"}`,
		`not json`,
		`{"kind":"process","process":{"executable":"/bin/wget","command_line":"wget /tmp/z"}}`,
	}, "\n")
	var out bytes.Buffer
	st, err := DetectStream(strings.NewReader(in), &out, rs)
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 5 || st.Matches != 3 || st.BadLines != 1 {
		t.Errorf("stats = %+v, want 5 events, 3 matches, 1 bad line", st)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var a struct {
		vigil.Alert
		Line int `json:"line"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &a); err != nil {
		t.Fatal(err)
	}
	if a.Line != 1 || a.DeviceID != "d1" || a.EventIDs[0] != "e1" || a.RuleID != "11111111-1111-1111-1111-111111111111" {
		t.Errorf("first alert = %+v", a)
	}
	if !regexp.MustCompile(`^detect: events=5 matches=3 seconds=[0-9.]+ events_per_second=[0-9]+$`).MatchString(st.String()) {
		t.Errorf("summary = %q", st.String())
	}
}

func TestTestEventsExplains(t *testing.T) {
	rs := mustLoad(t, procRule)
	res, matched, err := rs.TestEvents(strings.NewReader(`{"Image":"/usr/bin/wget","CommandLine":"wget /tmp/x","User":"updater"}` + "\n" +
		`{"Image":"/usr/bin/wget","CommandLine":"wget /tmp/x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if matched != 1 || len(res) != 2 {
		t.Fatalf("matched=%d results=%d", matched, len(res))
	}
	if res[0].Matched || strings.Join(res[0].Selections, ",") != "selection,filter" {
		t.Errorf("first = %+v", res[0])
	}
	if !res[1].Matched || strings.Join(res[1].Selections, ",") != "selection" {
		t.Errorf("second = %+v", res[1])
	}
}

func TestAppendAlertMatchesEncodingJSON(t *testing.T) {
	a := vigil.Alert{ID: "x", DedupKey: "k", Detector: "sigma", RuleID: "r", Title: "T \"q\" <b> \x01 é \xff", Severity: vigil.SeverityHigh,
		Tags: []string{"attack.t1105"}, Techniques: []string{"T1105"}, DeviceID: "d", Entities: []string{"ip:1"}, EventIDs: []string{"e"},
		FirstEventTime: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)), Count: 1}
	got := appendAlert(nil, &a, 7, "high")
	var x, y map[string]any
	if err := json.Unmarshal(got, &x); err != nil {
		t.Fatalf("%v: %s", err, got)
	}
	want, _ := json.Marshal(streamAlert{Alert: a, Line: 7, Level: "high"})
	json.Unmarshal(want, &y)
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	if string(xb) != string(yb) {
		t.Errorf("got  %s\nwant %s", xb, yb)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "good.yml"), []byte(procRule), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.yml"), []byte("title: Bad\nlogsource: {product: linux}\ndetection:\n    sel:\n        A|nope: x\n    condition: sel\n"), 0o644)
	_, res := Check([]string{dir}, nil)
	if res.Summary() != "rules: total=2 compiled=1 rejected=1" || len(res.Errors) != 1 || res.Errors[0].Line != 5 {
		t.Fatalf("check = %+v", res)
	}
}

func TestEventTimeAndEventJSONShape(t *testing.T) {
	rs := mustLoad(t, `title: Night config change
id: 33333333-0000-0000-0000-000000000001
logsource:
    product: vigil
    category: config
detection:
    selection:
        action: modify
        source.ip|cidr: 10.0.0.0/8
        config.path|endswith: '/network'
        time|hour|lt: 5
    condition: selection
`)
	ev := vigil.Event{ID: "e9", Time: time.Date(2026, 3, 1, 3, 30, 0, 0, time.UTC), DeviceID: "gw", Kind: vigil.KindConfig, Action: "modify",
		Network: &vigil.Network{SrcIP: netip.MustParseAddr("10.1.2.3")}, Fields: map[string]any{"config.path": "/etc/config/network"}}
	n := 0
	NewDetector(rs, DetectorOptions{}).Detect(context.Background(), 0, &ev, func(vigil.Alert) { n++ })
	if n != 1 {
		t.Errorf("online: %d alerts, want 1 (time exposed as the time field)", n)
	}
	// Offline, a marshaled vigil.Event is read with Vigil's field names.
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	st, err := DetectStream(bytes.NewReader(b), &out, rs)
	if err != nil || st.Matches != 1 {
		t.Fatalf("offline on %s: %+v %v", b, st, err)
	}
	if !strings.Contains(out.String(), `"device_id":"gw"`) || !strings.Contains(out.String(), `"event_ids":["e9"]`) {
		t.Errorf("alert = %s", out.String())
	}
	ev.Time = ev.Time.Add(3 * time.Hour)
	n = 0
	NewDetector(rs, DetectorOptions{}).Detect(context.Background(), 0, &ev, func(vigil.Alert) { n++ })
	if n != 0 {
		t.Errorf("06:30: %d alerts, want 0", n)
	}
}

func TestDetectorConcurrentPartitions(t *testing.T) {
	d := NewDetector(mustLoad(t, procRule), DetectorOptions{})
	done := make(chan int)
	for p := 0; p < 4; p++ {
		go func(p int) {
			n := 0
			for i := 0; i < 200; i++ {
				ev := procEvent("/usr/bin/wget", fmt.Sprintf("wget -O /tmp/%d", i))
				if i%2 == 1 {
					ev.Kind = vigil.KindNetwork
				}
				d.Detect(context.Background(), p, ev, func(vigil.Alert) { n++ })
			}
			done <- n
		}(p)
	}
	for p := 0; p < 4; p++ {
		if n := <-done; n != 100 {
			t.Errorf("partition alerts = %d, want 100", n)
		}
	}
}

func TestDeepNestingIsABadLine(t *testing.T) {
	rs := mustLoad(t, procRule)
	deep := `{"a":` + strings.Repeat(`[`, 100000) + strings.Repeat(`]`, 100000) + "}\n"
	st, err := DetectStream(strings.NewReader(deep+`{"Image":"x"}`+"\n"), io.Discard, rs)
	if err != nil || st.BadLines != 1 || st.Events != 1 {
		t.Errorf("stats = %+v, err = %v", st, err)
	}
}

func TestDetectStreamFileMatchesReader(t *testing.T) {
	rs := mustLoad(t, procRule)
	in := `{"logsource.product":"linux","logsource.category":"process_creation","Image":"/usr/bin/wget","CommandLine":"wget -O /tmp/x"}` + "\n\n" +
		"bad\n" + `{"logsource.product":"linux","logsource.category":"process_creation","Image":"/bin/wget","CommandLine":"wget /tmp/y"}`
	file := filepath.Join(t.TempDir(), "ev.jsonl")
	if err := os.WriteFile(file, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var a, b bytes.Buffer
	sa, err := DetectStream(f, &a, rs)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := DetectStream(strings.NewReader(in), &b, rs)
	if err != nil {
		t.Fatal(err)
	}
	if sa.Events != 2 || sa.Matches != 2 || sa.BadLines != 1 || sa.Events != sb.Events || sa.Matches != sb.Matches || sa.FirstBad != sb.FirstBad {
		t.Errorf("file %+v, reader %+v", sa, sb)
	}
	if !strings.Contains(a.String(), `"line":4`) || !strings.Contains(b.String(), `"line":4`) {
		t.Errorf("line numbers: file %s reader %s", a.String(), b.String())
	}
}

// alertFor builds, the slow way, the alert DetectStream writes for rule r
// on the matcher's current event (the reference for matchWriter).
func (m *Matcher) alertFor(r *Rule, now time.Time) vigil.Alert {
	a := ruleAlert(r)
	a.ID, a.Created = vigil.NewID(), now
	a.DeviceID = strings.Clone(m.str(slotDevice))
	if id := m.str(slotEventID); id != "" {
		a.EventIDs = []string{strings.Clone(id)}
	}
	if t, ok := m.times.eventTime(m.str(slotTime)); ok {
		a.FirstEventTime, a.LastEventTime = t, t
	}
	a.Entities = m.entities()
	a.DedupKey = a.RuleID + "|" + a.DeviceID
	return a
}

// TestMatchWriterAgreesWithEncodingJSON checks DetectStream's direct alert
// encoding against encoding/json of the alert built field by field.
func TestMatchWriterAgreesWithEncodingJSON(t *testing.T) {
	rule := "title: T \"q\" <b>\nid: 5d8e0a8f-0000-4000-8000-000000000001\nlevel: high\ntags: [attack.t1105, attack.execution]\n" +
		"logsource: {category: webserver}\ndetection:\n  sel: {cs-uri-query|contains: 'cmd='}\n  condition: sel\n"
	rs, errs := LoadBytes("r.yml", []byte(rule), nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	for _, line := range []string{
		`{"logsource.category":"webserver","cs-uri-query":"a=1&cmd=id","device_id":"dev-\"1","c-ip":"10.0.0.1","User":"bob","host":"gw","id":"e1","@timestamp":"2026-08-21T01:22:14.987Z"}`,
		`{"logsource.category":"webserver","cs-uri-query":"cmd=x"}`,
	} {
		m := rs.NewMatcher()
		mw := newMatchWriter(rs, now)
		var got []byte
		n, err := m.MatchLine([]byte(line), func(r *Rule) {
			why := m.explainLine(r)
			var err error
			if got, err = mw.append(got, m, r, 3, why); err != nil {
				t.Fatal(err)
			}
			a := m.alertFor(r, now)
			a.ID, a.Explanation = "", why
			want, _ := json.Marshal(streamAlert{Alert: a, Line: 3, Level: r.Level})
			var x, y map[string]any
			if err := json.Unmarshal(got, &x); err != nil {
				t.Fatalf("%v: %s", err, got)
			}
			if id, _ := x["id"].(string); len(id) != 32 {
				t.Errorf("id %q", id)
			}
			x["id"] = ""
			json.Unmarshal(want, &y)
			xb, _ := json.Marshal(x)
			yb, _ := json.Marshal(y)
			if string(xb) != string(yb) {
				t.Errorf("got  %s\nwant %s", xb, yb)
			}
		})
		if err != nil || n != 1 {
			t.Fatalf("%s: matches %d, %v", line, n, err)
		}
	}
}

// TestOncePer checks Vigil's once_per attribute: the alert's dedup key
// holds the device and the named fields' values (a long value as its
// hash), the values are shown in the alert's fields, and the alert is
// UntilCleared. once_per that is not a list of names is a load error.
func TestOncePer(t *testing.T) {
	rs := mustLoad(t, strings.Replace(procRule, "level: high\n", "level: high\nonce_per:\n    - process.executable\n    - user.name\n", 1))
	d := NewDetector(rs, DetectorOptions{})
	var got []vigil.Alert
	for _, img := range []string{"/usr/bin/wget", "/usr/bin/wget", "/" + strings.Repeat("a", 300) + "/wget"} {
		d.Detect(context.Background(), 0, procEvent(img, "wget -O /tmp/x"), func(a vigil.Alert) { got = append(got, a) })
	}
	if len(got) != 3 {
		t.Fatalf("%d alerts, want 3", len(got))
	}
	want := "sigma|11111111-1111-1111-1111-111111111111|cam-7|process.executable=/usr/bin/wget|user.name="
	if got[0].DedupKey != want || got[1].DedupKey != want || !got[0].UntilCleared || got[0].Fields["process.executable"] != "/usr/bin/wget" {
		t.Errorf("alert: key %q until_cleared %v fields %v; want key %q", got[0].DedupKey, got[0].UntilCleared, got[0].Fields, want)
	}
	if k := got[2].DedupKey; len(k) > 200 || !strings.Contains(k, "process.executable=sha256:") {
		t.Errorf("a long value went into the key as it is: %q", k)
	}
	// refire overrides: once per key within the window only; until
	// cleared without once_per.
	for _, c := range []struct {
		extra string
		until bool
	}{{"once_per: [user.name]\nrefire: window\n", false}, {"refire: until_cleared\n", true}, {"refire: window\n", false}, {"", false}} {
		d := NewDetector(mustLoad(t, strings.Replace(procRule, "level: high\n", "level: high\n"+c.extra, 1)), DetectorOptions{})
		var a vigil.Alert
		d.Detect(context.Background(), 0, procEvent("/usr/bin/wget", "wget -O /tmp/x"), func(x vigil.Alert) { a = x })
		if a.UntilCleared != c.until {
			t.Errorf("%q: until_cleared %v, want %v", c.extra, a.UntilCleared, c.until)
		}
	}
	if _, errs := LoadBytes("bad.yml", []byte(strings.Replace(procRule, "level: high\n", "level: high\nrefire: forever\n", 1)), nil); len(errs) == 0 ||
		!strings.Contains(errs[0].Error(), "refire must be window or until_cleared") {
		t.Errorf("refire: forever: errors %v", errs)
	}
	for _, bad := range []string{"once_per: process.executable\n", "once_per:\n    - a\n    - [b]\n", "once_per:\n    - ''\n"} {
		_, errs := LoadBytes("bad.yml", []byte(strings.Replace(procRule, "level: high\n", "level: high\n"+bad, 1)), nil)
		if len(errs) == 0 || !strings.Contains(errs[0].Error(), "once_per must be a list of field names") {
			t.Errorf("%q: errors %v, want once_per must be a list", bad, errs)
		}
	}
}
