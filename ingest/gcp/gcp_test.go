package gcp_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect/sigma"
	"github.com/vigil-iot/vigil/ingest/gcp"
)

func readAll(t testing.TB, name string, b []byte) ([]vigil.Event, []error) {
	t.Helper()
	r := gcp.NewReader(bytes.NewReader(b), name)
	var evs []vigil.Event
	var bad []error
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return evs, bad
		}
		var re *gcp.RecordError
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

// TestIoTStory reads `gcloud logging read --format=json` output (a
// pretty-printed array) of an IoT fleet project taken over: a role
// granted to an outside account, which makes a service account key,
// changes a device's configuration, fails to send a command to another
// device and opens the firewall.
func TestIoTStory(t *testing.T) {
	evs := readFile(t, "iot_story.json")
	if len(evs) != 5 {
		t.Fatalf("%d events", len(evs))
	}
	for _, ev := range evs {
		if ev.Kind != "cloud" || ev.Source != "gcp" || ev.Fields["cloud.provider"] != "gcp" || ev.Fields["cloud.account.id"] != "plant-fleet-prod" ||
			ev.Fields["logsource.product"] != "gcp" || ev.Fields["logsource.service"] != "gcp.audit" || len(ev.ID) != 32 ||
			ev.Fields["gcp.audit.log_id"] != "cloudaudit.googleapis.com%2Factivity" {
			t.Errorf("%s: %+v", ev.Action, ev)
		}
	}
	iam := evs[0]
	if iam.Action != "SetIamPolicy" || iam.Category != "iam" || iam.Outcome != "success" || iam.Fields["user.name"] != "ops-lead@plant.example" ||
		!iam.Time.Equal(time.Date(2026, 3, 5, 7, 58, 2, 114e6, time.UTC)) || iam.Fields["event.provider"] != "cloudresourcemanager.googleapis.com" ||
		!strings.Contains(iam.Fields["protoPayload.request"].(string), `"roles/cloudiot.admin"`) ||
		fmt.Sprint(iam.Fields["protoPayload.request.policy.bindings.members"]) != "[user:contractor-x@gmail.example]" {
		t.Errorf("SetIamPolicy: %+v", iam)
	}
	if ip, _ := iam.Field("source.ip"); ip != "198.51.100.20" {
		t.Errorf("source.ip %v", ip)
	}
	cfg := evs[2]
	if cfg.DeviceID != "pump-07" || cfg.Category != "configuration" || cfg.Fields["cloud.region"] != "europe-west1" ||
		cfg.Fields["gcp.audit.method_name"] != "google.cloud.iot.v1.DeviceManager.ModifyCloudToDeviceConfig" ||
		cfg.Fields["protoPayload.authorizationInfo.permission"] != "cloudiot.devices.updateConfig" ||
		cfg.Fields["user_agent.original"] != "Mozilla/5.0 (Windows NT 10.0; Win64; x64)" {
		t.Errorf("device config: %+v", cfg)
	}
	cmd := evs[3]
	if cmd.DeviceID != "pump-08" || cmd.Outcome != "failure" || cmd.Fields["error.code"] != "9" || !strings.Contains(cmd.Fields["error.message"].(string), "not connected") {
		t.Errorf("command: %+v", cmd)
	}
	if evs[1].Category != "iam" || evs[4].DeviceID != "" {
		t.Errorf("key %q firewall device %q", evs[1].Category, evs[4].DeviceID)
	}
}

// TestForms: the same entry one a line (a sink's Cloud Storage export),
// pretty-printed, in an array and in Pub/Sub push envelopes.
func TestForms(t *testing.T) {
	rec := `{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","methodName":"storage.buckets.delete","serviceName":"storage.googleapis.com","resourceName":"projects/_/buckets/b","authenticationInfo":{"principalEmail":"a@x.example"}},"insertId":"i1","resource":{"type":"gcs_bucket","labels":{"project_id":"p","bucket_name":"b"}},"timestamp":"2026-03-06T10:00:00Z","logName":"projects/p/logs/cloudaudit.googleapis.com%2Factivity"}`
	push := `{"message":{"attributes":{"logging.googleapis.com/timestamp":"2026-03-06T10:00:00Z"},"data":"` + base64.StdEncoding.EncodeToString([]byte(rec)) + `","messageId":"1","publishTime":"2026-03-06T10:00:01Z"},"subscription":"projects/p/subscriptions/vigil"}`
	pretty := strings.ReplaceAll(rec, ",", ",\n  ")
	for name, in := range map[string]string{
		"ndjson": rec + "\n" + rec + "\n",
		"pretty": pretty + "\n" + pretty,
		"array":  "[" + rec + ",\n" + rec + "]",
		"push":   push + "\n" + push,
	} {
		evs, bad := readAll(t, name, []byte(in))
		if len(bad) > 0 || len(evs) != 2 {
			t.Errorf("%s: %d events, bad %v", name, len(evs), bad)
			continue
		}
		for _, ev := range evs {
			if ev.Action != "storage.buckets.delete" || ev.Fields["user.name"] != "a@x.example" || ev.Fields["cloud.account.id"] != "p" || ev.ID != evs[0].ID {
				t.Errorf("%s: %+v", name, ev)
			}
		}
	}
}

