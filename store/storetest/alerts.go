package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

func fullAlert(id string) vigil.Alert {
	return vigil.Alert{
		ID:             id,
		DedupKey:       "threshold:ssh-bruteforce:cam-1",
		Detector:       "threshold",
		RuleID:         "ssh-bruteforce",
		Title:          "SSH brute force on cam-1",
		Severity:       vigil.SeverityHigh,
		Tags:           []string{"attack.credential_access", "attack.t1110.001"},
		Techniques:     []string{"T1110.001"},
		DeviceID:       "cam-1",
		Entities:       []string{"ip:10.0.0.7", "user:root"},
		EventIDs:       []string{"ev-1", "ev-2", "ev-3"},
		FirstEventTime: base.Add(-90 * time.Second),
		LastEventTime:  base.Add(-time.Second).In(elsewhere),
		Created:        base,
		Count:          4,
		IncidentID:     "inc-1",
		Fields: map[string]any{
			"threshold": 5.0,
			"window":    "60s",
			"exceeded":  true,
			"users":     []string{"root", "admin"},
		},
	}
}

func normAlert(a vigil.Alert) vigil.Alert {
	a.FirstEventTime = a.FirstEventTime.UTC()
	a.LastEventTime = a.LastEventTime.UTC()
	a.Created = a.Created.UTC()
	return a
}

func normAlerts(as []vigil.Alert) []vigil.Alert {
	out := make([]vigil.Alert, len(as))
	for i, a := range as {
		out[i] = normAlert(a)
	}
	return out
}

func testAlertRoundTrip(t *testing.T, s store.Store) {
	_, err := s.GetAlert(ctx(t), "al-1")
	wantCode(t, err, vigil.ENOTFOUND, "GetAlert of a missing alert")
	a := fullAlert("al-1")
	must(t, s.PutAlert(ctx(t), a), "PutAlert")
	got, err := s.GetAlert(ctx(t), "al-1")
	must(t, err, "GetAlert")
	deepEqual(t, "alert", normAlert(got), normAlert(a))

	a.Count = 9
	a.EventIDs = append(a.EventIDs, "ev-4")
	a.LastEventTime = base
	a.IncidentID = "inc-2"
	must(t, s.PutAlert(ctx(t), a), "PutAlert (replace)")
	got, err = s.GetAlert(ctx(t), "al-1")
	must(t, err, "GetAlert")
	deepEqual(t, "replaced alert", normAlert(got), normAlert(a))
	list, _, err := s.ListAlerts(ctx(t), store.AlertFilter{})
	must(t, err, "ListAlerts")
	deepEqual(t, "listed alerts", normAlerts(list), normAlerts([]vigil.Alert{a}))

	wantCode(t, s.PutAlert(ctx(t), vigil.Alert{Title: "no id"}), vigil.EINVALID, "PutAlert without id")
}

func testAlertDedupKey(t *testing.T, s store.Store) {
	const key, other = "sigma:r1:cam-1", "sigma:r1:cam-2"
	mk := func(id, key string, created time.Time) vigil.Alert {
		a := fullAlert(id)
		a.DedupKey = key
		a.Created = created
		return a
	}
	old := mk("al-old", key, base)
	recent := mk("al-recent", key, base.Add(10*time.Minute))
	must(t, s.PutAlert(ctx(t), recent), "PutAlert")
	must(t, s.PutAlert(ctx(t), old), "PutAlert")
	must(t, s.PutAlert(ctx(t), mk("al-other", other, base.Add(20*time.Minute))), "PutAlert")

	find := func(key string, since time.Time, want string) {
		t.Helper()
		got, err := s.FindAlertByDedupKey(ctx(t), key, since)
		if want == "" {
			wantCode(t, err, vigil.ENOTFOUND, fmt.Sprintf("FindAlertByDedupKey(%q, %s)", key, since))
			return
		}
		must(t, err, "FindAlertByDedupKey")
		if got.ID != want {
			t.Fatalf("FindAlertByDedupKey(%q, %s) = %s, want %s", key, since, got.ID, want)
		}
	}
	find(key, time.Time{}, "al-recent")
	find(key, base, "al-recent")
	find(key, base.Add(10*time.Minute).In(elsewhere), "al-recent") // since is inclusive
	find(key, base.Add(10*time.Minute+time.Nanosecond), "")
	find(other, base, "al-other")
	find("no-such-key", time.Time{}, "")

	got, err := s.FindAlertByDedupKey(ctx(t), key, base)
	must(t, err, "FindAlertByDedupKey")
	deepEqual(t, "alert found by dedup key", normAlert(got), normAlert(recent))

	// A merge (same id, higher count) is what the next lookup returns.
	recent.Count = 12
	must(t, s.PutAlert(ctx(t), recent), "PutAlert (merge)")
	got, err = s.FindAlertByDedupKey(ctx(t), key, base)
	must(t, err, "FindAlertByDedupKey")
	if got.Count != 12 {
		t.Fatalf("FindAlertByDedupKey after merge: count %d, want 12", got.Count)
	}
}

