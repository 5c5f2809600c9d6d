package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIngestCloudTrailThenDetect: vigil ingest reads a gzipped CloudTrail
// log file and an NDJSON export (formats guessed), with one bad record,
// and vigil detect runs the corpus's SigmaHQ CloudTrail rules on the
// events: the console takeover story alerts.
func TestIngestCloudTrailThenDetect(t *testing.T) {
	rules := filepath.Join("..", "..", "..", "shared", "corpus", "sigma", "rules", "cloud", "aws", "cloudtrail")
	if _, err := os.Stat(rules); err != nil {
		t.Skipf("the SigmaHQ corpus is absent (%s): %v", rules, err)
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "ingest", "cloudtrail", "testdata", "takeover.json"))
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(b)
	zw.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "111122223333_CloudTrail_us-east-1_20260302T2250Z_x.json.gz")
	if err := os.WriteFile(file, gz.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	ndjson := writeTemp(t, "export.json", `{"eventTime":"2026-03-03T10:05:00Z","eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity","userAgent":"TruffleHog","userIdentity":{"type":"IAMUser","userName":"ci"}}
{"eventTime":"later","eventSource":"sts.amazonaws.com","eventName":"GetCallerIdentity"}
`)
	events := filepath.Join(dir, "events.jsonl")
	out, code := run(t, "ingest", file, ndjson, "--output", events)
	if code != 1 || !strings.Contains(out, "ingest: files=2 records=11 events=10 skipped=0 bad=1") || !strings.Contains(out, `export.json:2: eventTime "later"`) {
		t.Fatalf("ingest: exit %d\n%s", code, out)
	}
	out, code = run(t, "detect", "--no-explain", "--rules", rules, "--input", events)
	if code != 0 {
		t.Fatalf("detect: exit %d\n%s", code, out)
	}
	for _, want := range []string{"AWS ConsoleLogin Failed Authentication", "AWS Successful Console Login Without MFA", "AWS CloudTrail Important Change", "PUA - AWS TruffleHog Execution", "matches=5"} {
		if !strings.Contains(out, want) {
			t.Errorf("detect output lacks %q:\n%s", want, out)
		}
	}
}

// TestGuessCloudTrail: CloudTrail's and Azure's forms are guessed, others are not
// taken for it.
func TestGuessCloudTrail(t *testing.T) {
	for in, want := range map[string]string{
		`{"Records":[{"eventVersion":"1.08"}]}`:                                                               "cloudtrail",
		`{"eventTime":"2026-03-03T10:05:00Z","eventSource":"s","eventName":"n"}`:                              "cloudtrail",
		"{\n  \"eventTime\": \"2026-03-03T10:05:00Z\",\n  \"eventSource\": \"s\",\n  \"eventName\": \"n\"\n}": "cloudtrail",
		`{"timestamp":"2026-03-01T10:00:03Z","event_type":"alert"}`:                                           "suricata",
		`{"records":[{"time":"2026-03-04T08:05:30Z"}]}`:                                                       "azure",
		`{"time":"2026-03-04T08:05:30Z","resourceId":"/x","operationName":"o","category":"Administrative"}`:   "azure",
		"[\n  {\n    \"protoPayload\": {},\n    \"logName\": \"projects/p/logs/x\"\n  }\n]":                   "gcp",
		`{"protoPayload":{"methodName":"m"},"logName":"projects/p/logs/x"}`:                                   "gcp",
		`{"kind":"auth","eventName":"x"}`:                                                                     "ndjson",
		`{"data":[{"createdTime":1,"actionType":"LOGIN"}],"hasNext":false}`:                                   "thingsboard",
		"{\"data\":[\n{\"id\":{},\"createdTime\":1,\"actionType\":\"LOGIN\"}]}":                               "thingsboard",
		`{"id":{},"createdTime":1772440890000,"actionType":"ATTRIBUTES_UPDATED"}`:                             "thingsboard",
	} {
		got, err := guessFormat([]byte(in))
		if got != want {
			t.Errorf("%.40q: %q %v, want %q", in, got, err, want)
		}
	}
}

