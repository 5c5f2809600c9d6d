package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/vuln"
	"github.com/vigil-iot/vigil/vuln/scan"
)

func fixture() *Report {
	now := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	devs := []vigil.Device{
		{ID: "cam-1", Vendor: "Acme", Model: "Cam100", Firmware: "2.1.0"},
		{ID: "cam-2", Vendor: "Acme", Model: "Cam100", Firmware: "2.1.0"},
		{ID: "cam-3", Vendor: "Acme", Model: "Cam100", Firmware: "2.1.3"},
		{ID: "nvr-7", Vendor: "Acme", Model: "NVR7", Firmware: "10.0"},
	}
	ev := []vuln.Evidence{{Rule: vuln.RuleFirmware, Advisory: "ACME-SA-2024-001/CVE-2024-99901", Component: "Cam100 2.1.0", Matched: "cpe:2.3:*:acme:cam100", Versions: "= 2.1.0"}}
	fs := []vuln.Finding{
		{ID: "cam-1|CVE-2024-99901|Cam100", DeviceID: "cam-1", Vuln: "CVE-2024-99901", CVSS: 9.8, Severity: "critical", Component: "Cam100", ComponentVersion: "2.1.0", FixedVersion: "2.1.3", Exposed: true, Exposure: "listening tcp/80 (lighttpd)", Rank: 16.8, Evidence: ev},
		{ID: "cam-2|CVE-2024-99901|Cam100", DeviceID: "cam-2", Vuln: "CVE-2024-99901", CVSS: 9.8, Severity: "critical", Component: "Cam100", ComponentVersion: "2.1.0", FixedVersion: "2.1.3", Rank: 9.8, Evidence: ev},
		{ID: "nvr-7|CVE-2014-0160|openssl", DeviceID: "nvr-7", Vuln: "CVE-2014-0160", CVSS: 7.5, Severity: "high", KEV: true, KEVDue: time.Date(2022, 5, 25, 0, 0, 0, 0, time.UTC), Component: "openssl", ComponentVersion: "1.0.1e-2+deb7u4", FixedVersion: "1.0.1e-2+deb7u5", Rank: 17.5, Evidence: ev},
		{ID: "nvr-7|CVE-2099-1|x", DeviceID: "nvr-7", Vuln: "CVE-2099-1", CVSS: 5, Severity: "medium", KEV: true, KEVDue: time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC), Component: "x <script>", Rank: 15, Evidence: ev},
		{ID: "cam-3|CVE-2024-99902|lighttpd", DeviceID: "cam-3", Vuln: "CVE-2024-99902", CVSS: 7.5, Severity: "high", Suppressed: "vex not_affected", Evidence: ev},
	}
	return Build(Input{Devices: devs, Findings: fs, Trend: []scan.TrendPoint{{Day: "2025-09-01", Findings: 4}}, Now: now,
		Sources: []scan.SourceInfo{{Name: "nvd", Kind: scan.KindAdvisories}, {Name: "kev", Kind: scan.KindKEV}}})
}

func TestBuild(t *testing.T) {
	r := fixture()
	s := r.Summary
	if s.Devices != 4 || s.VulnerableDevices != 3 || s.Findings != 4 || s.Suppressed != 1 || s.KEVFindings != 2 || s.KEVDevices != 1 || s.OverdueKEV != 1 || s.ExposedCritical != 1 {
		t.Errorf("summary %+v", s)
	}
	if len(r.Firmware) != 3 || r.Firmware[0].Firmware != "2.1.0" || r.Firmware[0].Devices != 2 || r.Firmware[0].Vulnerable != 2 || r.Firmware[1].Vulnerable != 0 || r.Firmware[2].KEV != 2 {
		t.Errorf("firmware %+v", r.Firmware)
	}
	if r.Severity[0].Severity != "critical" || r.Severity[0].Findings != 2 || r.Severity[0].Devices != 2 || r.Severity[1].Findings != 1 {
		t.Errorf("severity %+v", r.Severity)
	}
	if !r.KEV[0].Overdue || r.KEV[0].DaysOverdue != 1195 || r.KEV[1].Overdue {
		t.Errorf("kev %+v", r.KEV)
	}
	if r.Top[0].Vuln != "CVE-2014-0160" {
		t.Errorf("top not by rank: %+v", r.Top[0])
	}
}

func TestWrite(t *testing.T) {
	r := fixture()
	var b bytes.Buffer
	if err := Write(&b, "html", r); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	for _, want := range []string{"<h3>Devices by firmware</h3>", "CVE-2014-0160 (KEV)", "1195 days", "update to ≥ 2.1.3", "x &lt;script&gt;"} {
		if !strings.Contains(h, want) {
			t.Errorf("html lacks %q", want)
		}
	}
	b.Reset()
	if err := Write(&b, "csv", r); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(recs) != 5 || recs[0][0] != "device_id" || recs[1][1] != "CVE-2014-0160" || recs[1][6] != "true" {
		t.Fatalf("csv %v %q", err, recs)
	}
	b.Reset()
	if err := Write(&b, "json", r); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.Summary != r.Summary {
		t.Errorf("json %v %+v", err, back.Summary)
	}
	if err := Write(&b, "pdf", r); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("pdf: %v", err)
	}
}