func testAlertList(t *testing.T, s store.Store) {
	var all []vigil.Alert
	for i := range 41 {
		a := fullAlert(name("al", i))
		a.DeviceID = name("dev", i%3)
		a.RuleID = name("rule", i%4)
		a.IncidentID = []string{"", "inc-1", "inc-2"}[i%3]
		a.Severity = vigil.Severity(1 + i%5)
		a.DedupKey = a.RuleID + ":" + a.DeviceID
		a.Created = base.Add(time.Duration((i*7)%41) * time.Minute) // distinct, not in id order
		must(t, s.PutAlert(ctx(t), a), "PutAlert")
		all = append(all, a)
	}
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	cases := []store.AlertFilter{
		{},
		{DeviceID: "dev-001"},
		{RuleID: "rule-002"},
		{IncidentID: "inc-2"},
		{MinSeverity: vigil.SeverityHigh},
		{MinSeverity: vigil.SeverityCritical},
		{MinSeverity: vigil.SeverityInfo},
		{Since: at(10)},
		{Until: at(10)},
		{Since: at(10), Until: at(30).In(elsewhere)},
		{DeviceID: "dev-000", MinSeverity: vigil.SeverityMedium, Since: at(5)},
		{DeviceID: "dev-002", RuleID: "rule-001", IncidentID: "inc-1"},
		{DeviceID: "none"},
	}
	for _, f := range cases {
		want := filterSlice(all, func(a vigil.Alert) bool {
			return (f.DeviceID == "" || a.DeviceID == f.DeviceID) &&
				(f.RuleID == "" || a.RuleID == f.RuleID) &&
				(f.IncidentID == "" || a.IncidentID == f.IncidentID) &&
				a.Severity >= f.MinSeverity &&
				(f.Since.IsZero() || !a.Created.Before(f.Since)) &&
				(f.Until.IsZero() || a.Created.Before(f.Until))
		})
		newestFirst(want, func(a vigil.Alert) time.Time { return a.Created }, alertID)
		for _, limit := range []int{0, 1, 6} {
			got := walk(t, limit, func(p store.Page) ([]vigil.Alert, string, error) {
				g := f
				g.Page = p
				return s.ListAlerts(ctx(t), g)
			})
			sameIDs(t, fmt.Sprintf("ListAlerts(%+v) limit %d", f, limit), ids(got, alertID), ids(want, alertID))
			if limit == 0 && len(got) > 0 {
				deepEqual(t, "listed alerts", normAlerts(got), normAlerts(want))
			}
		}
	}
	// Equal creation times: pages still hold each alert once.
	for i := range 9 {
		a := fullAlert(name("tie", i))
		a.Created = at(100)
		must(t, s.PutAlert(ctx(t), a), "PutAlert")
	}
	got := walk(t, 2, func(p store.Page) ([]vigil.Alert, string, error) {
		return s.ListAlerts(ctx(t), store.AlertFilter{Since: at(100), Page: p})
	})
	sameIDs(t, "alerts with equal times", sortedCopy(ids(got, alertID)),
		[]string{"tie-000", "tie-001", "tie-002", "tie-003", "tie-004", "tie-005", "tie-006", "tie-007", "tie-008"})

	_, _, err := s.ListAlerts(ctx(t), store.AlertFilter{Page: store.Page{Cursor: "!"}})
	wantCode(t, err, vigil.EINVALID, "ListAlerts with a bad cursor")
	_, _, err = s.ListAlerts(ctx(t), store.AlertFilter{Page: store.Page{Limit: -1}})
	wantCode(t, err, vigil.EINVALID, "ListAlerts with a negative limit")
}

