package investigate

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

func renderReport(t *testing.T) []byte {
	t.Helper()
	iv, _ := campaignScenario(t)
	var b bytes.Buffer
	if err := iv.Report(t.Context(), "inc-1", &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// keyFacts are what the report of the scenario's inc-1 must say.
var keyFacts = []string{
	"Incident inc-1: Mirai-style compromise of cam-1",
	"critical",
	"Time to detect (MTTD)", "1.9s", // detected 2 s after the first event, received 100 ms after it
	"Time to contain (MTTC)", "7s",
	"2026-03-01 12:00:00", // first malicious event
	"Telnet brute force", "Download and execute",
	"isolate", "contain-compromised-device", // the action taken
	"device:plc-1", "reached", "same_vulnerability", "CVE-2016-2148", // blast radius
	"user.name=root", // an evidence event in the timeline
	"camp-",          // the campaign it belongs to
}

func TestReportHTML(t *testing.T) {
	html := string(renderReport(t))
	for _, f := range keyFacts {
		if !strings.Contains(html, f) {
			t.Errorf("report lacks %q", f)
		}
	}
	// Self-contained: no script, and nothing fetched from elsewhere.
	if m := regexp.MustCompile(`(?i)<script|<link|src=|url\(|@import|https?://`).FindString(html); m != "" {
		t.Errorf("report is not self-contained: %q", m)
	}
	if !strings.Contains(html, "@media print") || !strings.Contains(html, "@page") {
		t.Error("report has no print style")
	}
	var b bytes.Buffer
	iv, _ := scenario(t)
	if err := iv.Report(t.Context(), "nope", &b); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("report of an unknown incident: %v", err)
	}
}

// chromium returns the path of a chromium binary, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH (Debian: apt-get install chromium): the report is not rendered in a browser")
	return ""
}

// runChromium runs headless chromium on the page with args and returns
// its standard output.
func runChromium(t *testing.T, bin, page string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	home := t.TempDir()
	all := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
		"--user-data-dir=" + filepath.Join(home, "profile")}, args...)
	cmd := exec.CommandContext(ctx, bin, append(all, "file://"+page)...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// TestReportInChromium renders the report in headless chromium: the DOM it
// builds holds the key facts, and the page prints to a PDF and to a
// screenshot (-screenshot FILE keeps it, to look at).
func TestReportInChromium(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, renderReport(t), 0o600); err != nil {
		t.Fatal(err)
	}
	dom := runChromium(t, bin, page, "--dump-dom")
	text := regexp.MustCompile(`<[^>]*>`).ReplaceAllString(string(dom), " ")
	for _, f := range keyFacts {
		if !strings.Contains(text, f) {
			t.Errorf("the page chromium rendered lacks %q", f)
		}
	}
	pdf := filepath.Join(dir, "report.pdf")
	runChromium(t, bin, page, "--print-to-pdf="+pdf, "--no-pdf-header-footer")
	if b, err := os.ReadFile(pdf); err != nil || len(b) < 1000 || !bytes.HasPrefix(b, []byte("%PDF")) {
		t.Errorf("printed PDF: %d bytes, %v", len(b), err)
	}
	png := filepath.Join(dir, "report.png")
	if *shotPath != "" {
		png = *shotPath
	}
	runChromium(t, bin, page, "--screenshot="+png, "--window-size=1200,1800", "--hide-scrollbars")
	if b, err := os.ReadFile(png); err != nil || len(b) < 10000 || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Errorf("screenshot: %d bytes, %v", len(b), err)
	}
}

// TestReportRemediationAndReason: the report shows the time to remediate
// of its devices' findings (the update plans, as the posture report) and
// the reason the incident was closed, with who closed it.
func TestReportRemediationAndReason(t *testing.T) {
	iv, st := campaignScenario(t)
	ctx := t.Context()
	if err := st.PutUpdatePlan(ctx, vigil.UpdatePlan{ID: "plan-cam", ArtifactID: "art-1", State: vigil.PlanCompleted, Created: t0, Updated: t0,
		Findings: []vigil.PlanFinding{
			{DeviceID: "cam-1", Vuln: "CVE-2016-2148", KEV: true, Component: "busybox", Fixed: "1.25.0", FirstSeen: t0, Closed: t0.Add(30 * time.Hour)},
			{DeviceID: "plc-9", Vuln: "CVE-2020-0001", Component: "x", FirstSeen: t0, Closed: t0.Add(time.Hour)},
		}}); err != nil {
		t.Fatal(err)
	}
	inc, err := st.GetIncident(ctx, "inc-1")
	if err != nil {
		t.Fatal(err)
	}
	inc.Status, inc.Resolved, inc.Resolution, inc.ResolvedBy = vigil.IncidentResolved, t0.Add(31*time.Hour), "busybox updated & <re-imaged>", "user:ana"
	if err := st.PutIncident(ctx, inc); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := iv.Report(ctx, "inc-1", &b); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{"Vulnerabilities of its devices", "CVE-2016-2148", "<b>30h0m0s</b>", "plan-cam", "fixed in 1.25.0",
		"Reason for closing", "busybox updated &amp; &lt;re-imaged&gt;", "by user:ana"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(html, "CVE-2020-0001") {
		t.Error("report shows a finding of a device not in the incident")
	}
}
