package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/web/api"
)

// seed stores a small fleet with health, events, alerts and incidents.
func seed(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	classes := []string{vigil.ClassCamera, vigil.ClassThermostat, vigil.ClassCamera, vigil.ClassPLCGateway, vigil.ClassCamera}
	for i, c := range classes {
		d := vigil.Device{ID: fmt.Sprintf("dev-%02d", i), Class: c, State: vigil.StateActive, FirstSeen: now.Add(-48 * time.Hour), LastSeen: now}
		if i == 2 {
			d.State = vigil.StateQuarantined
			d.Tags = []string{"lab", "floor-2"}
		}
		if err := e.store.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	var hs []vigil.Health
	for m := 0; m < 180; m += 10 { // three hours, every 10 minutes
		hs = append(hs, vigil.Health{DeviceID: "dev-00", Time: now.Add(-time.Duration(m) * time.Minute), CPU: float64(m)})
	}
	if err := e.store.AddHealth(ctx, hs); err != nil {
		t.Fatal(err)
	}
	evs := []vigil.Event{
		{ID: "ev-1", Time: now.Add(-30 * time.Minute), DeviceID: "dev-00", Kind: vigil.KindAuth, Action: "login", Outcome: vigil.OutcomeFailure,
			Fields: map[string]any{"user.name": "root"}, Network: &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.0.7"), DstPort: 23}},
		{ID: "ev-2", Time: now.Add(-20 * time.Minute), DeviceID: "dev-00", Kind: vigil.KindAuth, Action: "login", Outcome: vigil.OutcomeFailure,
			Fields: map[string]any{"user.name": "admin"}},
		{ID: "ev-3", Time: now.Add(-10 * time.Minute), DeviceID: "dev-01", Kind: vigil.KindProcess, Action: "exec",
			Fields: map[string]any{"process.name": "busybox"}},
		{ID: "ev-4", Time: now.Add(-2 * time.Hour), DeviceID: "dev-00", Kind: vigil.KindNetwork, Action: "listen"},
	}
	if err := e.store.PutEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	alerts := []vigil.Alert{
		{ID: "al-1", RuleID: "brute", Title: "brute force", Severity: vigil.SeverityHigh, DeviceID: "dev-00", IncidentID: "in-1",
			EventIDs: []string{"ev-1", "ev-2"}, Created: now.Add(-19 * time.Minute), Count: 1, Techniques: []string{"T1110"}},
		{ID: "al-2", RuleID: "telnet", Title: "telnet listener", Severity: vigil.SeverityMedium, DeviceID: "dev-00", IncidentID: "in-1",
			Created: now.Add(-15 * time.Minute), Count: 1},
		{ID: "al-3", RuleID: "cpu", Title: "cpu", Severity: vigil.SeverityLow, DeviceID: "dev-01", Created: now.Add(-5 * time.Minute), Count: 1},
	}
	for _, a := range alerts {
		if err := e.store.PutAlert(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	incs := []vigil.Incident{
		{ID: "in-1", Title: "attack on dev-00", Status: vigil.IncidentContained, Severity: vigil.SeverityHigh, DeviceIDs: []string{"dev-00"},
			AlertIDs: []string{"al-1", "al-2"}, FirstEventTime: now.Add(-30 * time.Minute), Detected: now.Add(-30*time.Minute + 1500*time.Millisecond),
			Contained: now.Add(-30*time.Minute + 4*time.Second), Updated: now.Add(-10 * time.Minute)},
		{ID: "in-2", Title: "cpu on dev-01", Status: vigil.IncidentOpen, Severity: vigil.SeverityLow, DeviceIDs: []string{"dev-01"},
			AlertIDs: []string{"al-3"}, FirstEventTime: now.Add(-6 * time.Minute), Detected: now.Add(-5 * time.Minute), Updated: now.Add(-5 * time.Minute)},
	}
	for _, in := range incs {
		if err := e.store.PutIncident(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
}

func ids[T any](items []T, id func(T) string) []string {
	out := make([]string, len(items))
	for i, x := range items {
		out[i] = id(x)
	}
	return out
}

func devID(d vigil.Device) string               { return d.ID }
func alertID(a vigil.Alert) string              { return a.ID }
func eventID(e vigil.Event) string              { return e.ID }
func incID(i api.Incident) string               { return i.ID }
func tokName(t auth.Token) string               { return t.Name }
func sameIDs(got []string, want ...string) bool { return slices.Equal(got, want) }

func TestListDevices(t *testing.T) {
	e := newEnv(t, nil)
	seed(t, e)
	f := func(query string, want ...string) {
		t.Helper()
		var l api.List[vigil.Device]
		e.get("/api/v1/devices"+query, 200, &l)
		if got := ids(l.Items, devID); !sameIDs(got, want...) {
			t.Errorf("devices%s = %v, want %v", query, got, want)
		}
	}
	f("", "dev-00", "dev-01", "dev-02", "dev-03", "dev-04")
	f("?class=camera", "dev-00", "dev-02", "dev-04")
	f("?class=camera&state=active", "dev-00", "dev-04")
	f("?state=quarantined", "dev-02")
	f("?tag=lab", "dev-02")
	f("?tag=nope")

	// Paging with limit and cursor visits every device once.
	var all []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		var l api.List[vigil.Device]
		e.get("/api/v1/devices?limit=2&cursor="+url.QueryEscape(cursor), 200, &l)
		if len(l.Items) > 2 {
			t.Fatalf("page of %d items with limit=2", len(l.Items))
		}
		all = append(all, ids(l.Items, devID)...)
		if l.NextCursor == "" {
			break
		}
		cursor = l.NextCursor
	}
	if !sameIDs(all, "dev-00", "dev-01", "dev-02", "dev-03", "dev-04") {
		t.Fatalf("paged devices = %v", all)
	}
}

func TestEmptyListIsAnArray(t *testing.T) {
	e := newEnv(t, nil)
	code, body, hdr := e.do("GET", "/api/v1/devices", "viewer", "")
	if code != 200 || string(body) != `{"items":[],"next_cursor":""}`+"\n" || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("empty list = %d %q %q", code, body, hdr.Get("Content-Type"))
	}
}

func TestGetDevice(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.HealthWindow = 30 * time.Minute })
	seed(t, e)
	var d api.DeviceDetail
	e.get("/api/v1/devices/dev-00", 200, &d)
	if d.ID != "dev-00" || d.Class != vigil.ClassCamera {
		t.Fatalf("device = %+v", d.Device)
	}
	// The default window (30m): samples at -30m, -20m, -10m, 0, oldest first.
	var cpu []float64
	for _, h := range d.HealthHistory {
		cpu = append(cpu, h.CPU)
	}
	if !slices.Equal(cpu, []float64{30, 20, 10, 0}) {
		t.Fatalf("health history cpu = %v, want [30 20 10 0]", cpu)
	}
	e.get("/api/v1/devices/dev-00?since=2h&until="+url.QueryEscape(now.Add(-time.Hour).Format(time.RFC3339)), 200, &d)
	if len(d.HealthHistory) != 6 || d.HealthHistory[0].CPU != 120 || d.HealthHistory[5].CPU != 70 {
		t.Fatalf("health history [-2h, -1h) = %+v", d.HealthHistory)
	}
	e.get("/api/v1/devices/dev-03", 200, &d)
	if d.HealthHistory == nil || len(d.HealthHistory) != 0 {
		t.Fatalf("device without health: history = %#v, want []", d.HealthHistory)
	}

	code, body, _ := e.do("GET", "/api/v1/devices/nope", "viewer", "")
	if code != 404 || errorCode(t, body) != vigil.ENOTFOUND {
		t.Fatalf("missing device = %d %s", code, body)
	}
}

func TestListAlerts(t *testing.T) {
	e := newEnv(t, nil)
	seed(t, e)
	f := func(query string, want ...string) {
		t.Helper()
		var l api.List[vigil.Alert]
		e.get("/api/v1/alerts"+query, 200, &l)
		if got := ids(l.Items, alertID); !sameIDs(got, want...) {
			t.Errorf("alerts%s = %v, want %v", query, got, want)
		}
	}
	f("", "al-3", "al-2", "al-1")
	f("?device=dev-00", "al-2", "al-1")
	f("?rule=telnet", "al-2")
	f("?incident=in-1", "al-2", "al-1")
	f("?min_severity=medium", "al-2", "al-1")
	f("?min_severity=4", "al-1")
	f("?since=16m", "al-3", "al-2")
	f("?until="+url.QueryEscape(now.Add(-16*time.Minute).Format(time.RFC3339)), "al-1")

	var a vigil.Alert
	e.get("/api/v1/alerts/al-1", 200, &a)
	if a.Severity != vigil.SeverityHigh || !slices.Equal(a.EventIDs, []string{"ev-1", "ev-2"}) {
		t.Fatalf("alert = %+v", a)
	}
}

func TestIncidents(t *testing.T) {
	e := newEnv(t, nil)
	seed(t, e)
	var l api.List[api.Incident]
	e.get("/api/v1/incidents", 200, &l)
	if got := ids(l.Items, incID); !sameIDs(got, "in-2", "in-1") {
		t.Fatalf("incidents = %v", got)
	}
	e.get("/api/v1/incidents?status=open", 200, &l)
	if got := ids(l.Items, incID); !sameIDs(got, "in-2") {
		t.Fatalf("open incidents = %v", got)
	}
	e.get("/api/v1/incidents?device=dev-00", 200, &l)
	if got := ids(l.Items, incID); !sameIDs(got, "in-1") {
		t.Fatalf("incidents of dev-00 = %v", got)
	}

	code, body, _ := e.do("GET", "/api/v1/incidents/in-1", "viewer", "")
	if code != 200 {
		t.Fatalf("incident = %d %s", code, body)
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["time_to_detect"] != "1.5s" || raw["time_to_detect_seconds"] != 1.5 ||
		raw["time_to_contain"] != "2.5s" || raw["time_to_contain_seconds"] != 2.5 || raw["id"] != "in-1" {
		t.Fatalf("incident JSON = %s", body)
	}
	_, body, _ = e.do("GET", "/api/v1/incidents/in-2", "viewer", "")
	raw = nil
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["time_to_detect"] != "1m0s" || raw["time_to_contain"] != nil || raw["time_to_contain_seconds"] != nil {
		t.Fatalf("open incident JSON = %s", body)
	}
}

func TestEvents(t *testing.T) {
	e := newEnv(t, nil)
	seed(t, e)
	f := func(query string, want ...string) {
		t.Helper()
		var l api.List[vigil.Event]
		e.get("/api/v1/events"+query, 200, &l)
		if got := ids(l.Items, eventID); !sameIDs(got, want...) {
			t.Errorf("events%s = %v, want %v", query, got, want)
		}
	}
	f("", "ev-3", "ev-2", "ev-1", "ev-4")
	f("?device=dev-00", "ev-2", "ev-1", "ev-4")
	f("?kind=auth", "ev-2", "ev-1")
	f("?since=1h", "ev-3", "ev-2", "ev-1")
	f("?since=1h&until=15m", "ev-2", "ev-1")
	f("?field.user.name=root", "ev-1")
	f("?field.event.action=login&field.user.name=admin", "ev-2")
	f("?field.source.ip=10.0.0.7", "ev-1")
	f("?field.destination.port=23", "ev-1")
	f("?field.process.name=busybox&device=dev-00")
	f("?limit=1", "ev-3")

	var ev vigil.Event
	e.get("/api/v1/events/ev-1", 200, &ev)
	if ev.DeviceID != "dev-00" || ev.Fields["user.name"] != "root" || ev.Network == nil || ev.Network.SrcIP.String() != "10.0.0.7" {
		t.Fatalf("event = %+v", ev)
	}
	code, body, _ := e.do("GET", "/api/v1/events/nope", "viewer", "")
	if code != 404 || errorCode(t, body) != vigil.ENOTFOUND {
		t.Fatalf("missing event = %d %s", code, body)
	}
}

func TestBadQueries(t *testing.T) {
	e := newEnv(t, nil)
	f := func(target, mention string) {
		t.Helper()
		code, body, _ := e.do("GET", target, "viewer", "")
		if code != 400 || errorCode(t, body) != vigil.EINVALID || !strings.Contains(string(body), mention) {
			t.Errorf("GET %s = %d %s, want 400 mentioning %q", target, code, body, mention)
		}
	}
	f("/api/v1/devices?devce=x", `unknown query parameter \"devce\"`)
	f("/api/v1/devices?limit=0", "limit")
	f("/api/v1/devices?limit=abc", "limit")
	f("/api/v1/devices?limit=1001", "limit")
	f("/api/v1/devices?class=a&class=b", "given 2 times")
	f("/api/v1/alerts?min_severity=urgent", "min_severity")
	f("/api/v1/alerts?since=yesterday", "since")
	f("/api/v1/events?since=1h&until=2h", "must be before")
	f("/api/v1/events?field.=x", `unknown query parameter \"field.\"`)
	f("/api/v1/events?cursor=%%%", "cannot parse query")
	f("/api/v1/events?cursor=bm90LWEtY3Vyc29y", "cursor")
	f("/api/v1/incidents?status=closed", "status")
	f("/api/v1/alerts/al-1?x=1", "unknown query parameter")
}

func TestTokens(t *testing.T) {
	e := newEnv(t, nil)
	code, body, hdr := e.do("POST", "/api/v1/tokens", "admin", `{"name":"grafana","role":"viewer"}`)
	if code != http.StatusCreated {
		t.Fatalf("create token = %d %s", code, body)
	}
	var created api.CreatedToken
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Secret, auth.TokenPrefix) || created.Name != "grafana" || created.Role != auth.RoleViewer || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("created = %s", body)
	}
	// The new token works, with its role.
	e.tok["grafana"] = created.Secret
	if code, _, _ := e.do("GET", "/api/v1/devices", "grafana", ""); code != 200 {
		t.Fatalf("new viewer token on devices = %d", code)
	}
	if code, _, _ := e.do("GET", "/api/v1/tokens", "grafana", ""); code != 403 {
		t.Fatalf("new viewer token on tokens = %d, want 403", code)
	}

	// The list never shows a secret or hash.
	code, body, _ = e.do("GET", "/api/v1/tokens", "admin", "")
	var l api.List[auth.Token]
	if err := json.Unmarshal(body, &l); code != 200 || err != nil {
		t.Fatalf("list tokens = %d %s", code, body)
	}
	if !slices.Contains(ids(l.Items, tokName), "grafana") || strings.Contains(string(body), created.Secret[4:]) || strings.Contains(string(body), "hash") {
		t.Fatalf("token list = %s", body)
	}

	// Creation is audited, with who did it.
	recs, err := e.store.ListAudit(context.Background(), 0, 0)
	if err != nil || len(recs) != 1 || recs[0].Action != "token.create" || recs[0].Actor != "token:test-admin" || recs[0].Object != "token:"+created.ID {
		t.Fatalf("audit = %+v, %v", recs, err)
	}

	f := func(body string, status int, code string) {
		t.Helper()
		got, b, _ := e.do("POST", "/api/v1/tokens", "admin", body)
		if got != status || errorCode(t, b) != code {
			t.Errorf("create %s = %d %s, want %d %s", body, got, b, status, code)
		}
	}
	f(`{"name":"grafana","role":"viewer"}`, 409, vigil.ECONFLICT)
	f(`{"name":"x","role":"root"}`, 400, vigil.EINVALID)
	f(`{"name":"","role":"viewer"}`, 400, vigil.EINVALID)
	f(`{"name":"x","role":"viewer","extra":1}`, 400, vigil.EINVALID)
	f(`{"name":"x","role":"viewer"} {}`, 400, vigil.EINVALID)
	f(`not json`, 400, vigil.EINVALID)
	f(`{"name":"`+strings.Repeat("x", 70<<10)+`","role":"viewer"}`, 413, vigil.ETOOLARGE)

	// Revocation: 204, then the token is refused, and a second revoke is 404.
	if code, body, _ := e.do("DELETE", "/api/v1/tokens/"+created.ID, "admin", ""); code != 204 {
		t.Fatalf("revoke = %d %s", code, body)
	}
	if code, _, _ := e.do("GET", "/api/v1/devices", "grafana", ""); code != 401 {
		t.Fatalf("revoked token = %d, want 401", code)
	}
	if code, _, _ := e.do("DELETE", "/api/v1/tokens/"+created.ID, "admin", ""); code != 404 {
		t.Fatalf("second revoke = %d, want 404", code)
	}
}