func fullIncident(id string) vigil.Incident {
	return vigil.Incident{
		ID:             id,
		Title:          "Brute force then new telnet listener on cam-1",
		Status:         vigil.IncidentContained,
		Severity:       vigil.SeverityCritical,
		DeviceIDs:      []string{"cam-1", "gw-1"},
		Entities:       []string{"ip:10.0.0.7", "user:root"},
		AlertIDs:       []string{"al-1", "al-2"},
		Techniques:     []string{"T1110.001", "T1059.004"},
		FirstEventTime: base.Add(-2 * time.Minute),
		Detected:       base.In(elsewhere),
		Contained:      base.Add(40 * time.Second),
		Resolved:       base.Add(time.Hour),
		Updated:        base.Add(time.Hour),
	}
}

func normIncident(i vigil.Incident) vigil.Incident {
	i.FirstEventTime = i.FirstEventTime.UTC()
	i.Detected = i.Detected.UTC()
	i.Contained = i.Contained.UTC()
	i.Resolved = i.Resolved.UTC()
	i.Updated = i.Updated.UTC()
	return i
}

func testIncidentRoundTrip(t *testing.T, s store.Store) {
	_, err := s.GetIncident(ctx(t), "inc-1")
	wantCode(t, err, vigil.ENOTFOUND, "GetIncident of a missing incident")
	inc := fullIncident("inc-1")
	must(t, s.PutIncident(ctx(t), inc), "PutIncident")
	got, err := s.GetIncident(ctx(t), "inc-1")
	must(t, err, "GetIncident")
	deepEqual(t, "incident", normIncident(got), normIncident(inc))

	open := inc
	open.Status = vigil.IncidentOpen
	open.Contained, open.Resolved = time.Time{}, time.Time{}
	open.AlertIDs = append(slices.Clone(open.AlertIDs), "al-3")
	must(t, s.PutIncident(ctx(t), open), "PutIncident (replace)")
	got, err = s.GetIncident(ctx(t), "inc-1")
	must(t, err, "GetIncident")
	deepEqual(t, "replaced incident", normIncident(got), normIncident(open))
	if d := got.TimeToContain(); d != 0 {
		t.Fatalf("TimeToContain of an incident never contained: %s", d)
	}

	wantCode(t, s.PutIncident(ctx(t), vigil.Incident{Title: "no id"}), vigil.EINVALID, "PutIncident without id")
}

func testIncidentList(t *testing.T, s store.Store) {
	statuses := []vigil.IncidentStatus{vigil.IncidentOpen, vigil.IncidentContained, vigil.IncidentResolved, vigil.IncidentFalsePositive}
	var all []vigil.Incident
	for i := range 29 {
		inc := fullIncident(name("inc", i))
		inc.Status = statuses[i%4]
		inc.DeviceIDs = []string{name("dev", i%3), name("dev", 10+i%2)}
		inc.Detected = base.Add(time.Duration((i*11)%29) * time.Minute)
		inc.Updated = base.Add(time.Duration(i) * time.Hour)
		must(t, s.PutIncident(ctx(t), inc), "PutIncident")
		all = append(all, inc)
	}
	cases := []store.IncidentFilter{
		{},
		{Status: vigil.IncidentOpen},
		{DeviceID: "dev-001"},
		{DeviceID: "dev-011"},
		{DeviceID: "dev-01"},
		{UpdatedSince: base.Add(20 * time.Hour)},
		{Status: vigil.IncidentResolved, DeviceID: "dev-002", UpdatedSince: base.Add(3 * time.Hour).In(elsewhere)},
	}
	for _, f := range cases {
		want := filterSlice(all, func(i vigil.Incident) bool {
			return (f.Status == "" || i.Status == f.Status) &&
				(f.DeviceID == "" || slices.Contains(i.DeviceIDs, f.DeviceID)) &&
				(f.UpdatedSince.IsZero() || !i.Updated.Before(f.UpdatedSince))
		})
		newestFirst(want, func(i vigil.Incident) time.Time { return i.Detected }, incidentID)
		for _, limit := range []int{0, 1, 5} {
			got := walk(t, limit, func(p store.Page) ([]vigil.Incident, string, error) {
				g := f
				g.Page = p
				return s.ListIncidents(ctx(t), g)
			})
			sameIDs(t, fmt.Sprintf("ListIncidents(%+v) limit %d", f, limit), ids(got, incidentID), ids(want, incidentID))
			if limit == 0 && len(got) > 0 {
				for i := range got {
					got[i], want[i] = normIncident(got[i]), normIncident(want[i])
				}
				deepEqual(t, "listed incidents", got, want)
			}
		}
	}
	_, _, err := s.ListIncidents(ctx(t), store.IncidentFilter{Page: store.Page{Cursor: "?"}})
	wantCode(t, err, vigil.EINVALID, "ListIncidents with a bad cursor")
}

