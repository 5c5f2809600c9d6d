package cloudtrail_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect/sigma"
	"github.com/vigil-iot/vigil/ingest/cloudtrail"
)

// readAll converts a whole input.
func readAll(t testing.TB, name string, b []byte) ([]vigil.Event, []error) {
	t.Helper()
	r := cloudtrail.NewReader(bytes.NewReader(b), name)
	var evs []vigil.Event
	var bad []error
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return evs, bad
		}
		var re *cloudtrail.RecordError
		if errors.As(err, &re) {
			bad = append(bad, err)
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		evs = append(evs, ev)
	}
}

func readFile(t *testing.T, name string) []vigil.Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	evs, bad := readAll(t, name, b)
	if len(bad) > 0 {
		t.Fatalf("bad records: %v", bad)
	}
	return evs
}

// TestTakeoverStory reads a CloudTrail log file ({"Records":[...]}, as
// CloudTrail delivers it) of a console takeover: a known login, failed
// and successful logins from a new address without MFA, a new device
// certificate with a policy, a certificate revoked, a firmware job on many
// things, then the trail stopped.
func TestTakeoverStory(t *testing.T) {
	evs := readFile(t, "takeover.json")
	if len(evs) != 9 {
		t.Fatalf("%d events, want 9", len(evs))
	}
	var actions []string
	for _, ev := range evs {
		actions = append(actions, ev.Action)
		if ev.Kind != "cloud" || ev.Source != "cloudtrail" {
			t.Errorf("%s: kind %q source %q", ev.Action, ev.Kind, ev.Source)
		}
		if ev.Fields["cloud.provider"] != "aws" || ev.Fields["cloud.account.id"] != "111122223333" || ev.Fields["cloud.region"] != "us-east-1" {
			t.Errorf("%s: cloud fields %v %v %v", ev.Action, ev.Fields["cloud.provider"], ev.Fields["cloud.account.id"], ev.Fields["cloud.region"])
		}
		if ev.Fields["user.name"] != "fleet-admin" {
			t.Errorf("%s: user.name %v", ev.Action, ev.Fields["user.name"])
		}
	}
	want := "ConsoleLogin ConsoleLogin ConsoleLogin CreateKeysAndCertificate AttachPolicy AttachThingPrincipal UpdateCertificate CreateJob StopLogging"
	if got := strings.Join(actions, " "); got != want {
		t.Fatalf("actions %s\nwant %s", got, want)
	}

	login := evs[0]
	if !login.Time.Equal(time.Date(2026, 3, 2, 8, 1, 12, 0, time.UTC)) || login.Category != "authentication" || login.Outcome != "success" ||
		login.ID != "cloudtrail-3fcfb47f-0001-4f3b-9b3b-1b2a3c4d5e01" {
		t.Errorf("login: %+v", login)
	}
	if ip, _ := login.Field("source.ip"); ip != "198.51.100.20" {
		t.Errorf("login source.ip %v", ip)
	}
	if login.Fields["user.id"] != "AIDACKCEVSQ6C2EXAMPLE" || login.Fields["event.provider"] != "signin.amazonaws.com" ||
		!strings.HasPrefix(login.Fields["user_agent.original"].(string), "Mozilla/5.0 (X11") {
		t.Errorf("login fields %v", login.Fields)
	}
	// CloudTrail's own names, flattened, as SigmaHQ rules use them.
	for k, v := range map[string]any{
		"eventName": "ConsoleLogin", "eventSource": "signin.amazonaws.com", "userIdentity.type": "IAMUser",
		"responseElements.ConsoleLogin": "Success", "additionalEventData.MFAUsed": "Yes", "sourceIPAddress": "198.51.100.20",
		"managementEvent": true, "responseElements": `{"ConsoleLogin":"Success"}`,
	} {
		if login.Fields[k] != v {
			t.Errorf("login %s = %#v, want %#v", k, login.Fields[k], v)
		}
	}
	if _, ok := login.Fields["requestParameters"]; ok {
		t.Error("requestParameters null: want no field")
	}

	failed := evs[1]
	if failed.Outcome != "failure" || failed.Fields["error.message"] != "Failed authentication" {
		t.Errorf("failed login: outcome %q fields %v", failed.Outcome, failed.Fields)
	}
	if evs[3].Fields["requestParameters.setAsActive"] != true || evs[3].Fields["responseElements.keyPair"] != "HIDDEN_DUE_TO_SECURITY_REASONS" {
		t.Errorf("CreateKeysAndCertificate %v", evs[3].Fields)
	}
	if evs[5].DeviceID != "pump-07" {
		t.Errorf("AttachThingPrincipal device %q, want pump-07", evs[5].DeviceID)
	}
	if evs[6].Fields["requestParameters.newStatus"] != "REVOKED" || evs[6].Category != "configuration" {
		t.Errorf("UpdateCertificate %v", evs[6].Fields)
	}
	job := evs[7]
	things, _ := job.Fields["aws.iot.things"].([]string)
	if strings.Join(things, ",") != "pump-01,pump-02,pump-03,pump-04" || job.Fields["aws.iot.target_count"] != float64(5) || job.DeviceID != "" {
		t.Errorf("CreateJob things %v count %v device %q", job.Fields["aws.iot.things"], job.Fields["aws.iot.target_count"], job.DeviceID)
	}
	if g, _ := job.Fields["aws.iot.thing_groups"].([]string); len(g) != 1 || g[0] != "plant-a-valves" {
		t.Errorf("CreateJob groups %v", job.Fields["aws.iot.thing_groups"])
	}
	if tg, _ := job.Fields["requestParameters.targets"].([]string); len(tg) != 5 {
		t.Errorf("requestParameters.targets %v", job.Fields["requestParameters.targets"])
	}
}

