package azure_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect/sigma"
	"github.com/vigil-iot/vigil/ingest/azure"
)

func readAll(t testing.TB, name string, b []byte) ([]vigil.Event, []error) {
	t.Helper()
	r := azure.NewReader(bytes.NewReader(b), name)
	var evs []vigil.Event
	var bad []error
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return evs, bad
		}
		var re *azure.RecordError
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

// TestSignInAndActivity: Entra sign-ins (a failed then a successful
// single-factor sign-in of a fleet operator from a new address), a Key
// Vault secret written by the same operator (Activity log) and an IoT Hub
// device connection.
func TestSignInAndActivity(t *testing.T) {
	si := readFile(t, "signin.json")
	if len(si) != 2 {
		t.Fatalf("%d sign-ins", len(si))
	}
	f := si[0]
	if f.Kind != "cloud" || f.Source != "azure" || f.Category != "authentication" || f.Outcome != "failure" || f.Action != "Sign-in activity" ||
		f.Fields["logsource.service"] != "signinlogs" || f.Fields["user.name"] != "operator@contoso.example" ||
		f.Fields["error.code"] != "50126" || f.Fields["cloud.account.id"] != "72f988bf-86f1-41af-91ab-2d7cd011db47" ||
		f.Fields["properties.status.errorCode"] != float64(50126) || f.Fields["source.geo.country_iso_code"] != "NL" {
		t.Errorf("failed sign-in: %+v", f)
	}
	if ip, _ := f.Field("source.ip"); ip != "203.0.113.66" {
		t.Errorf("source.ip %v", ip)
	}
	if si[1].Outcome != "success" || si[1].Fields["user_agent.original"] != "azurehound/v2.1.7" {
		t.Errorf("sign-in: %+v", si[1])
	}
	act := readFile(t, "activity.ndjson")
	if len(act) != 2 {
		t.Fatalf("%d activity records", len(act))
	}
	kv := act[0]
	if kv.Fields["logsource.service"] != "activitylogs" || kv.Outcome != "success" || kv.Fields["user.name"] != "operator@contoso.example" ||
		kv.Fields["cloud.account.id"] != "0b1f6471-1bf0-4dda-aec3-cb9272f09590" || kv.Fields["cloud.region"] != "westeurope" ||
		kv.Fields["event.provider"] != "MICROSOFT.KEYVAULT" || kv.Fields["identity.authorization.evidence.role"] != "Owner" {
		t.Errorf("activity: %+v", kv)
	}
	hub := act[1]
	if hub.DeviceID != "pump-07" || hub.Fields["logsource.service"] != "iothub" || hub.Fields["properties.protocol"] != "Mqtt" ||
		hub.Fields["source.address"] != "198.51.100.xxx" {
		t.Errorf("iot hub: %+v", hub)
	}
}

func TestBadRecords(t *testing.T) {
	in := `{"records":[1,{"time":"x","operationName":"o","category":"c"},{"operationName":"o"}]}
{"time":"2026-03-04T08:05:30Z","operationName":"o","category":"Administrative"}
{"time":`
	evs, bad := readAll(t, "in.json", []byte(in))
	if len(evs) != 1 || len(bad) != 4 {
		t.Fatalf("%d events, bad %v", len(evs), bad)
	}
	got := ""
	for _, e := range bad {
		got += e.Error() + "\n"
	}
	for _, want := range []string{"in.json: value 1: records[0]: not a JSON object", `records[1]: time "x"`, "records[2]: time: missing", "value 3: not JSON"} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
}

// TestSigmaHQAzureRules: every SigmaHQ Azure rule of the corpus compiles,
// and sign-in and Activity log rules match their intended events.
func TestSigmaHQAzureRules(t *testing.T) {
	var dirs []string
	files := 0
	for _, d := range []string{"rules", "rules-placeholder", "rules-threat-hunting"} {
		root := filepath.Join("..", "..", "..", "shared", "corpus", "sigma", d, "cloud", "azure")
		filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() && strings.HasSuffix(p, ".yml") {
				files++
			}
			return nil
		})
		if _, err := os.Stat(root); err == nil {
			dirs = append(dirs, root)
		}
	}
	if files == 0 {
		t.Skip("the SigmaHQ corpus is absent (../shared/corpus/sigma)")
	}
	rs, errs := sigma.LoadDirs(dirs, nil)
	for _, e := range errs {
		t.Errorf("%s:%d: %s: %s", e.File, e.Line, e.Rule, e.Reason)
	}
	if len(rs.Rules) != files {
		t.Errorf("%d rules from %d files", len(rs.Rules), files)
	}
	m := rs.NewMatcher()
	names := func(ev *vigil.Event) string {
		var got []string
		rs.MatchEvent(m, ev, func(r *sigma.Rule) { got = append(got, strings.TrimSuffix(filepath.Base(r.File), ".yml")) })
		sort.Strings(got)
		return strings.Join(got, " ")
	}
	si := readFile(t, "signin.json")
	act := readFile(t, "activity.ndjson")
	for _, c := range []struct {
		ev   *vigil.Event
		want []string
		not  []string
	}{
		{&si[0], nil, []string{"azure_ad_azurehound_discovery", "azure_ad_only_single_factor_auth_required"}},
		{&si[1], []string{"azure_ad_azurehound_discovery", "azure_ad_only_single_factor_auth_required", "azure_ad_risky_sign_ins_with_singlefactorauth_from_unknown_devices"}, nil},
		{&act[0], []string{"azure_keyvault_secrets_modified_or_deleted"}, nil},
	} {
		got := " " + names(c.ev) + " "
		for _, w := range c.want {
			if !strings.Contains(got, " "+w+" ") {
				t.Errorf("%s %s: matched [%s], want %s", c.ev.Action, c.ev.Time, got, w)
			}
		}
		for _, w := range c.not {
			if strings.Contains(got, " "+w+" ") {
				t.Errorf("%s %s: matched %s", c.ev.Action, c.ev.Time, w)
			}
		}
	}
}
