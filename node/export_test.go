package node

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// TestServeExportHEC: vigil serve with an export sink sends the alerts on
// the bus to a Splunk HTTP Event Collector, as OCSF, with its token.
func TestServeExportHEC(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/services/collector/event" || r.Header.Get("Authorization") != "Splunk hec-secret" {
			http.Error(w, `{"text":"Invalid token","code":4}`, 403)
			return
		}
		dec := json.NewDecoder(r.Body)
		mu.Lock()
		defer mu.Unlock()
		for dec.More() {
			var env map[string]any
			if err := dec.Decode(&env); err != nil {
				http.Error(w, `{"text":"Invalid data format","code":6}`, 400)
				return
			}
			got = append(got, env)
		}
		io.WriteString(w, `{"text":"Success","code":0}`)
	}))
	defer ts.Close()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.SigmaDirs = []string{t.TempDir()}
	cfg.Outbound.Allow = []string{"127.0.0.1"}
	cfg.Export = ExportConfig{{Type: "hec", URL: ts.URL, Token: "hec-secret", Format: "ocsf"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := runTestApp(t, cfg)
	al := vigil.Alert{ID: "al-export-1", Detector: "sigma", RuleID: "r1", Title: "Export me", Severity: vigil.SeverityHigh,
		DeviceID: "cam-1", Created: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), Count: 1}
	if err := a.bus.PublishAlerts(t.Context(), []vigil.Alert{al}); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the collector received no alert")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	ev := got[0]["event"].(map[string]any)
	if ev["class_uid"] != float64(2004) || ev["finding_info"].(map[string]any)["uid"] != "al-export-1" {
		t.Errorf("event %v", ev)
	}
}

func TestExportConfig(t *testing.T) {
	f := func(s ExportConfig, want string) {
		t.Helper()
		err := s.validate("nats://bus:4222")
		if want == "" {
			if err != nil {
				t.Errorf("%+v: %v", s, err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: err %v, want %q", s, err, want)
		}
	}
	f(ExportConfig{{Type: "hec", URL: "https://splunk:8088", Token: "t"}, {Type: "elasticsearch", URL: "http://es:9200"},
		{Type: "syslog", URL: "tls://siem:6514", Format: "ocsf"}, {Type: "nats"}}, "")
	f(ExportConfig{{Type: "kafka"}}, "export[0]: type \"kafka\"")
	f(ExportConfig{{Type: "hec", URL: "https://splunk:8088"}}, "without a token")
	f(ExportConfig{{Type: "syslog", URL: "udp://siem:514"}}, "want tcp://host:port or tls://host:port")
	f(ExportConfig{{Type: "hec", URL: "https://s", Token: "t", Format: "cef"}}, "export[0].format")
	f(ExportConfig{{Type: "nats"}, {Type: "nats", URL: "nats://x"}}, "export[1].name: \"nats\" is used twice")
	f(ExportConfig{{Type: "nats", Name: "a.b"}}, "export[0].name")
	f(ExportConfig{{Type: "syslog", URL: "tls://s:1", CAFile: "/nonexistent"}}, "ca_file")
	if err := (ExportConfig{{Type: "nats"}}).validate(""); err == nil || !strings.Contains(err.Error(), "export[0].url") {
		t.Errorf("nats sink without url on an embedded bus: %v", err)
	}
}

// TestExportTokenRedacted: the tokens of export sinks are not in the
// configuration the audit trail records.
func TestExportTokenRedacted(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Export = ExportConfig{{Type: "hec", URL: "https://splunk:8088", Token: "hec-secret-token"},
		{Type: "elasticsearch", URL: "https://vigil:es-password@es:9200"}}
	m, err := redactedConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(m)
	for _, secret := range []string{"hec-secret-token", "es-password"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("redacted config holds %q: %s", secret, b)
		}
	}
	if !strings.Contains(string(b), fmt.Sprintf("%q", "https://splunk:8088")) {
		t.Errorf("redacted config lost the URL: %s", b)
	}
}

// TestServeExportIncidents: with incidents: true, a sink also receives
// the incidents the alerts make, as OCSF Incident Findings.
func TestServeExportIncidents(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dec := json.NewDecoder(r.Body)
		mu.Lock()
		defer mu.Unlock()
		for dec.More() {
			var env map[string]any
			if err := dec.Decode(&env); err != nil {
				http.Error(w, `{"text":"Invalid data format","code":6}`, 400)
				return
			}
			got = append(got, env["event"].(map[string]any))
		}
		io.WriteString(w, `{"text":"Success","code":0}`)
	}))
	defer ts.Close()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.SigmaDirs = []string{t.TempDir()}
	cfg.Outbound.Allow = []string{"127.0.0.1"}
	cfg.Export = ExportConfig{{Type: "hec", URL: ts.URL, Token: "hec-secret", Format: "ocsf", Incidents: true}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	a := runTestApp(t, cfg)
	al := vigil.Alert{ID: "al-export-inc", Detector: "sigma", RuleID: "r1", Title: "Incident me", Severity: vigil.SeverityHigh,
		DeviceID: "cam-1", Created: time.Now().UTC(), Count: 1}
	if err := a.bus.PublishAlerts(t.Context(), []vigil.Alert{al}); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		for _, ev := range got {
			if ev["class_uid"] == float64(2005) {
				list, _ := ev["finding_info_list"].([]any)
				if len(list) != 1 || list[0].(map[string]any)["uid"] != "al-export-inc" {
					t.Errorf("incident %v", ev)
				}
				mu.Unlock()
				return
			}
		}
		mu.Unlock()
		if time.Now().After(end) {
			t.Fatalf("the collector received no incident; got %d documents", len(got))
		}
	}
}
