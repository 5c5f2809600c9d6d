package export

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// incidentLog is an IncidentSource over a list of incident versions, as
// the store's incidents change.
type incidentLog struct {
	mu   sync.Mutex
	incs map[string]vigil.Incident
}

func (l *incidentLog) put(inc vigil.Incident) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.incs == nil {
		l.incs = map[string]vigil.Incident{}
	}
	l.incs[inc.ID] = inc
}

func (l *incidentLog) IncidentsUpdatedSince(_ context.Context, since time.Time, limit int) ([]vigil.Incident, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []vigil.Incident
	for _, inc := range l.incs {
		if !inc.Updated.Before(since) {
			out = append(out, inc)
		}
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

var ti = time.Date(2026, 3, 2, 22, 41, 0, 0, time.UTC)

func testIncident(id string, updated time.Duration, status vigil.IncidentStatus) vigil.Incident {
	inc := vigil.Incident{ID: id, Title: "Fleet change after a console login without MFA on cam-0042", Status: status, Severity: vigil.SeverityHigh,
		DeviceIDs: []string{"cam-0042"}, Entities: []string{"user:fleet-admin", "ip:203.0.113.66"}, AlertIDs: []string{"a1", "a2", "a3"},
		Techniques: []string{"T1078.004", "T0857"}, FirstEventTime: ti, Detected: ti.Add(time.Minute), Updated: ti.Add(updated)}
	if status == vigil.IncidentResolved {
		inc.Resolved = inc.Updated
	}
	return inc
}

// TestIncidentsExported: each version of an incident reaches the SIEM
// once, through a busy SIEM (retried) and a SIEM that refuses the token
// (nothing lost: the place does not move), with the per-sink counters.
func TestIncidentsExported(t *testing.T) {
	srv := &hecServer{busy: 1}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	sink, _ := NewHEC(HECOptions{URL: ts.URL, Token: "tok-123", Client: ts.Client()})
	ns := &noSleep{}
	e, err := New(sink, Options{Name: "splunk-incidents", Sleep: ns.sleep})
	if err != nil {
		t.Fatal(err)
	}
	src := &incidentLog{}
	src.put(testIncident("inc-1", time.Minute, vigil.IncidentOpen))
	src.put(testIncident("inc-2", 2*time.Minute, vigil.IncidentOpen))
	ctx := context.Background()
	round := func(since time.Time, seen map[string]bool) (time.Time, map[string]bool, error) {
		incs, _ := src.IncidentsUpdatedSince(ctx, since, 500)
		return e.HandleIncidents(ctx, incs, since, seen, ECSIncident)
	}
	since, seen, err := round(time.Time{}, nil)
	if err != nil || !since.Equal(ti.Add(2*time.Minute)) {
		t.Fatalf("round 1: %v %v", since, err)
	}
	if since, seen, err = round(since, seen); err != nil { // nothing new
		t.Fatal(err)
	}
	src.put(testIncident("inc-1", 5*time.Minute, vigil.IncidentResolved))
	if since, seen, err = round(since, seen); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(srv.indexed) != "[inc-1 inc-2 inc-1]" {
		t.Errorf("indexed %v", srv.indexed)
	}
	if counterValue(e.sent) != 3 || counterValue(e.failed)+counterValue(e.refused) < 1 {
		t.Errorf("sent %v failed %v refused %v", counterValue(e.sent), counterValue(e.failed), counterValue(e.refused))
	}
	// A SIEM that refuses the token: the error is returned, the place stays.
	bad, _ := NewHEC(HECOptions{URL: ts.URL, Token: "wrong", Client: ts.Client()})
	e2, _ := New(bad, Options{Name: "splunk-bad", Sleep: ns.sleep, Attempts: 2})
	src.put(testIncident("inc-3", 6*time.Minute, vigil.IncidentOpen))
	incs, _ := src.IncidentsUpdatedSince(ctx, since, 500)
	next, _, err := e2.HandleIncidents(ctx, incs, since, seen, ECSIncident)
	if err == nil || !next.Equal(since) || counterValue(e2.failed) != 2 {
		t.Errorf("bad token: err %v, place %v (was %v), failures %v", err, next, since, counterValue(e2.failed))
	}
}

// TestRunIncidents: the loop reads the source, sends, and stops with ctx.
func TestRunIncidents(t *testing.T) {
	srv := &hecServer{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	sink, _ := NewHEC(HECOptions{URL: ts.URL, Token: "tok-123", Client: ts.Client()})
	ctx, cancel := context.WithCancel(context.Background())
	src := &incidentLog{}
	src.put(testIncident("inc-1", time.Minute, vigil.IncidentOpen))
	sleeps := 0
	e, _ := New(sink, Options{Name: "run", Sleep: func(ctx context.Context, d time.Duration) error {
		sleeps++
		if sleeps == 1 {
			src.put(testIncident("inc-1", 3*time.Minute, vigil.IncidentContained))
		} else {
			cancel()
		}
		return ctx.Err()
	}})
	if err := e.RunIncidents(ctx, src, IncidentOptions{Encoder: ECSIncident}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(srv.indexed) != "[inc-1 inc-1]" {
		t.Errorf("indexed %v", srv.indexed)
	}
}

// TestIncidentEncoders: ECS and OCSF documents of an incident.
func TestIncidentEncoders(t *testing.T) {
	inc := testIncident("inc-9", 5*time.Minute, vigil.IncidentResolved)
	b, err := ECSIncident(inc)
	if err != nil {
		t.Fatal(err)
	}
	var ecs struct {
		Timestamp string `json:"@timestamp"`
		Event     struct{ Kind, Dataset, ID string }
		Host      struct{ ID string }
		Related   struct{ User, IP []string }
		Threat    struct{ Technique struct{ ID []string } }
		Vigil     struct {
			Status   string
			AlertIDs []string `json:"alert_ids"`
			Resolved string
		}
	}
	if err := json.Unmarshal(b, &ecs); err != nil {
		t.Fatal(err)
	}
	if ecs.Event.Dataset != "vigil.incident" || ecs.Event.ID != "inc-9" || ecs.Host.ID != "cam-0042" || ecs.Timestamp != "2026-03-02T22:46:00Z" ||
		fmt.Sprint(ecs.Related.User) != "[fleet-admin]" || fmt.Sprint(ecs.Threat.Technique.ID) != "[T1078 T0857]" ||
		ecs.Vigil.Status != "resolved" || len(ecs.Vigil.AlertIDs) != 3 || ecs.Vigil.Resolved == "" {
		t.Errorf("ECS: %s", b)
	}
	b, err = OCSFIncident(inc)
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		ClassUID        int    `json:"class_uid"`
		ActivityName    string `json:"activity_name"`
		TypeUID         int    `json:"type_uid"`
		Status          string
		FindingInfoList []struct{ UID string } `json:"finding_info_list"`
		Impacted        []struct{ UID string } `json:"impacted_resources"`
		EndTime         int64                  `json:"end_time"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	if o.ClassUID != 2005 || o.ActivityName != "Close" || o.TypeUID != 200503 || o.Status != "Resolved" || len(o.FindingInfoList) != 3 ||
		len(o.Impacted) != 1 || o.EndTime != inc.Resolved.UnixMilli() {
		t.Errorf("OCSF: %s", b)
	}
	first := testIncident("inc-9", time.Minute, vigil.IncidentOpen)
	b, _ = OCSFIncident(first)
	if json.Unmarshal(b, &o); o.ActivityName != "Create" || o.Status != "New" {
		t.Errorf("first version: %s", b)
	}
}