// TestBadRecords: each bad record is reported with where and what, and
// the records after it are still read.
func TestBadRecords(t *testing.T) {
	in := `[1,{"timestamp":"x","protoPayload":{"methodName":"m"}},{"timestamp":"2026-03-06T10:00:00Z","jsonPayload":{}}]
{"message":{"data":"%%%"}}
{"message":{"data":"bm90IGpzb24="}}
{"timestamp":"2026-03-06T10:00:00Z","protoPayload":{"methodName":"m"}}
{"timestamp":`
	evs, bad := readAll(t, "in.json", []byte(in))
	if len(evs) != 1 || len(bad) != 6 {
		t.Fatalf("%d events, bad %v", len(evs), bad)
	}
	var msgs []string
	for _, e := range bad {
		msgs = append(msgs, e.Error())
	}
	got := strings.Join(msgs, "\n")
	for _, want := range []string{
		"in.json: value 1: [0]: not a JSON object",
		`in.json: value 1: [1]: timestamp "x": not an RFC 3339 time`,
		"in.json: value 1: [2]: protoPayload.methodName: missing",
		"in.json: value 2: message.data: not base64",
		"in.json: value 3: message.data: not a JSON object",
		"in.json: value 5: not JSON",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
}

// TestLimits: an entry with more fields than MaxFields keeps MaxFields
// and says it was cut.
func TestLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"timestamp":"2026-03-06T10:00:00Z","protoPayload":{"methodName":"m","request":{`)
	for i := 0; i < gcp.MaxFields+10; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + strings.Repeat("x", i%5) + string(rune('a'+i%26)) + `_` + string(rune('a'+i/26%26)) + string(rune('a'+i/676)) + `":1`)
	}
	b.WriteString("}}}")
	evs, bad := readAll(t, "big", []byte(b.String()))
	if len(evs) != 1 || len(bad) > 0 {
		t.Fatalf("%d events %v", len(evs), bad)
	}
	if evs[0].Fields["gcp.truncated"] != true || len(evs[0].Fields) > gcp.MaxFields+30 {
		t.Errorf("truncated %v, %d fields", evs[0].Fields["gcp.truncated"], len(evs[0].Fields))
	}
}

// TestSigmaHQGCPRules: every SigmaHQ GCP audit rule of the corpus
// compiles, and rules match their intended events, online (routed by the
// events' logsource) and offline (the events as NDJSON).
func TestSigmaHQGCPRules(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "corpus", "sigma", "rules", "cloud", "gcp", "audit")
	files, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	if len(files) == 0 {
		t.Skipf("the SigmaHQ corpus is absent (%s)", dir)
	}
	rs, errs := sigma.LoadDirs([]string{dir}, nil)
	for _, e := range errs {
		t.Errorf("%s:%d: %s: %s", e.File, e.Line, e.Rule, e.Reason)
	}
	if len(rs.Rules) != len(files) {
		t.Errorf("%d rules from %d files", len(rs.Rules), len(files))
	}
	m := rs.NewMatcher()
	names := func(ev *vigil.Event) string {
		var got []string
		rs.MatchEvent(m, ev, func(r *sigma.Rule) { got = append(got, strings.TrimSuffix(filepath.Base(r.File), ".yml")) })
		sort.Strings(got)
		return strings.Join(got, " ")
	}
	want := []string{
		"gcp_bucket_modified_or_deleted",
		"gcp_bucket_enumeration",
		"gcp_kubernetes_secrets_modified_or_deleted",
		"gcp_kubernetes_rolebinding",
		"gcp_breakglass_container_workload_deployed",
		"gcp_access_policy_deleted",
		"gcp_sql_database_modified_or_deleted",
		"gcp_full_network_traffic_packet_capture",
		"gcp_dns_zone_modified_or_deleted",
		"",
	}
	evs := readFile(t, "sigma_positives.ndjson")
	if len(evs) != len(want) {
		t.Fatalf("%d events", len(evs))
	}
	var lines []byte
	for i := range evs {
		if got := names(&evs[i]); got != want[i] {
			t.Errorf("%s: matched [%s], want [%s]", evs[i].Action, got, want[i])
		}
		var err error
		if lines, err = evs[i].AppendJSON(lines, true); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, '\n')
	}
	story := readFile(t, "iot_story.json")
	if got := names(&story[4]); got != "gcp_firewall_rule_modified_or_deleted" {
		t.Errorf("firewall insert: matched [%s]", got)
	}
	for _, ev := range story[:4] {
		if got := names(&ev); got != "" {
			t.Errorf("%s: matched [%s]", ev.Action, got)
		}
	}
	res, _, err := rs.TestEvents(bytes.NewReader(lines))
	if err != nil {
		t.Fatal(err)
	}
	offline := map[int]string{}
	for _, r := range res {
		if r.Error != "" {
			t.Errorf("line %d: %s", r.Line, r.Error)
		}
		if r.Matched {
			offline[r.Line] += r.Title + ";"
		}
	}
	for i, w := range want {
		if (w != "") != (offline[i+1] != "") {
			t.Errorf("offline line %d: matched %q, want %s", i+1, offline[i+1], w)
		}
	}
}