// TestForms: the same record as a single record, as NDJSON, pretty
// printed, in an EventBridge envelope and in a JSON array.
func TestForms(t *testing.T) {
	rec := `{"eventTime":"2026-03-02T22:46:00Z","eventSource":"iot.amazonaws.com","eventName":"UpdateCertificate","userIdentity":{"type":"IAMUser","userName":"a"},"requestParameters":{"certificateId":"c1","newStatus":"REVOKED"}}`
	pretty := "{\n  \"eventTime\": \"2026-03-02T22:46:00Z\",\n  \"eventSource\": \"iot.amazonaws.com\",\n  \"eventName\": \"UpdateCertificate\",\n  \"requestParameters\": {\n    \"newStatus\": \"REVOKED\"\n  }\n}\n"
	for name, in := range map[string]string{
		"ndjson":      rec + "\n" + rec + "\n",
		"pretty":      pretty + pretty,
		"eventbridge": `{"version":"0","id":"x","detail-type":"AWS API Call via CloudTrail","source":"aws.iot","detail":` + rec + "}\n" + rec,
		"array":       "[" + rec + ",\n" + rec + "]",
		"records":     `{"Records":[` + rec + "," + rec + "]}",
	} {
		evs, bad := readAll(t, name, []byte(in))
		if len(bad) > 0 || len(evs) != 2 {
			t.Errorf("%s: %d events, bad %v", name, len(evs), bad)
			continue
		}
		for _, ev := range evs {
			if ev.Action != "UpdateCertificate" || ev.Fields["requestParameters.newStatus"] != "REVOKED" {
				t.Errorf("%s: %+v", name, ev)
			}
		}
	}
	ev, err := cloudtrail.ParseRecord([]byte(rec))
	if err != nil || ev.Fields["user.name"] != "a" {
		t.Fatalf("ParseRecord: %v %v", err, ev.Fields)
	}
}

