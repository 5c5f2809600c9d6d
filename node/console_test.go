package node

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/console"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/vuln/scan"
)

// consolePassword is the password of the seeded console users.
const consolePassword = "correct horse battery"

// consoleUsers are the seeded users, one per role that may use the console.
var consoleUsers = map[auth.Role]string{auth.RoleAdmin: "ada", auth.RoleAnalyst: "ana", auth.RoleViewer: "vic"}

// seedConsole fills a running server's store with what the console shows:
// a fleet with health and software, explained alerts, an open incident
// with two actions waiting for approval, and one user per role.
func seedConsole(t *testing.T, a *Node) {
	t.Helper()
	ctx := t.Context()
	now := time.Now().UTC()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for role, name := range consoleUsers {
		h, err := auth.HashPassword(consolePassword)
		must(err)
		must(a.store.PutUser(ctx, store.User{Name: name, Role: string(role), PasswordHash: h, Created: now, Updated: now}))
	}
	classes := []struct{ class, vendor, model, fw string }{
		{vigil.ClassCamera, "Hikvision", "DS-2CD2042", "5.4.5"}, {vigil.ClassCamera, "Axis", "M3045", "9.80.1"},
		{vigil.ClassThermostat, "Honeywell", "T6", "3.1"}, {vigil.ClassPLCGateway, "Siemens", "IOT2050", "1.4.1"},
		{vigil.ClassSmartMeter, "Landis+Gyr", "E450", "2.0"},
	}
	for i := range 15 {
		c := classes[i%len(classes)]
		d := vigil.Device{ID: fmt.Sprintf("%s-%02d", c.class, i), Class: c.class, Vendor: c.vendor, Model: c.model, Firmware: c.fw,
			State: vigil.StateActive, FirstSeen: now.Add(-72 * time.Hour), LastSeen: now.Add(-time.Duration(i) * time.Minute),
			Network: []vigil.NetIdentity{{Interface: "eth0", MAC: fmt.Sprintf("00:11:22:33:44:%02x", i), Addresses: []string{fmt.Sprintf("10.0.0.%d", 10+i)}}},
			Health:  &vigil.Health{Time: now, CPU: float64(10 + i*5), Memory: float64(30 + i*3), Disk: 40}}
		if i == 0 {
			d.ID, d.Name = "cam-lobby", "Lobby camera"
			d.Software = []vigil.Component{{Name: "busybox", Version: "1.30.1", Source: "opkg"}, {Name: "lighttpd", Version: "1.4.45", Source: "opkg"}}
			d.Enrolled = now.Add(-72 * time.Hour)
		}
		if i == 14 {
			d.LastSeen = now.Add(-3 * time.Hour) // silent
		}
		must(a.store.PutDevice(ctx, d))
	}
	var hs []vigil.Health
	for m := 24 * 60; m >= 0; m -= 10 {
		hs = append(hs, vigil.Health{DeviceID: "cam-lobby", Time: now.Add(-time.Duration(m) * time.Minute),
			CPU: 20 + float64(m%90)/3, Memory: 45 + float64(m%60)/6, Disk: 52})
	}
	must(a.store.AddHealth(ctx, hs))
	a1 := vigil.Alert{ID: "alert-brute", DedupKey: "k1", Detector: "sigma", RuleID: "vigil-ssh-bruteforce", Title: "SSH brute force on a camera",
		Severity: vigil.SeverityHigh, DeviceID: "cam-lobby", Techniques: []string{"T1110"}, Entities: []string{"ip:203.0.113.9"},
		FirstEventTime: now.Add(-6 * time.Minute), LastEventTime: now.Add(-5 * time.Minute), Created: now.Add(-5 * time.Minute), Count: 3,
		IncidentID: "inc-lobby", Provenance: []string{"device-cert:cam-lobby"},
		Explanation: &vigil.Explanation{
			Rule:    &vigil.ExplainedRule{ID: "vigil-ssh-bruteforce", Title: "SSH brute force on a camera", Condition: "selection | count() by source.ip > 5"},
			Matches: []vigil.Match{{Selection: "selection", Field: "event.action", Value: "login", Pattern: "login"}, {Selection: "selection", Field: "event.outcome", Value: "failure", Pattern: "failure"}},
			Group:   map[string]string{"source.ip": "203.0.113.9"}, Window: "5m0s",
			Evidence: []vigil.EvidenceExcerpt{{EventID: "ev1", Time: now.Add(-6 * time.Minute), DeviceID: "cam-lobby", Kind: "auth",
				Fields: map[string]string{"user.name": "root", "source.ip": "203.0.113.9", "event.outcome": "failure"}}},
		}}
	a2 := vigil.Alert{ID: "alert-cpu", DedupKey: "k2", Detector: "threshold", RuleID: "cpu-high", Title: "CPU above 90% for 3 readings",
		Severity: vigil.SeverityMedium, DeviceID: "cam-lobby", FirstEventTime: now.Add(-4 * time.Minute), LastEventTime: now.Add(-3 * time.Minute),
		Created: now.Add(-3 * time.Minute), Count: 1, IncidentID: "inc-lobby",
		Explanation: &vigil.Explanation{Threshold: &vigil.ExplainedThreshold{Series: "health.cpu_pct", Op: ">", Threshold: "90", Observed: "97.5", Count: 3}}}
	a3 := vigil.Alert{ID: "alert-new-peer", DedupKey: "k3", Detector: "baseline", RuleID: "baseline.new_peer", Title: "New peer for a PLC gateway",
		Severity: vigil.SeverityLow, DeviceID: "plc-gateway-03", Created: now.Add(-30 * time.Minute), Count: 1,
		FirstEventTime: now.Add(-31 * time.Minute), LastEventTime: now.Add(-31 * time.Minute),
		Fields: map[string]any{"baseline.feature": "destination.ip", "baseline.value": "198.51.100.4", "baseline.seen": "0", "destination.port": "443"}}
	// Priorities as the correlator sets them (docs/investigation.md).
	prio := func(sev vigil.Severity, crit vigil.Criticality, why string, public bool, conf float64) *vigil.Priority {
		p := vigil.ComputePriority(vigil.PriorityInputs{Severity: sev, Criticality: crit, CriticalityWhy: why, InternetFacing: public,
			ExposureWhy: map[bool]string{true: "203.0.113.9"}[public], Confidence: conf, ConfidenceWhy: "evidence from the device's certificate", Devices: 1,
			BlastWhy: "devices in the incident"})
		return &p
	}
	a1.Priority = prio(vigil.SeverityHigh, vigil.CriticalityNormal, "class camera", true, 1)
	a2.Priority = prio(vigil.SeverityMedium, vigil.CriticalityNormal, "class camera", false, 1)
	a3.Priority = prio(vigil.SeverityLow, vigil.CriticalitySafety, "class plc-gateway", false, 0.85)
	a3.IncidentID = "inc-peer"
	for _, al := range []vigil.Alert{a1, a2, a3} {
		must(a.store.PutAlert(ctx, al))
	}
	must(a.store.PutIncident(ctx, vigil.Incident{ID: "inc-lobby", Title: "Brute force and overload on cam-lobby", Status: vigil.IncidentOpen,
		Severity: vigil.SeverityHigh, DeviceIDs: []string{"cam-lobby"}, Entities: []string{"ip:203.0.113.9"}, AlertIDs: []string{a1.ID, a2.ID},
		Techniques: []string{"T1110"}, FirstEventTime: now.Add(-6 * time.Minute), FirstReceived: now.Add(-6 * time.Minute),
		Detected: now.Add(-5 * time.Minute), Updated: now.Add(-3 * time.Minute), Priority: a1.Priority}))
	// A second open incident, lower in the queue, and one stored before
	// priorities (none).
	must(a.store.PutIncident(ctx, vigil.Incident{ID: "inc-peer", Title: "New peer for a PLC gateway", Status: vigil.IncidentOpen,
		Severity: vigil.SeverityLow, DeviceIDs: []string{"plc-gateway-03"}, AlertIDs: []string{a3.ID},
		Detected: now.Add(-30 * time.Minute), Updated: now.Add(-30 * time.Minute), Priority: a3.Priority}))
	must(a.store.PutIncident(ctx, vigil.Incident{ID: "inc-old", Title: "Port scan from a thermostat", Status: vigil.IncidentOpen,
		Severity: vigil.SeverityMedium, DeviceIDs: []string{"thermostat-02"}, Detected: now.Add(-2 * time.Minute), Updated: now.Add(-2 * time.Minute)}))
	for _, x := range []vigil.Action{
		{ID: "act-isolate", Type: "isolate", DeviceID: "cam-lobby", IncidentID: "inc-lobby", AlertID: a1.ID, Playbook: "isolate-attacked-camera",
			State: vigil.ActionPendingApproval, RequestedBy: "playbook:isolate-attacked-camera", Created: now.Add(-4 * time.Minute), Updated: now.Add(-4 * time.Minute)},
		{ID: "act-notify", Type: "notify", DeviceID: "cam-lobby", IncidentID: "inc-lobby", Playbook: "isolate-attacked-camera",
			State: vigil.ActionPendingApproval, RequestedBy: "playbook:isolate-attacked-camera", Created: now.Add(-4 * time.Minute), Updated: now.Add(-4 * time.Minute)},
	} {
		must(a.store.PutAction(ctx, x))
	}
	// How cam-lobby is reachable, as the agent's listening sockets and the
	// sensor's traffic teach the vulnerability scanner.
	a.vuln.SetExposure("cam-lobby", []scan.Listener{{Transport: "tcp", Port: 80, Process: "lighttpd", Seen: true}, {Transport: "tcp", Port: 22, Process: "dropbear"}})
	seedInvestigation(t, a)
}