func fullAction(id string) vigil.Action {
	return vigil.Action{
		ID:          id,
		Type:        "isolate",
		DeviceID:    "cam-1",
		IncidentID:  "inc-1",
		AlertID:     "al-1",
		Playbook:    "contain-bruteforce",
		Params:      map[string]string{"mode": "full", "allow": "10.0.0.1/32"},
		State:       vigil.ActionAcknowledged,
		RequestedBy: "playbook:contain-bruteforce",
		Approvers:   []string{"alice", "bob"},
		Result:      "isolated by agent 1.2.0",
		Created:     base.In(elsewhere),
		Updated:     base.Add(3 * time.Second),
	}
}

func normAction(a vigil.Action) vigil.Action {
	a.Created = a.Created.UTC()
	a.Updated = a.Updated.UTC()
	return a
}

func testActionRoundTrip(t *testing.T, s store.Store) {
	_, err := s.GetAction(ctx(t), "act-1")
	wantCode(t, err, vigil.ENOTFOUND, "GetAction of a missing action")
	a := fullAction("act-1")
	must(t, s.PutAction(ctx(t), a), "PutAction")
	got, err := s.GetAction(ctx(t), "act-1")
	must(t, err, "GetAction")
	deepEqual(t, "action", normAction(got), normAction(a))

	a.State = vigil.ActionRolledBack
	a.Result = "restored"
	a.Updated = base.Add(time.Hour)
	must(t, s.PutAction(ctx(t), a), "PutAction (replace)")
	got, err = s.GetAction(ctx(t), "act-1")
	must(t, err, "GetAction")
	deepEqual(t, "replaced action", normAction(got), normAction(a))

	wantCode(t, s.PutAction(ctx(t), vigil.Action{Type: "notify"}), vigil.EINVALID, "PutAction without id")
}

func testActionList(t *testing.T, s store.Store) {
	states := []vigil.ActionState{vigil.ActionPendingApproval, vigil.ActionSent, vigil.ActionSucceeded, vigil.ActionFailed}
	var all []vigil.Action
	for i := range 31 {
		a := fullAction(name("act", i))
		a.DeviceID = name("dev", i%3)
		a.IncidentID = []string{"", "inc-1", "inc-2"}[i%3] // "" on the same ones as dev-000
		if i%5 == 0 {
			a.IncidentID = "inc-5"
		}
		a.State = states[i%4]
		a.Created = base.Add(time.Duration((i*13)%31) * time.Second)
		must(t, s.PutAction(ctx(t), a), "PutAction")
		all = append(all, a)
	}
	cases := []store.ActionFilter{
		{},
		{DeviceID: "dev-002"},
		{IncidentID: "inc-5"},
		{State: vigil.ActionSent},
		{DeviceID: "dev-001", IncidentID: "inc-1", State: vigil.ActionSucceeded},
		{State: vigil.ActionDenied},
	}
	for _, f := range cases {
		want := filterSlice(all, func(a vigil.Action) bool {
			return (f.DeviceID == "" || a.DeviceID == f.DeviceID) &&
				(f.IncidentID == "" || a.IncidentID == f.IncidentID) &&
				(f.State == "" || a.State == f.State)
		})
		newestFirst(want, func(a vigil.Action) time.Time { return a.Created }, actionID)
		for _, limit := range []int{0, 1, 4} {
			got := walk(t, limit, func(p store.Page) ([]vigil.Action, string, error) {
				g := f
				g.Page = p
				return s.ListActions(ctx(t), g)
			})
			sameIDs(t, fmt.Sprintf("ListActions(%+v) limit %d", f, limit), ids(got, actionID), ids(want, actionID))
			if limit == 0 && len(got) > 0 {
				for i := range got {
					got[i], want[i] = normAction(got[i]), normAction(want[i])
				}
				deepEqual(t, "listed actions", got, want)
			}
		}
	}
	_, _, err := s.ListActions(ctx(t), store.ActionFilter{Page: store.Page{Cursor: "x"}})
	wantCode(t, err, vigil.EINVALID, "ListActions with a bad cursor")
}
