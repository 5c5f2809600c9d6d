package report

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/sqlite"
	"github.com/vigil-iot/vigil/vuln/scan"
)

var now = time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)

// firstHour is what a new user had after an hour: five devices in the
// store, four of them known to the vulnerability scan (one with no
// inventory), no vulnerability source imported, three incidents (one
// made of a replayed capture) and two response actions.
func firstHour(t *testing.T) (store.Store, *scan.DB) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	devs := []vigil.Device{
		{ID: "cam-1", Vendor: "Acme", Model: "Cam100", Firmware: "2.1.0", State: vigil.StateActive},
		{ID: "cam-2", Vendor: "Acme", Model: "Cam100", Firmware: "2.1.0", State: vigil.StateActive},
		{ID: "therm-1", Vendor: "Therma", Model: "T5", Firmware: "1.4", State: vigil.StateActive},
		{ID: "gw-1", State: vigil.StateActive},
		{ID: "plug-9", State: vigil.StateDiscovered},
	}
	for _, d := range devs {
		if err := st.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	incs := []vigil.Incident{
		{ID: "i1", Title: "SSH brute force on cam-1", Status: vigil.IncidentContained, Severity: vigil.SeverityHigh,
			FirstReceived: now.Add(-50 * time.Minute), Detected: now.Add(-50*time.Minute + 2*time.Second),
			Contained: now.Add(-50*time.Minute + 12*time.Second), Updated: now.Add(-40 * time.Minute)},
		{ID: "i2", Title: "New listening port outside the device baseline on therm-1", Status: vigil.IncidentResolved, Severity: vigil.SeverityMedium,
			FirstReceived: now.Add(-30 * time.Minute), Detected: now.Add(-30*time.Minute + 4*time.Second), Updated: now.Add(-20 * time.Minute)},
		{ID: "i3", Title: "Mirai busybox probe involving ip:203.0.113.9", Status: vigil.IncidentOpen, Severity: vigil.SeverityMedium,
			FirstEventTime: time.Date(2019, 12, 4, 3, 10, 0, 0, time.UTC), Replayed: true, Detected: now.Add(-10 * time.Minute), Updated: now.Add(-10 * time.Minute)},
	}
	for _, inc := range incs {
		if err := st.PutIncident(ctx, inc); err != nil {
			t.Fatal(err)
		}
	}
	acts := []vigil.Action{
		{ID: "ac1", Type: "isolate", DeviceID: "cam-1", IncidentID: "i1", State: vigil.ActionSucceeded, RequestedBy: "playbook:contain-bruteforce",
			Created: now.Add(-50*time.Minute + 3*time.Second), Updated: now.Add(-50*time.Minute + 12*time.Second)},
		{ID: "ac2", Type: "notify", IncidentID: "i3", State: vigil.ActionPendingApproval, RequestedBy: "playbook:notify",
			Created: now.Add(-9 * time.Minute), Updated: now.Add(-9 * time.Minute)},
	}
	for _, a := range acts {
		if err := st.PutAction(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	db, err := scan.Open(scan.Config{Store: st, Clock: fixedClock(now)})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs[:4] {
		db.UpdateDevice(d)
	}
	return st, db
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// TestPostureSaysWhatIsMissing checks the report a new user gets: every
// device the server knows is counted, devices without inventory are named
// rather than shown as a blank firmware row, what is missing comes with
// the command that fixes it, and incidents (MTTD without the replayed
// one, MTTC) and response actions are covered.
func TestPostureSaysWhatIsMissing(t *testing.T) {
	st, db := firstHour(t)
	r, err := Posture(context.Background(), st, db, now)
	if err != nil {
		t.Fatal(err)
	}
	if r.Summary.Devices != 5 || r.Summary.Uninventoried != 2 {
		t.Errorf("devices %d (uninventoried %d), want 5 (2): every device of the store counts", r.Summary.Devices, r.Summary.Uninventoried)
	}
	for _, row := range r.Firmware {
		if row.Vendor == "" && row.Model == "" && row.Firmware == "" && !row.Unknown {
			t.Errorf("blank firmware row not marked unknown: %+v", row)
		}
	}
	if last := r.Firmware[len(r.Firmware)-1]; !last.Unknown || last.Devices != 2 {
		t.Errorf("last firmware row %+v, want the 2 devices without inventory", last)
	}
	var missing []string
	for _, g := range r.Missing {
		missing = append(missing, g.What+" → "+g.Fix+" "+g.Command)
	}
	all := strings.Join(missing, "\n")
	for _, want := range []string{"No vulnerability source is imported", "vigil vuln import --name osv", "No CISA KEV catalog",
		"2 of 5 devices reported no inventory", "gw-1, plug-9", "Run vigil-agent on them"} {
		if !strings.Contains(all, want) {
			t.Errorf("missing does not say %q:\n%s", want, all)
		}
	}
	inc := r.Incidents
	if inc.Total != 3 || inc.Open != 1 || inc.Contained != 1 || inc.Resolved != 1 || inc.Replayed != 1 ||
		inc.Measured != 2 || inc.MTTD.Text != "3s" || inc.ContainedN != 1 || inc.MTTC.Text != "10s" {
		t.Errorf("incidents %+v, want 3 (MTTD 3s over 2, the replayed one left out; MTTC 10s over 1)", inc)
	}
	if len(r.Recent) != 3 || r.Recent[0].ID != "i3" || r.Recent[0].TimeToDetect != "replayed" || r.Recent[2].Actions != 1 {
		t.Errorf("recent incidents %+v", r.Recent)
	}
	if r.Response.Total != 2 || r.Response.Succeeded != 1 || r.Response.PendingApproval != 1 || len(r.Actions) != 2 || r.Actions[0].Type != "notify" {
		t.Errorf("response %+v actions %+v", r.Response, r.Actions)
	}
	var b bytes.Buffer
	if err := Write(&b, "json", r); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back["missing"] == nil || back["incidents"] == nil || back["response"] == nil {
		t.Errorf("json report lacks missing/incidents/response: %v", err)
	}
}

// TestPostureRendersInChromium renders the HTML report in headless
// Chromium and checks that a screenshot comes out; the screenshot is
// kept at $VIGIL_REPORT_SCREENSHOT when set, to be looked at.
func TestPostureRendersInChromium(t *testing.T) {
	bin := "/usr/bin/chromium"
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("chromium"); err != nil {
			t.Skip("chromium is not installed (apt-get install -y chromium): the report is not rendered")
		}
	}
	st, db := firstHour(t)
	r, err := Posture(context.Background(), st, db, now)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "posture.html")
	var b bytes.Buffer
	if err := Write(&b, "html", r); err != nil {
		t.Fatal(err)
	}
	h := b.String()
	for _, bad := range []string{"<td></td><td></td><td></td>", "<table><tr><th>Day</th>"} {
		if strings.Contains(h, bad) {
			t.Errorf("html has %q: a blank firmware row or an empty table", bad)
		}
	}
	for _, want := range []string{"What this report cannot tell yet", "not reported (no inventory)", "mean time to detect", "<h2>Response</h2>", "isolate"} {
		if !strings.Contains(h, want) {
			t.Errorf("html lacks %q", want)
		}
	}
	if err := os.WriteFile(page, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "posture.png")
	if p := os.Getenv("VIGIL_REPORT_SCREENSHOT"); p != "" {
		shot = p
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--window-size=1280,2200", "--screenshot="+shot, "file://"+page)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	png, err := os.ReadFile(shot)
	if err != nil || len(png) < 10000 || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("no screenshot from chromium (%d bytes, %v):\n%s", len(png), err, out)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))
}
