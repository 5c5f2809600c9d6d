package web

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/graph"
	"github.com/vigil-iot/vigil/investigate"
	"github.com/vigil-iot/vigil/store"
)

// newInvestigationEnv is newEnv with the investigation routes.
func newInvestigationEnv(t *testing.T) *env {
	return newEnv(t, func(o *Options) {
		o.Extra = InvestigationRoutes(Investigation{Investigator: investigate.New(investigate.Options{Store: o.Store, Clock: fixedClock(now)}), Clock: fixedClock(now)})
	})
}

func TestGraphRoute(t *testing.T) {
	e := newInvestigationEnv(t)
	at := func(m int) time.Time { return now.Add(time.Duration(m-60) * time.Minute) }
	if err := e.store.PutGraph(t.Context(), store.GraphBatch{Relations: []store.Relation{
		{From: "ip:203.0.113.66", Rel: "logged_in_to", To: "device:cam-1", FirstSeen: at(0), LastSeen: at(10), Count: 9, FirstEvent: "e1", LastEvent: "e9"},
		{From: "device:cam-1", Rel: "talked_to", To: "ip:10.0.0.9", FirstSeen: at(50), LastSeen: at(55), Count: 2, FirstEvent: "e20", LastEvent: "e21"},
		{From: "ip:10.0.0.9", Rel: "logged_in_to", To: "device:plc-1", FirstSeen: at(56), LastSeen: at(56), Count: 1, FirstEvent: "e30", LastEvent: "e30"},
	}, Entities: []store.Entity{
		{Key: "ip:203.0.113.66", FirstSeen: at(0), LastSeen: at(10), Count: 9},
		{Key: "device:cam-1", FirstSeen: at(0), LastSeen: at(55), Count: 11},
		{Key: "ip:10.0.0.9", FirstSeen: at(50), LastSeen: at(56), Count: 3},
		{Key: "device:plc-1", FirstSeen: at(56), LastSeen: at(56), Count: 1},
	}}); err != nil {
		t.Fatal(err)
	}
	var v graph.View
	e.get("/api/v1/graph?entity=device:cam-1", 200, &v)
	if len(v.Relations) != 2 || len(v.Entities) != 3 || v.Relations[0].To != "ip:10.0.0.9" {
		t.Fatalf("depth 1 from cam-1: %+v", v)
	}
	e.get("/api/v1/graph?entity=cam-1&depth=2", 200, &v)
	if len(v.Relations) != 3 || len(v.Entities) != 4 {
		t.Fatalf("depth 2 from cam-1: %+v", v)
	}
	// since is relative to the server's clock: the last 30 minutes hold
	// only the talk to 10.0.0.9.
	e.get("/api/v1/graph?entity=cam-1&since=30m", 200, &v)
	if len(v.Relations) != 1 || v.Relations[0].Rel != "talked_to" || v.Relations[0].FirstEvent != "e20" {
		t.Fatalf("since 30m: %+v", v.Relations)
	}
	for target, code := range map[string]string{
		"/api/v1/graph":                            vigil.EINVALID,
		"/api/v1/graph?entity=cam-1&depth=x":       vigil.EINVALID,
		"/api/v1/graph?entity=cam-1&depth=9":       vigil.EINVALID,
		"/api/v1/graph?entity=cam-1&since=someday": vigil.EINVALID,
		"/api/v1/graph?entity=cam-1&bogus=1":       vigil.EINVALID,
		"/api/v1/graph?entity=ip:192.0.2.1":        vigil.ENOTFOUND,
	} {
		status, body, _ := e.do("GET", target, "analyst", "")
		if got := errorCode(t, body); got != code || status < 400 {
			t.Errorf("GET %s = %d %s, want %s", target, status, body, code)
		}
	}
	if status, _, _ := e.do("GET", "/api/v1/graph?entity=cam-1", "", ""); status != 401 {
		t.Errorf("without a token: %d, want 401", status)
	}
}