// consoleClient is a browser-like HTTP client of the console: cookies, TLS
// with the server's CA.
type consoleClient struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newConsoleClient(t *testing.T, a *Node) *consoleClient {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.ca.Pool()}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &consoleClient{t: t, base: a.URL(), hc: hc}
}

var csrfValue = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (c *consoleClient) get(p string) (int, string) {
	c.t.Helper()
	res, err := c.hc.Get(c.base + p)
	if err != nil {
		c.t.Fatalf("GET %s: %v", p, err)
	}
	defer res.Body.Close()
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		return res.StatusCode, ""
	}
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (c *consoleClient) post(p string, form url.Values) (int, string) {
	c.t.Helper()
	res, err := c.hc.PostForm(c.base+p, form)
	if err != nil {
		c.t.Fatalf("POST %s: %v", p, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (c *consoleClient) csrf(p string) string {
	c.t.Helper()
	_, body := c.get(p)
	m := csrfValue.FindStringSubmatch(body)
	if m == nil {
		c.t.Fatalf("no CSRF token on %s", p)
	}
	return m[1]
}

func (c *consoleClient) login(user string) {
	c.t.Helper()
	code, body := c.post("/login", url.Values{"csrf": {c.csrf("/login")}, "username": {user}, "password": {consolePassword}})
	if code != http.StatusSeeOther {
		c.t.Fatalf("login as %s: %d %s", user, code, body)
	}
}

// TestConsoleEveryRouteEveryRole walks every console route with a user of
// every role against a real server: a page answers 200 when the role holds
// its permission and 403 when not; a form is refused with 403 exactly when
// the role lacks the permission of the API route it calls (a refused one
// leaves a "denied" audit record). Forms are sent with ids that do not
// exist, so that the walk changes nothing.
func TestConsoleEveryRouteEveryRole(t *testing.T) {
	a := startTestApp(t)
	seedConsole(t, a)
	c, err := console.New(console.Options{Store: a.store, API: a.web, Tokens: a.tokens})
	if err != nil {
		t.Fatal(err)
	}
	routes := c.Routes()
	if len(routes) < 20 {
		t.Fatalf("%d console routes", len(routes))
	}
	ids := map[string]string{"/devices/{id}": "cam-lobby", "/alerts/{id}": "alert-brute", "/incidents/{id}": "inc-lobby", "/incidents/{id}/report": "inc-lobby"}
	for _, role := range []auth.Role{auth.RoleAdmin, auth.RoleAnalyst, auth.RoleViewer} {
		cl := newConsoleClient(t, a)
		cl.login(consoleUsers[role])
		csrf := cl.csrf("/")
		for _, rt := range routes {
			p := rt.Pattern
			if id, ok := ids[p]; ok && rt.Method == "GET" {
				p = strings.Replace(p, "{id}", id, 1)
			}
			p = strings.NewReplacer("{$}", "", "{id}", "no-such-id", "{name}", "no-such-user").Replace(p)
			var code int
			var body string
			if rt.Method == "GET" {
				code, body = cl.get(p)
			} else {
				code, body = cl.post(p, url.Values{"csrf": {csrf}})
			}
			may := role.Can(rt.Perm)
			switch {
			case rt.Method == "GET" && may && code != http.StatusOK:
				t.Errorf("%s GET %s = %d, want 200\n%.400s", role, p, code, body)
			case may && (code == http.StatusForbidden || code == http.StatusUnauthorized || code >= 500):
				t.Errorf("%s %s %s = %d, want it allowed\n%.400s", role, rt.Method, p, code, body)
			case !may && code != http.StatusForbidden:
				t.Errorf("%s %s %s = %d, want 403", role, rt.Method, p, code)
			}
		}
	}
	recs, err := a.store.ListAudit(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	denied := 0
	for _, r := range recs {
		if r.Actor == "user:vic" && r.Outcome == vigil.OutcomeDenied {
			denied++
		}
	}
	if denied < 8 {
		t.Errorf("%d denied audit records of the viewer, want one per form (at least 8)", denied)
	}
	// Nothing was changed by the walk.
	for _, id := range []string{"act-isolate", "act-notify"} {
		if x, err := a.store.GetAction(context.Background(), id); err != nil || x.State != vigil.ActionPendingApproval {
			t.Errorf("action %s after the walk: %v %v", id, x.State, err)
		}
	}
}

// TestConsoleExceptions: without a browser, the false positive's suggested
// exceptions on the incident page, accepting one (back to the incident,
// marked accepted), the Exceptions page listing it, a viewer refused its
// removal, an analyst removing it; and the open queue by priority.
func TestConsoleExceptions(t *testing.T) {
	a := startTestApp(t)
	seedConsole(t, a)
	ana := newConsoleClient(t, a)
	ana.login("ana")
	csrf := ana.csrf("/")
	if _, body := ana.get("/incidents?status=open"); strings.Index(body, "inc-lobby") > strings.Index(body, "inc-peer") ||
		strings.Index(body, "inc-peer") > strings.Index(body, "inc-old") || !strings.Contains(body, `<span class="prio prio-mid">55</span>`) {
		t.Fatalf("open incidents are not by priority:\n%s", body)
	}
	if code, body := ana.post("/incidents/inc-lobby/resolve", url.Values{"csrf": {csrf}, "status": {"false_positive"}}); code != http.StatusSeeOther {
		t.Fatalf("resolve: %d %.300s", code, body)
	}
	_, page := ana.get("/incidents/inc-lobby")
	if !strings.Contains(page, "Suggested exceptions") || !strings.Contains(page, `name="rule" value="vigil-ssh-bruteforce"`) {
		t.Fatalf("no suggestion on the false positive's page:\n%s", page)
	}
	expires := regexp.MustCompile(`name="expires" value="([^"]+)"`).FindStringSubmatch(page)
	if expires == nil {
		t.Fatal("no expiry in the accept form")
	}
	code, _ := ana.post("/exceptions", url.Values{"csrf": {csrf}, "rule": {"vigil-ssh-bruteforce"}, "device": {"cam-lobby"},
		"reason": {"lab camera"}, "expires": {expires[1]}, "back": {"/incidents/inc-lobby#exceptions"}})
	if code != http.StatusSeeOther {
		t.Fatalf("accept: %d", code)
	}
	res, err := ana.hc.PostForm(a.URL()+"/exceptions", url.Values{"csrf": {csrf}, "rule": {"cpu-high"}, "class": {"camera"},
		"reason": {"cameras run hot"}, "ttl": {"7d"}, "back": {"/incidents/inc-lobby#exceptions"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); loc != "/incidents/inc-lobby?done=exception#exceptions" {
		t.Fatalf("after accepting: redirected to %q", loc)
	}
	if _, page := ana.get("/incidents/inc-lobby"); !strings.Contains(page, "accepted") {
		t.Fatalf("the accepted suggestion is not marked")
	}
	xs, err := a.store.ListExceptions(t.Context())
	if err != nil || len(xs) != 2 {
		t.Fatalf("exceptions: %+v %v", xs, err)
	}
	for _, x := range xs { // the console user, as the audit names them
		if x.Author != "user:ana" {
			t.Errorf("exception %s authored by %q, want user:ana", x.ID, x.Author)
		}
	}
	if code, body := ana.post("/exceptions", url.Values{"csrf": {csrf}, "rule": {"r"}, "device": {"d"}, "reason": {"x"}, "expires": {"tomorrow"}}); code != http.StatusBadRequest ||
		!strings.Contains(body, "RFC 3339") {
		t.Fatalf("bad expiry: %d %.300s", code, body)
	}
	vic := newConsoleClient(t, a)
	vic.login("vic")
	_, list := vic.get("/exceptions")
	if !strings.Contains(list, "vigil-ssh-bruteforce") || !strings.Contains(list, "class camera") || strings.Contains(list, "Remove") || strings.Contains(list, "Add an exception") {
		t.Fatalf("viewer's exceptions page:\n%s", list)
	}
	if code, _ := vic.post("/exceptions/"+xs[0].ID+"/delete", url.Values{"csrf": {vic.csrf("/")}}); code != http.StatusForbidden {
		t.Fatalf("viewer's removal: %d, want 403", code)
	}
	if code, _ := ana.post("/exceptions/"+xs[0].ID+"/delete", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther {
		t.Fatalf("analyst's removal: %d", code)
	}
	if xs, _ := a.store.ListExceptions(t.Context()); len(xs) != 1 {
		t.Fatalf("after the removal: %+v", xs)
	}
}
