package node

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// chromiumPath finds a headless-capable Chromium, "" when there is none.
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// screenshotDir is where the browser tests save their screenshots:
// $VIGIL_SCREENSHOTS, else a temporary directory of the test.
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("VIGIL_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// newBrowser starts headless Chromium (skipping the test when there is
// none) that trusts any certificate (the server's CA is the test's own)
// and accepts every confirmation dialog.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("chromium not installed (apt-get install chromium): browser test skipped")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.WindowSize(1360, 900),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("cannot start %s: %v", path, err)
	}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return ctx
}

// TestConsoleInBrowser drives the console in headless Chromium against a
// real server with data: log in with a user account, see the incident,
// approve a pending action, resolve the incident as a false positive; then
// as a viewer: no approve button, and a direct POST of the approval is
// refused. It saves a screenshot of every page.
func TestConsoleInBrowser(t *testing.T) {
	bctx := newBrowser(t)
	a := startTestApp(t)
	seedConsole(t, a)
	// An update plan fixed one of cam-lobby's findings in 36 hours and
	// still waits to fix another: the incident page shows both.
	seen := time.Now().UTC().Add(-72 * time.Hour)
	// (The remediation engine keeps them so: cam-lobby runs the fixed
	// lighttpd, 1.4.45, and the vulnerable busybox, 1.30.1.)
	if err := a.store.PutUpdatePlan(t.Context(), vigil.UpdatePlan{ID: "plan-camera", Cohort: "camera/DS-2CD2042", Product: "camera-firmware", Version: "5.4.6",
		ArtifactID: "art-camera", State: vigil.PlanCompleted, Created: seen, Updated: seen, Finished: seen.Add(36 * time.Hour), Findings: []vigil.PlanFinding{
			{DeviceID: "cam-lobby", Vuln: "CVE-2018-19052", KEV: true, Component: "lighttpd", From: "1.4.44", Fixed: "1.4.45", FirstSeen: seen, Closed: seen.Add(36 * time.Hour)},
			{DeviceID: "cam-lobby", Vuln: "CVE-2021-42386", Component: "busybox", From: "1.30.1", Fixed: "1.34.0", FirstSeen: seen},
		}}); err != nil {
		t.Fatal(err)
	}
	dir := screenshotDir(t)
	base := a.URL()
	// A deadline for the whole flow, generous: on a loaded machine (two cores
	// shared by several builds) the flow alone took over three minutes.
	ctx, cancel := context.WithTimeout(bctx, 15*time.Minute)
	defer cancel()
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		// Accessibility of the page shown (console_a11y_test.go): labels,
		// contrast, keyboard focus.
		problems, err := checkAccessibility(ctx)
		if err != nil {
			t.Fatalf("accessibility check of %s: %v", name, err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", name, p)
		}
		buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	login := func(user string) {
		t.Helper()
		do("log in as "+user,
			chromedp.Navigate(base+"/login"),
			chromedp.WaitVisible(css("#username")),
			chromedp.SendKeys(css("#username"), user),
			chromedp.SendKeys(css("#password"), consolePassword),
			chromedp.Submit(css("#password")),
			chromedp.WaitVisible(css("header.top")),
		)
	}
	logout := func() {
		t.Helper()
		do("log out", chromedp.Click(css("form.who button")), chromedp.WaitVisible(css("#username")))
	}

	do("login page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(css("#username")))
	shot("01-login")
	// The accessibility checks find what they look for: a grey text on
	// white, a link taken out of the Tab order, a button whose focus ring
	// is removed.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		const p = document.createElement('p'); p.textContent = 'faint words'; p.style.color = '#aaa'; p.style.background = '#fff';
		const a = document.createElement('a'); a.href = '/x'; a.textContent = 'skipped link'; a.tabIndex = -1;
		const b = document.createElement('button'); b.textContent = 'ringless'; b.className = 'ringless'; b.style.outline = 'none';
		document.querySelector('main').append(p, a, b);
		return true;
	})()`)); err != nil {
		t.Fatal(err)
	}
	bad, err := checkAccessibility(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all := strings.Join(bad, "\n"); len(bad) != 3 || !strings.Contains(all, "low contrast: 2.32:1 (want 4.5) #aaaaaa on #ffffff <p> \"faint words\"") ||
		!strings.Contains(all, "not reachable with Tab: <a href=\"/x\" tabindex=\"-1\">skipped link</a>") || !strings.Contains(all, "focus not visible: none") ||
		!strings.Contains(all, "ringless") {
		t.Fatalf("the accessibility checks on three planted faults found:\n%s", all)
	}
	do("login page again", chromedp.Navigate(base+"/"), chromedp.WaitVisible(css("#username")))
	login("ana")
	do("overview", chromedp.WaitVisible(css("#live-list")))
	shot("02-overview")
	if s := text("main"); !strings.Contains(s, "Brute force and overload on cam-lobby") {
		t.Fatalf("the overview does not show the incident:\n%s", s)
	}
	// The open queue is by priority: the lobby's incident (55) first, the
	// one without a priority last.
	if s := text("#open-queue"); !strings.HasPrefix(strings.TrimSpace(s), "55") || strings.Index(s, "cam-lobby") > strings.Index(s, "PLC gateway") ||
		strings.Index(s, "PLC gateway") > strings.Index(s, "thermostat") {
		t.Fatalf("open queue on the overview:\n%s", s)
	}
	// Live: an alert stored now shows up without a reload.
	if err := a.store.PutAlert(t.Context(), vigil.Alert{ID: "alert-live", DedupKey: "live", Detector: "sigma", RuleID: "r", Title: "Telnet login from the Internet",
		Severity: vigil.SeverityCritical, DeviceID: "camera-05", Created: time.Now().UTC(), Count: 1}); err != nil {
		t.Fatal(err)
	}
	do("live update", chromedp.WaitVisible(css(".toast")), chromedp.WaitVisible(css("#live-alerts")))
	if s := text(".toast a"); !strings.Contains(s, "Telnet login from the Internet") {
		t.Fatalf("live notice %q", s)
	}
	shot("02b-overview-live")
	for _, p := range []struct{ path, name, sel string }{
		{"/devices", "03-devices", "table"},
		{"/devices?class=camera", "04-devices-cameras", "table"},
		{"/devices/cam-lobby", "05-device", "svg.chart"},
		{"/alerts", "06-alerts", "table"},
		{"/alerts/alert-brute", "07-alert-sigma", ".explain"},
		{"/alerts/alert-cpu", "08-alert-threshold", ".explain"},
		{"/alerts/alert-new-peer", "09-alert-baseline", ".explain"},
		{"/incidents", "10-incidents", "table"},
		{"/incidents?status=open", "10b-incidents-open-by-priority", "table"},
		{"/actions", "11-actions", "table"},
		{"/rules", "12-rules", "table"},
		{"/intel", "13-intel", "table"},
		{"/exceptions", "13b-exceptions-empty", "#exception-add"},
	} {
		do("page "+p.path, chromedp.Navigate(base+p.path), chromedp.WaitVisible(css(p.sel)))
		shot(p.name)
	}

	// Hunt: type a query and run it; the aggregation shows as a table and
	// a chart. Then an example (raw events, paged) and a wrong query.
	do("hunt", chromedp.Navigate(base+"/hunt"), chromedp.WaitVisible(css("#hunt-q")),
		chromedp.SendKeys(css("#hunt-q"), "kind=auth | stats count, dc(user.name) as users by source.ip, device.id"),
		chromedp.Click(css(`button[data-action="hunt"]`)), chromedp.WaitVisible(css("#hunt-result svg.chart")))
	if s := text("#hunt-result"); !strings.Contains(s, "203.0.113.9") || !strings.Contains(s, "cam-lobby") || !strings.Contains(s, "users") {
		t.Fatalf("hunt result:\n%s", s)
	}
	shot("13c-hunt-stats")
	do("hunt events", chromedp.Navigate(base+"/hunt?q=kind%3Dnetwork"), chromedp.WaitVisible(css(`#hunt-result a[rel="next"]`)),
		chromedp.Click(css(`#hunt-result a[rel="next"]`)), chromedp.WaitVisible(css(`#hunt-result`)))
	if s := text("#hunt-result"); !strings.Contains(s, "First page") || !strings.Contains(s, "30 events shown") {
		t.Fatalf("second page of events:\n%.600s", s)
	}
	do("hunt events of a kind", chromedp.Navigate(base+"/hunt?q=kind%3Dauth"), chromedp.WaitVisible(css(`#hunt-result`)))
	shot("13d-hunt-events")
	do("hunt error", chromedp.Navigate(base+"/hunt"), chromedp.WaitVisible(css("#hunt-q")),
		chromedp.SendKeys(css("#hunt-q"), "kind=auth | stats count by"),
		chromedp.Click(css(`button[data-action="hunt"]`)), chromedp.WaitVisible(css("#hunt-error")))
	if s := text("#hunt-error"); !strings.Contains(s, "at position") {
		t.Fatalf("hunt error:\n%s", s)
	}
	shot("13e-hunt-error")

	// Save a hunt, find it in the list, run it from its link.
	do("save a hunt", chromedp.Navigate(base+"/hunt?q=kind%3Dauth+outcome%3Dfailure+%7C+top+limit%3D3+user.name"), chromedp.WaitVisible(css("#save-name")),
		chromedp.SendKeys(css("#save-name"), "failed logins"), chromedp.Submit(css("#save-name")),
		chromedp.WaitVisible(css(`#saved-queries a`)))
	if s := text("#saved-queries"); !strings.Contains(s, "failed logins") || !strings.Contains(s, "yours") || !strings.Contains(s, "private") {
		t.Fatalf("saved queries:\n%s", s)
	}
	shot("13f-hunt-saved")
	do("run a saved hunt", chromedp.Click(css(`#saved-queries a`)), chromedp.WaitVisible(css("#hunt-result")))
	if s := text("#hunt-result"); !strings.Contains(s, "user.name") {
		t.Fatalf("saved hunt result:\n%s", s)
	}
	// Test a rule against recent events.
	do("test a rule", chromedp.Navigate(base+"/rules"), chromedp.Click(css("#rule-test summary")), chromedp.WaitVisible(css("#rule-yaml")),
		chromedp.SetValue(css("#rule-yaml"), consoleTestRule), chromedp.Click(css(`#rule-test button[type="submit"]`)),
		chromedp.WaitVisible(css("#rule-test-result")))
	if s := text("#rule-test-result"); !strings.Contains(s, "events matched") || !strings.Contains(s, `user.name="root"`) {
		t.Fatalf("rule test:\n%s", s)
	}
	shot("13g-rule-test")
	do("test a bad rule", chromedp.SetValue(css("#rule-yaml"), "title: x\ndetection:\n  selection:\n    a: [1\n"),
		chromedp.Click(css(`#rule-test button[type="submit"]`)), chromedp.WaitVisible(css("#rule-test-error")))
	if s := text("#rule-test-error"); !strings.Contains(s, "line 3") {
		t.Fatalf("bad rule:\n%s", s)
	}
	shot("13h-rule-test-error")

	// The incident's blast radius, its graph, and the printable report.
	do("blast radius", chromedp.Navigate(base+"/incidents/inc-lobby"), chromedp.WaitVisible(css(`a[href="#blast"]`)),
		chromedp.Click(css(`a[href="#blast"]`)), chromedp.WaitVisible(css("#blast svg.graph")))
	if s := text("#blast"); !strings.Contains(s, "device:plc-gateway-03") || !strings.Contains(s, "reached") || !strings.Contains(s, "same_source") {
		t.Fatalf("blast radius:\n%s", s)
	}
	if s := text("#campaign"); !strings.Contains(s, "inc-axis") {
		t.Fatalf("campaign:\n%s", s)
	}
	shot("14a-incident-blast-radius")
	do("report", chromedp.Click(css(`a[data-action="report"]`)), chromedp.WaitVisible(css("h1")))
	if s := text("body"); !strings.Contains(s, "Brute force and overload on cam-lobby") {
		t.Fatalf("report:\n%.600s", s)
	}
	shot("14b-incident-report")

	// The incident: approve the isolation, then close as a false positive.
	approve := `#action-act-isolate button[data-action="approve"]`
	do("incident", chromedp.Navigate(base+"/incidents/inc-lobby"), chromedp.WaitVisible(css(approve)))
	// The time to remediate of its device's findings.
	if s := text("#ttr-cam-lobby-CVE-2018-19052"); !strings.Contains(s, "36h0m0s") || !strings.Contains(s, "plan-camera") || !strings.Contains(s, "KEV") {
		t.Fatalf("time to remediate of the fixed finding:\n%s", s)
	}
	if s := text("#ttr-cam-lobby-CVE-2021-42386"); !strings.Contains(s, "open for 72h") {
		t.Fatalf("the open finding:\n%s", s)
	}
	shot("14-incident")
	do("approve", chromedp.Click(css(approve)), chromedp.WaitVisible(css("p.notice")))
	if s := text("p.notice"); s != "Action approved." {
		t.Fatalf("after approving: notice %q", s)
	}
	waitFor(t, "the isolation leaves pending_approval", func() (bool, string) {
		x, err := a.store.GetAction(t.Context(), "act-isolate")
		return err == nil && x.State != vigil.ActionPendingApproval && len(x.Approvers) == 1 && x.Approvers[0] == "user:ana", fmt.Sprintf("%+v %v", x, err)
	})
	const reason = "Pen test by Acme, ticket SEC-1234: not an attack."
	do("resolve as false positive",
		chromedp.Click(css(`input[name="status"][value="false_positive"]`)),
		chromedp.SendKeys(css("#resolve-reason"), reason),
		chromedp.Click(css(`button[data-action="resolve"]`)),
		chromedp.WaitVisible(css("p.notice")))
	if s := text("#resolution"); s != reason {
		t.Fatalf("the reason on the closed incident: %q", s)
	}
	shot("15-incident-closed")
	// A false positive: exceptions are suggested; accept the first (the
	// brute-force rule on cam-lobby) and see it listed.
	accept := `#exceptions button[data-action="accept-exception"]`
	do("suggested exceptions", chromedp.WaitVisible(css(accept)))
	if s := text("#exceptions"); !strings.Contains(s, "vigil-ssh-bruteforce") || !strings.Contains(s, "device cam-lobby") {
		t.Fatalf("suggested exceptions:\n%s", s)
	}
	do("accept an exception", chromedp.Click(css(accept)), chromedp.WaitVisible(css("#exceptions .ast-succeeded")))
	if s := text("p.notice"); s != "Exception added." {
		t.Fatalf("after accepting: notice %q", s)
	}
	if s := text("#exceptions"); !strings.Contains(s, "accepted") {
		t.Fatalf("the accepted suggestion is not marked:\n%s", s)
	}
	shot("15b-incident-exception-accepted")
	do("exceptions page", chromedp.Navigate(base+"/exceptions"), chromedp.WaitVisible(css("#exception-list")))
	if s := text("#exception-list"); !strings.Contains(s, "vigil-ssh-bruteforce") || !strings.Contains(s, "device cam-lobby") || !strings.Contains(s, "user:ana") {
		t.Fatalf("exceptions page:\n%s", s)
	}
	shot("15c-exceptions")
	// The reason is in the printable report and in the audit record.
	do("report with the reason", chromedp.Navigate(base+"/incidents/inc-lobby/report"), chromedp.WaitVisible(css("h1")))
	if s := text("body"); !strings.Contains(s, reason) || !strings.Contains(s, "by user:ana") {
		t.Fatalf("report of the closed incident:\n%.1500s", s)
	}
	shot("15d-report-closed")
	recs, err := a.store.ListAudit(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	audited := false
	for _, r := range recs {
		audited = audited || (r.Action == "incident.resolve" && r.Actor == "user:ana" && strings.Contains(r.Detail, "SEC-1234") && r.Outcome == vigil.OutcomeOK)
	}
	if !audited {
		t.Fatalf("no audit record of the resolution with its reason by user:ana")
	}
	xs, err := a.store.ListExceptions(t.Context())
	if err != nil || len(xs) != 1 || xs[0].RuleID != "vigil-ssh-bruteforce" || xs[0].DeviceID != "cam-lobby" {
		t.Fatalf("exceptions in the store after accepting: %+v %v", xs, err)
	}
	// One click to isolate a device: held for approval by the playbook's step.
	do("isolate", chromedp.Navigate(base+"/devices/camera-01"), chromedp.Click(css(`button[data-action="isolate"]`)), chromedp.WaitVisible(css("p.notice")))
	shot("16-device-isolate-requested")
	acts, _, err := a.store.ListActions(t.Context(), store.ActionFilter{DeviceID: "camera-01"})
	if err != nil || len(acts) != 1 || acts[0].Type != "isolate" || acts[0].State != vigil.ActionPendingApproval || acts[0].RequestedBy != "user:ana" {
		t.Fatalf("actions of camera-01 after the isolate click: %+v %v", acts, err)
	}
	if s := text("#cmd-" + acts[0].ID); !strings.Contains(s, "isolate") || !strings.Contains(s, "user:ana") || !strings.Contains(s, "pending_approval") {
		t.Fatalf("the isolation requested is not in camera-01's command history:\n%s", s)
	}
	// The command history of cam-lobby: the playbook's isolation, approved
	// by ana above, with its status and result.
	do("device commands", chromedp.Navigate(base+"/devices/cam-lobby#commands"), chromedp.WaitVisible(css("#cmd-act-isolate")))
	if s := text("#cmd-act-isolate"); !strings.Contains(s, "isolate") || !strings.Contains(s, "playbook:isolate-attacked-camera") ||
		!strings.Contains(s, "approved by user:ana") || strings.Contains(s, "pending_approval") {
		t.Fatalf("cam-lobby's command history, the isolation:\n%s", s)
	}
	// A command sent directly through the API is in the history too:
	// queued, with the token that sent it.
	var sent struct {
		Command struct{ ID string } `json:"command"`
	}
	apiCall(t, a, "POST", "/api/v1/devices/cam-lobby/commands", []byte(`{"action":"reboot","ttl":"10m"}`), 201, &sent)
	do("device commands with a queued one", chromedp.Navigate(base+"/devices/cam-lobby?again=1#commands"), chromedp.WaitVisible(css("#cmd-"+sent.Command.ID)))
	if s := text("#cmd-" + sent.Command.ID); !strings.Contains(s, "reboot") || !strings.Contains(s, "command to the agent") || !strings.Contains(s, "token:") ||
		!strings.Contains(s, "queued") {
		t.Fatalf("the queued command in cam-lobby's history:\n%s", s)
	}
	if s := text("#commands tbody"); strings.Index(s, "reboot") > strings.Index(s, "isolate") {
		t.Fatalf("the history is not newest first:\n%s", s)
	}
	shot("16b-device-commands")
	in, err := a.store.GetIncident(t.Context(), "inc-lobby")
	if err != nil || in.Status != vigil.IncidentFalsePositive {
		t.Fatalf("incident after resolving: %v %v", in.Status, err)
	}
	logout()

	// A viewer sees the pending notification without an approve button,
	// and a direct POST is refused.
	login("vic")
	do("viewer incident", chromedp.Navigate(base+"/incidents/inc-lobby"), chromedp.WaitVisible(css("#action-act-notify")))
	shot("17-incident-viewer")
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('button[data-action="approve"]').length`))
	if err != nil || n != 0 {
		t.Fatalf("the viewer sees %d approve buttons (%v)", n, err)
	}
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`(async () => {
		const csrf = document.querySelector('input[name="csrf"]').value;
		const r = await fetch('/actions/act-notify/approve', {method: 'POST', body: new URLSearchParams({csrf})});
		return r.status;
	})()`, chromedp.EvalAwaitPromise))
	if err != nil || status != 403 {
		t.Fatalf("viewer's direct approval: status %d (%v), want 403", status, err)
	}
	if x, _ := a.store.GetAction(t.Context(), "act-notify"); x.State != vigil.ActionPendingApproval {
		t.Fatalf("the viewer's refused approval changed the action: %s", x.State)
	}
	logout()

	login("ada")
	for _, p := range []struct{ path, name, sel string }{
		{"/audit", "18-audit", "table"},
		{"/settings", "19-settings", "table"},
	} {
		do("page "+p.path, chromedp.Navigate(base+p.path), chromedp.WaitVisible(css(p.sel)))
		shot(p.name)
	}
	do("audit", chromedp.Navigate(base+"/audit"), chromedp.WaitVisible(css("table")))
	if s := text("main"); !strings.Contains(s, "The trail holds") || !strings.Contains(s, "action.approve") {
		t.Fatalf("audit page:\n%.2000s", s)
	}
	t.Logf("screenshots in %s", dir)
}