// TestIngestGCPThenDetect: vigil ingest reads gcloud's JSON array and a
// sink's NDJSON export (formats guessed) and vigil detect runs the
// corpus's SigmaHQ GCP rules on the events.
func TestIngestGCPThenDetect(t *testing.T) {
	rules := filepath.Join("..", "..", "..", "shared", "corpus", "sigma", "rules", "cloud", "gcp", "audit")
	if _, err := os.Stat(rules); err != nil {
		t.Skipf("the SigmaHQ corpus is absent (%s): %v", rules, err)
	}
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	story := filepath.Join("..", "..", "ingest", "gcp", "testdata", "iot_story.json")
	pos := filepath.Join("..", "..", "ingest", "gcp", "testdata", "sigma_positives.ndjson")
	out, code := run(t, "ingest", story, pos, "--output", events)
	if code != 0 || !strings.Contains(out, "ingest: files=2 records=15 events=15 skipped=0 bad=0") {
		t.Fatalf("ingest: exit %d\n%s", code, out)
	}
	b, _ := os.ReadFile(events)
	if !strings.Contains(string(b), `"device_id":"pump-07"`) {
		t.Errorf("no event of device pump-07:\n%.2000s", b)
	}
	out, code = run(t, "detect", "--no-explain", "--rules", rules, "--input", events)
	if code != 0 {
		t.Fatalf("detect: exit %d\n%s", code, out)
	}
	for _, want := range []string{"Google Cloud Firewall Modified or Deleted", "Google Cloud Storage Buckets Modified or Deleted", "Google Cloud Kubernetes Secrets Modified or Deleted", "matches=10"} {
		if !strings.Contains(out, want) {
			t.Errorf("detect output lacks %q:\n%s", want, out)
		}
	}
}

// TestIngestThingsBoard: vigil ingest reads a page of ThingsBoard's audit
// log (format guessed): the attribute update of a device is a twin event
// with the device's name as its id, the login a cloud event.
func TestIngestThingsBoard(t *testing.T) {
	file := filepath.Join("..", "..", "ingest", "thingsboard", "testdata", "audit.json")
	events := filepath.Join(t.TempDir(), "events.jsonl")
	out, code := run(t, "ingest", file, "--output", events)
	if code != 0 || !strings.Contains(out, "ingest: files=1 records=4 events=4 skipped=0 bad=0") {
		t.Fatalf("ingest: exit %d\n%s", code, out)
	}
	b, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"device_id":"boiler-3","source":"thingsboard","kind":"twin"`, `"twin.desired.setpoint":85`, `"category":"authentication","action":"login"`} {
		if !strings.Contains(s, want) {
			t.Errorf("events lack %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "A1_TEST_TOKEN") {
		t.Error("a device's access token was passed on")
	}
}

// TestIngestThingsBoardThenDetect: the ThingsBoard takeover story
// (ingest/thingsboard/testdata/takeover.json: ten days of the tenant
// admin's logins and setpoint changes between 19 and 23, then a login
// from a new network, the boiler's setpoint set to 85 and its credentials
// changed) through vigil ingest and vigil detect with the whole set: the
// new-place login, the out-of-range setpoint and the correlation of the
// two (one partition offline).
func TestIngestThingsBoardThenDetect(t *testing.T) {
	file := filepath.Join("..", "..", "ingest", "thingsboard", "testdata", "takeover.json")
	events := filepath.Join(t.TempDir(), "events.jsonl")
	if out, code := run(t, "ingest", file, "--output", events); code != 0 {
		t.Fatalf("ingest: exit %d\n%s", code, out)
	}
	out, code := run(t, "detect", "--no-explain", "--input", events)
	if code != 0 {
		t.Fatalf("detect: exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"New place: THINGSBOARD console login of tenant@plant.example from 203.0.113.66",
		"Twin parameter setpoint of boiler-3 set to 85, outside its learned range 20 to 22",
		"Twin parameter set outside its range after a login from a new place",
		"alerts=3",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("detect output lacks %q:\n%s", want, out)
		}
	}
}
