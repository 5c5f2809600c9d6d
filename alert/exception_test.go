package alert_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/alert"
	"github.com/vigil-iot/vigil/incident"
	"github.com/vigil-iot/vigil/store"
)

// movingClock is a clock a test sets.
type movingClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *movingClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *movingClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// TestStageExceptions runs alerts through a stage with exceptions of each
// scope: what an exception covers is not stored and is counted in it;
// the rest is stored; an expired exception stops applying; a deleted one
// stops at once (Invalidate).
func TestStageExceptions(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	clock := &movingClock{t: t0}
	for _, d := range []vigil.Device{
		{ID: "cam-1", Class: "camera", Vendor: "Acme", Model: "C1"},
		{ID: "cam-2", Class: "camera", Vendor: "Acme", Model: "C2"},
		{ID: "plc-1", Class: "plc"},
	} {
		if err := st.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	exc := func(id string, e vigil.Exception) vigil.Exception {
		e.ID, e.Reason, e.Author, e.Created = id, "test", "token:test", t0
		if e.Expires.IsZero() {
			e.Expires = t0.Add(time.Hour)
		}
		if err := st.PutException(ctx, e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	exc("on-device", vigil.Exception{RuleID: "r-device", DeviceID: "cam-1"})
	exc("on-class", vigil.Exception{RuleID: "r-class", Class: "camera"})
	exc("on-model", vigil.Exception{RuleID: "r-model", Vendor: "acme", Model: "c2"})
	exc("on-value", vigil.Exception{RuleID: "r-value", Field: "source.ip", Value: "10.0.0.5"})
	exc("short", vigil.Exception{RuleID: "r-short", DeviceID: "cam-1", Expires: t0.Add(time.Minute)})

	corr, err := incident.NewCorrelator(ctx, st, incident.Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	x := alert.NewExcepter(st, alert.ExcepterOptions{Clock: clock, Refresh: time.Hour})
	reg := prometheus.NewRegistry()
	s, err := alert.NewStage(nil, st, alert.Options{Assigner: corr, Exceptions: x, Clock: clock, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	raise := func(rule, device string, fields map[string]any) bool {
		t.Helper()
		n++
		a := vigil.Alert{ID: "a" + strings.Repeat("x", n), Detector: "sigma", RuleID: rule, Title: rule, DeviceID: device,
			Severity: vigil.SeverityHigh, Created: clock.Now(), Fields: fields}
		a.DedupKey = a.ID // each alert stands alone: no merging
		if err := s.Handle(ctx, []vigil.Alert{a}); err != nil {
			t.Fatal(err)
		}
		_, err := st.GetAlert(ctx, a.ID)
		switch vigil.ErrorCode(err) {
		case "":
			return true
		case vigil.ENOTFOUND:
			return false
		}
		t.Fatal(err)
		return false
	}
	f := func(rule, device string, fields map[string]any, want bool) {
		t.Helper()
		if got := raise(rule, device, fields); got != want {
			t.Errorf("rule %s on %s %v: stored %v, want %v", rule, device, fields, got, want)
		}
	}
	f("r-device", "cam-1", nil, false)
	f("r-device", "cam-2", nil, true)
	f("other", "cam-1", nil, true)
	f("r-class", "cam-1", nil, false)
	f("r-class", "cam-2", nil, false)
	f("r-class", "plc-1", nil, true)
	f("r-class", "unknown-device", nil, true)
	f("r-model", "cam-2", nil, false)
	f("r-model", "cam-1", nil, true)
	f("r-value", "plc-1", map[string]any{"source.ip": "10.0.0.5"}, false)
	f("r-value", "plc-1", map[string]any{"source.ip": "10.0.0.6"}, true)
	f("r-value", "plc-1", nil, true)
	f("r-short", "cam-1", nil, false)
	clock.Set(t0.Add(time.Minute)) // expiry is exclusive
	f("r-short", "cam-1", nil, true)

	want := map[string]int64{"on-device": 1, "on-class": 2, "on-model": 1, "on-value": 1, "short": 1}
	list, err := st.ListExceptions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list {
		if e.Suppressed != want[e.ID] {
			t.Errorf("exception %s suppressed %d, want %d", e.ID, e.Suppressed, want[e.ID])
		}
		if e.Suppressed > 0 && (e.LastSuppressed.IsZero() || !strings.Contains(e.LastAlert, e.RuleID)) {
			t.Errorf("exception %s: last suppressed %v %q, want a time and the alert", e.ID, e.LastSuppressed, e.LastAlert)
		}
	}
	if got := counter(t, reg, "vigil_alerts_excepted_total", ""); got != 6 {
		t.Errorf("vigil_alerts_excepted_total = %v, want 6", got)
	}

	if err := st.DeleteException(ctx, "on-device"); err != nil {
		t.Fatal(err)
	}
	x.Invalidate()
	f("r-device", "cam-1", nil, true)
}

// TestExcepterDeletedMeanwhile checks that an exception deleted by another
// node, still in the Excepter's copy, lets the alert through.
func TestExcepterDeletedMeanwhile(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	e := vigil.Exception{ID: "e1", RuleID: "r", DeviceID: "d", Expires: t0.Add(time.Hour), Reason: "x", Author: "y"}
	if err := st.PutException(ctx, e); err != nil {
		t.Fatal(err)
	}
	x := alert.NewExcepter(st, alert.ExcepterOptions{Clock: fixedClock(t0), Refresh: time.Hour})
	a := vigil.Alert{ID: "a1", RuleID: "r", DeviceID: "d"}
	if _, ok, err := x.Match(ctx, &a); err != nil || !ok {
		t.Fatalf("Match: %v %v, want a match", ok, err)
	}
	if err := st.DeleteException(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := x.Match(ctx, &a); err != nil || ok {
		t.Fatalf("Match after delete: %v %v, want none", ok, err)
	}
}

// TestSuggestExceptions closes an incident as a false positive and checks
// the exceptions proposed: one per rule and device, one per rule and
// class when that covers other devices, with the alerts of the last days
// counted and a command that creates each.
func TestSuggestExceptions(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	for _, d := range []vigil.Device{{ID: "cam-1", Class: "camera"}, {ID: "cam-2", Class: "camera"}, {ID: "plc-1", Class: "plc"}} {
		if err := st.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	now := t0.Add(40 * 24 * time.Hour)
	put := func(id, rule, device, incident string, age time.Duration, count int) {
		t.Helper()
		a := vigil.Alert{ID: id, RuleID: rule, DeviceID: device, IncidentID: incident, Title: rule, Created: now.Add(-age), Count: count}
		if err := st.PutAlert(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	put("a1", "scan", "cam-1", "inc-1", time.Hour, 3)
	put("a2", "login", "plc-1", "inc-1", time.Hour, 1)
	put("a3", "scan", "cam-1", "", 10*24*time.Hour, 2)
	put("a4", "scan", "cam-2", "", 24*time.Hour, 1)
	put("a5", "scan", "cam-1", "", 35*24*time.Hour, 1) // older than the days counted
	put("a6", "login", "plc-1", "", 2*time.Hour, 1)
	inc := vigil.Incident{ID: "inc-1", Title: "Scan on cam-1", Status: vigil.IncidentFalsePositive, AlertIDs: []string{"a1", "a2"}}
	got, err := alert.SuggestExceptions(ctx, st, inc, now, 30, 0)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		scope                  string
		alerts, fired, devices int
	}
	var rows []row
	for _, s := range got {
		rows = append(rows, row{s.Scope, s.Alerts, s.Fired, s.Devices})
		if !s.Exception.Expires.Equal(now.Add(alert.DefaultSuggestTTL)) || !strings.Contains(s.Exception.Reason, "inc-1") {
			t.Errorf("suggestion %s: expires %v, reason %q", s.Scope, s.Exception.Expires, s.Exception.Reason)
		}
		if !strings.HasPrefix(s.Command, "vigil ctl exceptions add --rule "+s.Exception.RuleID) {
			t.Errorf("suggestion %s: command %q", s.Scope, s.Command)
		}
		// Accepting it as it is gives a valid exception.
		e := s.Exception
		e.ID, e.Author = "x", "y"
		if err := e.Check(); err != nil {
			t.Errorf("suggestion %s does not make a valid exception: %v", s.Scope, err)
		}
	}
	want := []row{
		{"device cam-1", 2, 5, 1}, // a1, a3
		{"class camera", 3, 6, 2}, // a1, a3, a4
		{"device plc-1", 2, 2, 1}, // a2, a6; class plc covers no other device
	}
	if len(rows) != len(want) {
		t.Fatalf("suggestions %+v, want %+v", rows, want)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("suggestion %d: %+v, want %+v", i, rows[i], want[i])
		}
	}
}

var _ alert.SuggestStore = store.Store(nil)
