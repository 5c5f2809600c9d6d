package node

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/graph"
)

// seedInvestigation stores the events of seedConsole's attack on
// cam-lobby, and the entity graph the graph stage builds from them (the
// default extractor): inventory of the fleet, the brute force from
// 203.0.113.9 on cam-lobby and on camera-01, 130 connections from
// cam-lobby to plc-gateway-03's Modbus port after it, and a publish to a
// command topic; and a resolved incident on camera-01 from the same
// source, so that the two make a campaign.
func seedInvestigation(t *testing.T, a *Node) {
	t.Helper()
	ctx := t.Context()
	now := time.Now().UTC()
	attacker := netip.MustParseAddr("203.0.113.9")
	var evs []vigil.Event
	ev := func(at time.Duration, device, kind, action, outcome string, nw *vigil.Network, fields map[string]any) {
		evs = append(evs, vigil.Event{ID: fmt.Sprintf("seed-ev-%04d", len(evs)), Time: now.Add(at), DeviceID: device, Source: "agent",
			Kind: kind, Action: action, Outcome: outcome, Network: nw, Fields: fields})
	}
	for i := range 5 {
		ev(-time.Hour, []string{"cam-lobby", "camera-01", "thermostat-02", "plc-gateway-03", "smart-meter-04"}[i], vigil.KindInventory, "inventory", "", nil,
			map[string]any{"host.ip": []string{fmt.Sprintf("10.0.0.%d", 10+i)}})
	}
	for i, u := range []string{"root", "admin", "root", "support"} {
		ev(-6*time.Minute+time.Duration(i)*time.Second, "cam-lobby", vigil.KindAuth, "login", "failure", &vigil.Network{SrcIP: attacker}, map[string]any{"user.name": u})
	}
	ev(-5*time.Minute, "cam-lobby", vigil.KindAuth, "login", "success", &vigil.Network{SrcIP: attacker}, map[string]any{"user.name": "root"})
	ev(-20*time.Minute, "camera-01", vigil.KindAuth, "login", "failure", &vigil.Network{SrcIP: attacker}, map[string]any{"user.name": "root"})
	for i := range 130 {
		ev(-4*time.Minute+time.Duration(i)*time.Second, "cam-lobby", vigil.KindNetwork, "connect", "success",
			&vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.0.10"), DstIP: netip.MustParseAddr("10.0.0.13"), DstPort: 502}, nil)
	}
	ev(-2*time.Minute, "cam-lobby", "mqtt", "publish", "", nil, map[string]any{"mqtt.topic": "plant/valves/set"})
	b := graph.NewBatch()
	x := graph.DefaultExtractor()
	for i := range evs {
		x.Add(b, &evs[i])
	}
	if err := a.store.PutEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := a.store.PutGraph(ctx, b.Flush()); err != nil {
		t.Fatal(err)
	}
	if err := a.store.PutIncident(ctx, vigil.Incident{ID: "inc-axis", Title: "Failed login on camera-01", Status: vigil.IncidentResolved,
		Severity: vigil.SeverityMedium, DeviceIDs: []string{"camera-01"}, Entities: []string{"ip:203.0.113.9"},
		FirstEventTime: now.Add(-20 * time.Minute), Detected: now.Add(-19 * time.Minute), Updated: now.Add(-18 * time.Minute),
		Resolved: now.Add(-18 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleInvestigation: the hunt page (a table with its chart, raw
// events paged with the API's cursor, an error with its position), the
// incident's blast radius, campaign and printable report, and a device's
// peers, on real stored events and graph, as a viewer.
func TestConsoleInvestigation(t *testing.T) {
	a := startTestApp(t)
	seedConsole(t, a)
	cl := newConsoleClient(t, a)
	cl.login(consoleUsers["viewer"])
	get := func(p string) string {
		t.Helper()
		code, body := cl.get(p)
		if code != http.StatusOK {
			t.Fatalf("GET %s = %d\n%.600s", p, code, body)
		}
		return body
	}
	has := func(p, body string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s: no %q", p, w)
			}
		}
	}
	hunt := func(q string, extra ...string) (string, string) {
		p := "/hunt?" + url.Values{"q": {q}}.Encode()
		for i := 0; i+1 < len(extra); i += 2 {
			p += "&" + url.Values{extra[i]: {extra[i+1]}}.Encode()
		}
		return p, get(p)
	}

	// The form, with the documented examples as links.
	body := get("/hunt")
	has("/hunt", body, `<textarea id="hunt-q" name="q"`, `href="/hunt?q=%7c%20stats%20count%20by%20event.kind%20%7c%20sort%20-count"`, `aria-current="page">Hunt`)

	// An aggregation: the table, and its bar chart of the count column.
	p, body := hunt(`| stats count by event.kind | sort -count`)
	has(p, body, `<th scope="col">event.kind</th><th scope="col">count</th>`, `<td>network</td><td>130</td>`,
		`<td>auth</td><td>6</td>`, `<svg class="chart"`, `<title>network: 130</title>`, "142 matched of 142 events scanned")

	// Raw events: 100 a page, the next through the API's cursor.
	p, body = hunt(`kind=network device.id=cam-lobby`)
	if n := strings.Count(body, "<tr><td"); n != 100 {
		t.Errorf("%s: %d rows, want 100", p, n)
	}
	has(p, body, `<th scope="col">_time</th>`, `<th scope="col">other fields</th>`, "destination.port=502", `rel="next"`)
	next := regexp.MustCompile(`href="(/hunt\?[^"]+)" rel="next"`).FindStringSubmatch(body)
	if next == nil {
		t.Fatalf("%s: no next link", p)
	}
	body = get(strings.ReplaceAll(next[1], "&amp;", "&"))
	if n := strings.Count(body, "<tr><td"); n != 30 {
		t.Errorf("second page: %d rows, want 30", n)
	}
	has("second page", body, "First page")
	if strings.Contains(body, `rel="next"`) {
		t.Error("second page: a next link on the last page")
	}

	// A wrong query: the error with its position, marked under the query.
	p, body = hunt(`kind=auth AND`)
	has(p, body, `id="hunt-error"`, "at position 14", `<span class="marker">kind=auth AND</span>^ position 14`)

	// The incident: blast radius (table and graph), campaign, report.
	body = get("/incidents/inc-lobby")
	has("/incidents/inc-lobby", body, `id="blast"`, `<svg class="chart graph"`, `<a href="/devices/plc-gateway-03"><code>device:plc-gateway-03</code></a>`,
		`<span class="reason">reached</span>`, "130 events", `<span class="reason">same_source</span>`, `<a href="/devices/camera-01">`,
		`id="campaign"`, `<a href="/incidents/inc-axis">inc-axis</a>`, `href="/incidents/inc-lobby/report"`)
	res, err := cl.hc.Get(cl.base + "/incidents/inc-lobby/report")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src") || !strings.HasPrefix(res.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("report: %d %q CSP %q", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Content-Security-Policy"))
	}
	has("report", get("/incidents/inc-lobby/report"), "Brute force and overload on cam-lobby")

	// The Actions page lists the playbooks loaded, with their steps.
	has("/actions", get("/actions"), `id="playbooks"`, "isolate-attacked-camera", "isolate@agent", `<span class="st st-active">enabled</span>`)

	// The device's peers, most recent first: the PLC's address (named),
	// then the topic, ..., its own address an hour ago last.
	body = get("/devices/cam-lobby")
	has("/devices/cam-lobby", body, `id="peers"`, `<code>10.0.0.13</code> <small>(<a href="/devices/plc-gateway-03">plc-gateway-03</a>)</small>`,
		`<code>plant/valves/set</code>`, `<td class="num">130</td>`,
		// Its listening ports, from the scanner, by port.
		`<tr><td>tcp/22</td><td>dropbear</td><td>no</td></tr>`, `<tr><td>tcp/80</td><td>lighttpd</td><td>yes</td></tr>`)
	if strings.Index(body, "tcp/22") > strings.Index(body, "tcp/80") {
		t.Errorf("listening ports not by port")
	}
	if i, j, k := strings.Index(body, "10.0.0.13"), strings.Index(body, "plant/valves/set"), strings.Index(body, "<code>10.0.0.10</code>"); i < 0 || !(i < j && j < k) {
		t.Errorf("peers not most recent first (%d, %d, %d)", i, j, k)
	}
}