// TestBadRecords: each bad record is reported with where and what, and
// the records after it are still read.
func TestBadRecords(t *testing.T) {
	good := `{"eventTime":"2026-03-02T22:46:00Z","eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity"}`
	in := strings.Join([]string{
		good,
		`{"eventTime":"yesterday","eventSource":"s","eventName":"n"}`,
		`{"eventSource":"s","eventName":"n"}`,
		`{"eventTime":"2026-03-02T22:46:00Z","eventSource":"s"`, // cut
		`{"Records":[1,` + good + `]}`,
		`{"Records":"x"}`,
		`not json`,
		good,
	}, "\n")
	evs, bad := readAll(t, "in.json", []byte(in))
	if len(evs) != 3 {
		t.Errorf("%d events, want 3", len(evs))
	}
	var msgs []string
	for _, e := range bad {
		msgs = append(msgs, e.Error())
	}
	got := strings.Join(msgs, "\n")
	for _, want := range []string{
		`in.json:2: eventTime "yesterday": not an RFC 3339 time`,
		`in.json:3: eventTime: missing`,
		`in.json:4: not a JSON object`,
		`in.json:5: Records[0]: not a JSON object`,
		`in.json:6: Records: not an array`,
		`in.json:7: not a JSON object`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
}

// TestLimits: a record with more fields than MaxFields keeps MaxFields
// and says it was cut.
func TestLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"eventTime":"2026-03-02T22:46:00Z","eventSource":"s","eventName":"n","requestParameters":{`)
	for i := 0; i < cloudtrail.MaxFields+10; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `_` + itoa(i) + `":1`)
	}
	b.WriteString("}}")
	ev, err := cloudtrail.ParseRecord([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Fields["cloudtrail.truncated"] != true || len(ev.Fields) > cloudtrail.MaxFields+20 {
		t.Errorf("truncated %v, %d fields", ev.Fields["cloudtrail.truncated"], len(ev.Fields))
	}
}

func itoa(i int) string {
	s := ""
	for {
		s = string(rune('0'+i%10)) + s
		i /= 10
		if i == 0 {
			return s
		}
	}
}

// sigmaDirs are the SigmaHQ AWS CloudTrail rules of the corpus.
var sigmaDirs = []string{
	"../../../shared/corpus/sigma/rules/cloud/aws/cloudtrail",
	"../../../shared/corpus/sigma/rules-placeholder/cloud/aws/cloudtrail",
}

func loadSigmaHQ(t *testing.T) (*sigma.RuleSet, int) {
	t.Helper()
	files := 0
	for _, d := range sigmaDirs {
		m, err := filepath.Glob(filepath.Join(d, "*.yml"))
		if err != nil || len(m) == 0 {
			t.Skipf("the SigmaHQ corpus is absent (%s): skipping", d)
		}
		files += len(m)
	}
	// The fleet admin's usual address is legitimate: the placeholder
	// rule's filter (src_ip, mapped to source.ip) leaves it out.
	cfg, err := sigma.ParseConfig([]byte("placeholders:\n  Legitimate_IP_Ranges: ['198.51.100.20']\n"))
	if err != nil {
		t.Fatal(err)
	}
	rs, errs := sigma.LoadDirs(sigmaDirs, cfg)
	for _, e := range errs {
		t.Errorf("%s:%d: %s: %s", e.File, e.Line, e.Rule, e.Reason)
	}
	return rs, files
}

// matches returns the base names of the rule files that match ev, routed
// as the online detector routes it (by its kind).
func matches(rs *sigma.RuleSet, m *sigma.Matcher, ev *vigil.Event) []string {
	var got []string
	rs.MatchEvent(m, ev, func(r *sigma.Rule) {
		got = append(got, strings.TrimSuffix(filepath.Base(r.File), ".yml"))
	})
	sort.Strings(got)
	return got
}

// TestSigmaHQCloudTrailRules: every SigmaHQ CloudTrail rule of the corpus
// compiles, and rules match their own intended events, both online
// (vigil.Event routed by kind) and offline (the events as NDJSON, as
// `vigil ingest | vigil detect --input -` gives them).
func TestSigmaHQCloudTrailRules(t *testing.T) {
	rs, files := loadSigmaHQ(t)
	if len(rs.Rules) != files {
		t.Errorf("%d rules compiled from %d files", len(rs.Rules), files)
	}
	m := rs.NewMatcher()
	want := map[string]string{
		// takeover.json
		"ConsoleLogin 0":      "",
		"ConsoleLogin 1":      "aws_cloudtrail_console_login_failed_authentication",
		"ConsoleLogin 2":      "aws_cloudtrail_console_login_success_from_susp_locations aws_cloudtrail_console_login_success_without_mfa",
		"StopLogging 8":       "aws_cloudtrail_disable_logging",
		"CreateJob 7":         "",
		"UpdateCertificate 6": "",
		// sigma_positives.ndjson
		"ModifyInstanceAttribute 0":         "aws_ec2_startup_script_change",
		"PutBucketVersioning 1":             "aws_disable_bucket_versioning",
		"RegisterTaskDefinition 2":          "aws_ecs_task_definition_cred_endpoint_query aws_sts_assumerole_misuse",
		"RestoreDBInstanceFromDBSnapshot 3": "aws_rds_public_db_restore",
		"UpdateDetector 4":                  "aws_cloudtrail_guardduty_detector_deleted_or_updated",
		"ConsoleLogin 5":                    "aws_cloudtrail_console_login_success_from_susp_locations aws_root_account_usage",
	}
	var lines []byte
	seen := 0
	for _, file := range []string{"takeover.json", "sigma_positives.ndjson"} {
		for i, ev := range readFile(t, file) {
			var err error
			if lines, err = ev.AppendJSON(lines, true); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, '\n')
			key := ev.Action + " " + itoa(i)
			w, ok := want[key]
			if !ok {
				continue
			}
			seen++
			if got := strings.Join(matches(rs, m, &ev), " "); got != w {
				t.Errorf("%s %s: matched [%s], want [%s]", file, key, got, w)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("checked %d events, want %d", seen, len(want))
	}
	// Offline: the NDJSON scan finds the same matches.
	res, _, err := rs.TestEvents(bytes.NewReader(lines))
	if err != nil {
		t.Fatal(err)
	}
	offline := map[string]bool{}
	for _, r := range res {
		if r.Error != "" {
			t.Errorf("line %d: %s", r.Line, r.Error)
		}
		if r.Matched {
			offline[itoa(r.Line)+" "+r.Title] = true
		}
	}
	for _, line := range []int{2, 3, 9, 10, 11, 12, 13, 14, 15} {
		n := 0
		for k := range offline {
			if strings.HasPrefix(k, itoa(line)+" ") {
				n++
			}
		}
		if n == 0 {
			t.Errorf("offline: line %d matched no rule", line)
		}
	}
}