func TestBlastRadiusRoute(t *testing.T) {
	e := newInvestigationEnv(t)
	t0 := now.Add(-time.Hour)
	if err := e.store.PutIncident(t.Context(), vigil.Incident{ID: "inc-1", Status: vigil.IncidentOpen, DeviceIDs: []string{"cam-1"},
		FirstEventTime: t0, Detected: t0, Updated: t0}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutGraph(t.Context(), store.GraphBatch{Relations: []store.Relation{
		{From: "device:cam-1", Rel: "talked_to", To: "ip:10.0.0.9", FirstSeen: t0, LastSeen: t0.Add(time.Minute), Count: 2, FirstEvent: "e1", LastEvent: "e2"},
	}}); err != nil {
		t.Fatal(err)
	}
	var br investigate.BlastRadius
	e.get("/api/v1/incidents/inc-1/blast-radius", 200, &br)
	if br.Total != 1 || br.Items[0].Entity != "ip:10.0.0.9" || br.Items[0].Reasons[0].Code != investigate.ReasonReached {
		t.Fatalf("blast radius: %+v", br)
	}
	status, body, _ := e.do("GET", "/api/v1/incidents/nope/blast-radius", "analyst", "")
	if status != 404 || errorCode(t, body) != vigil.ENOTFOUND {
		t.Errorf("unknown incident: %d %s", status, body)
	}
}

func TestCampaignRoutes(t *testing.T) {
	e := newInvestigationEnv(t)
	t0 := now.Add(-time.Hour)
	ctx := t.Context()
	for i, dev := range []string{"cam-1", "cam-2"} {
		id := "inc-" + dev
		at := t0.Add(time.Duration(i) * time.Minute)
		if err := e.store.PutIncident(ctx, vigil.Incident{ID: id, Status: vigil.IncidentOpen, DeviceIDs: []string{dev},
			Entities: []string{"ip:203.0.113.66"}, FirstEventTime: at, Detected: at, Updated: at}); err != nil {
			t.Fatal(err)
		}
	}
	var l struct{ Items []investigate.Campaign }
	e.get("/api/v1/campaigns?since=24h", 200, &l)
	if len(l.Items) != 1 || len(l.Items[0].Incidents) != 2 || l.Items[0].Indicators[0].Value != "203.0.113.66" {
		t.Fatalf("campaigns: %+v", l.Items)
	}
	var c investigate.Campaign
	e.get("/api/v1/campaigns/"+l.Items[0].ID, 200, &c)
	if c.ID != l.Items[0].ID {
		t.Fatalf("campaign: %+v", c)
	}
	e.get("/api/v1/campaigns?since=1m", 200, &l)
	if len(l.Items) != 0 {
		t.Fatalf("campaigns of the last minute: %+v", l.Items)
	}
	for target, code := range map[string]string{"/api/v1/campaigns/camp-x": vigil.ENOTFOUND, "/api/v1/campaigns?since=x": vigil.EINVALID} {
		if _, body, _ := e.do("GET", target, "analyst", ""); errorCode(t, body) != code {
			t.Errorf("GET %s: %s, want %s", target, body, code)
		}
	}
}

func TestReportRoute(t *testing.T) {
	e := newInvestigationEnv(t)
	t0 := now.Add(-time.Hour)
	if err := e.store.PutIncident(t.Context(), vigil.Incident{ID: "inc-1", Title: "Brute force <b>on</b> cam-1", Status: vigil.IncidentContained,
		Severity: vigil.SeverityHigh, DeviceIDs: []string{"cam-1"}, FirstEventTime: t0, Detected: t0.Add(time.Second), Contained: t0.Add(5 * time.Second), Updated: t0}); err != nil {
		t.Fatal(err)
	}
	status, body, hdr := e.do("GET", "/api/v1/incidents/inc-1/report", "analyst", "")
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !strings.Contains(hdr.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("report: %d %v", status, hdr)
	}
	html := string(body)
	// The title is escaped, the durations are there.
	for _, want := range []string{"Brute force &lt;b&gt;on&lt;/b&gt; cam-1", "Time to contain (MTTC)", "<b>4s</b>", "<b>1s</b>"} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	status, body, _ = e.do("GET", "/api/v1/incidents/nope/report", "analyst", "")
	if status != 404 || errorCode(t, body) != vigil.ENOTFOUND {
		t.Errorf("unknown incident: %d %s", status, body)
	}
}
