package storetest

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// testPrioritySort checks Sort: SortPriority lists alerts and incidents
// by priority score, highest first, then newest (those without a priority
// as score 0), across pages and with other filters; the priority comes
// back with its factors; an unknown sort is EINVALID.
func testPrioritySort(t *testing.T, s store.Store) {
	prio := func(score int) *vigil.Priority {
		if score < 0 {
			return nil
		}
		return &vigil.Priority{Score: score, Confidence: 0.9, Factors: []vigil.PriorityFactor{{Name: "severity", Value: "high", Points: 45}}}
	}
	scores := []int{45, -1, 80, 45, 10, 100, 0, 80, 45, 65, 30}
	var alerts []vigil.Alert
	var incs []vigil.Incident
	for i, sc := range scores {
		a := fullAlert(name("pa", i))
		a.Created = base.Add(time.Duration((i*5)%len(scores)) * time.Minute)
		a.DeviceID = name("dev", i%2)
		a.Priority = prio(sc)
		must(t, s.PutAlert(ctx(t), a), "PutAlert")
		alerts = append(alerts, a)
		inc := fullIncident(name("pi", i))
		inc.Detected = a.Created
		inc.Status = []vigil.IncidentStatus{vigil.IncidentOpen, vigil.IncidentResolved}[i%2]
		inc.Priority = prio(sc)
		must(t, s.PutIncident(ctx(t), inc), "PutIncident")
		incs = append(incs, inc)
	}
	score := func(p *vigil.Priority) int {
		if p == nil {
			return 0
		}
		return p.Score
	}
	order := func(sa, sb int, ta, tb time.Time, ida, idb string) int {
		return cmp.Or(cmp.Compare(sb, sa), tb.Compare(ta), cmp.Compare(idb, ida))
	}
	wantA := slices.Clone(alerts)
	slices.SortFunc(wantA, func(a, b vigil.Alert) int {
		return order(score(a.Priority), score(b.Priority), a.Created, b.Created, a.ID, b.ID)
	})
	gotA := walk(t, 3, func(p store.Page) ([]vigil.Alert, string, error) {
		return s.ListAlerts(ctx(t), store.AlertFilter{Sort: store.SortPriority, Page: p})
	})
	deepEqual(t, "alerts by priority", ids(gotA, func(a vigil.Alert) string { return a.ID }), ids(wantA, func(a vigil.Alert) string { return a.ID }))
	got, err := s.GetAlert(ctx(t), alerts[2].ID)
	must(t, err, "GetAlert")
	deepEqual(t, "priority", got.Priority, alerts[2].Priority)

	wantA = slices.DeleteFunc(wantA, func(a vigil.Alert) bool { return a.DeviceID != "dev-001" })
	gotA = walk(t, 2, func(p store.Page) ([]vigil.Alert, string, error) {
		return s.ListAlerts(ctx(t), store.AlertFilter{DeviceID: "dev-001", Sort: store.SortPriority, Page: p})
	})
	deepEqual(t, "alerts of a device by priority", ids(gotA, func(a vigil.Alert) string { return a.ID }), ids(wantA, func(a vigil.Alert) string { return a.ID }))

	wantI := slices.DeleteFunc(slices.Clone(incs), func(i vigil.Incident) bool { return i.Status != vigil.IncidentOpen })
	slices.SortFunc(wantI, func(a, b vigil.Incident) int {
		return order(score(a.Priority), score(b.Priority), a.Detected, b.Detected, a.ID, b.ID)
	})
	gotI := walk(t, 2, func(p store.Page) ([]vigil.Incident, string, error) {
		return s.ListIncidents(ctx(t), store.IncidentFilter{Status: vigil.IncidentOpen, Sort: store.SortPriority, Page: p})
	})
	deepEqual(t, "open incidents by priority", ids(gotI, func(i vigil.Incident) string { return i.ID }), ids(wantI, func(i vigil.Incident) string { return i.ID }))

	// A new priority moves an incident.
	top := incs[4] // score 10, open
	top.Priority = prio(99)
	must(t, s.PutIncident(ctx(t), top), "PutIncident again")
	first, _, err := s.ListIncidents(ctx(t), store.IncidentFilter{Status: vigil.IncidentOpen, Sort: store.SortPriority, Page: store.Page{Limit: 1}})
	if err != nil || len(first) != 1 || first[0].ID != top.ID {
		t.Fatalf("after raising %s to 99: %v %v", top.ID, ids(first, func(i vigil.Incident) string { return i.ID }), err)
	}
	if _, _, err := s.ListAlerts(ctx(t), store.AlertFilter{Sort: "severity"}); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("ListAlerts with sort severity: %v, want EINVALID", err)
	}
	if _, _, err := s.ListIncidents(ctx(t), store.IncidentFilter{Sort: "x"}); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("ListIncidents with sort x: %v, want EINVALID", err)
	}
	gotT, _, err := s.ListAlerts(ctx(t), store.AlertFilter{Sort: store.SortTime, Page: store.Page{Limit: 1}})
	if err != nil || len(gotT) != 1 || !gotT[0].Created.Equal(base.Add(10*time.Minute)) {
		t.Errorf("sort time: %v %v, want the newest", gotT, err)
	}
}
