package export

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-iot/vigil"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestEncoders encodes testdata/alerts.json with each format and compares
// with testdata/<format>.golden.json (go test -run TestEncoders -update
// rewrites them).
func TestEncoders(t *testing.T) {
	alerts := loadAlerts(t)
	f := func(format string) {
		t.Helper()
		enc, err := EncoderFor(format)
		if err != nil {
			t.Fatal(err)
		}
		var docs []json.RawMessage
		for _, a := range alerts {
			b, err := enc(a)
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			docs = append(docs, b)
		}
		got, err := json.MarshalIndent(docs, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, '\n')
		path := filepath.Join("testdata", format+".golden.json")
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s encoding differs from %s:\n%s", format, path, got)
		}
	}
	f(FormatECS)
	f(FormatOCSF)
	if _, err := EncoderFor("cef"); err == nil {
		t.Error("EncoderFor(cef) did not fail")
	}
}

// TestOCSFRequired checks the attributes the Detection Finding class
// requires are in every document.
func TestOCSFRequired(t *testing.T) {
	for _, a := range loadAlerts(t) {
		b, err := OCSF(a)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		for _, k := range []string{"activity_id", "category_uid", "class_uid", "type_uid", "severity_id", "time", "metadata", "finding_info"} {
			if _, ok := m[k]; !ok {
				t.Errorf("alert %s: OCSF document has no %s", a.ID, k)
			}
		}
		fi := m["finding_info"].(map[string]any)
		if fi["uid"] != a.ID || fi["title"] != a.Title {
			t.Errorf("alert %s: finding_info %v lacks uid or title", a.ID, fi)
		}
		md := m["metadata"].(map[string]any)
		if md["version"] != OCSFVersion || md["product"] == nil {
			t.Errorf("alert %s: metadata %v lacks version or product", a.ID, md)
		}
		if m["type_uid"] != float64(200401) {
			t.Errorf("type_uid = %v", m["type_uid"])
		}
	}
}

func loadAlerts(t *testing.T) []vigil.Alert {
	t.Helper()
	b, err := os.ReadFile("testdata/alerts.json")
	if err != nil {
		t.Fatal(err)
	}
	var alerts []vigil.Alert
	if err := json.Unmarshal(b, &alerts); err != nil {
		t.Fatal(err)
	}
	return alerts
}

func BenchmarkEncode(b *testing.B) {
	raw, err := os.ReadFile("testdata/alerts.json")
	if err != nil {
		b.Fatal(err)
	}
	var alerts []vigil.Alert
	if err := json.Unmarshal(raw, &alerts); err != nil {
		b.Fatal(err)
	}
	for _, format := range []string{FormatECS, FormatOCSF} {
		enc, _ := EncoderFor(format)
		b.Run(format, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := enc(alerts[0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
