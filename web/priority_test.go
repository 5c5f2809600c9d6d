package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/web/api"
)

// TestListSortPriority: sort=priority orders alerts and incidents by
// priority, open incidents are by priority by default, everything else
// newest first, and another sort is refused.
func TestListSortPriority(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for i, sc := range []int{20, 90, 50} {
		at := now.Add(time.Duration(i) * time.Minute)
		p := &vigil.Priority{Score: sc, Confidence: 1}
		id := []string{"x", "y", "z"}[i]
		if err := e.store.PutAlert(ctx, vigil.Alert{ID: "a-" + id, RuleID: "r", Created: at, Priority: p}); err != nil {
			t.Fatal(err)
		}
		if err := e.store.PutIncident(ctx, vigil.Incident{ID: "i-" + id, Status: vigil.IncidentOpen, Detected: at, Priority: p}); err != nil {
			t.Fatal(err)
		}
	}
	alerts := func(q string) string {
		var l api.List[vigil.Alert]
		e.get("/api/v1/alerts"+q, 200, &l)
		var ids []string
		for _, a := range l.Items {
			ids = append(ids, a.ID)
		}
		return strings.Join(ids, ",")
	}
	incidents := func(q string) string {
		var l api.List[api.Incident]
		e.get("/api/v1/incidents"+q, 200, &l)
		var ids []string
		for _, i := range l.Items {
			ids = append(ids, i.ID)
		}
		return strings.Join(ids, ",")
	}
	for q, want := range map[string]string{"": "a-z,a-y,a-x", "?sort=time": "a-z,a-y,a-x", "?sort=priority": "a-y,a-z,a-x"} {
		if got := alerts(q); got != want {
			t.Errorf("alerts%s = %s, want %s", q, got, want)
		}
	}
	for q, want := range map[string]string{"": "i-z,i-y,i-x", "?status=open": "i-y,i-z,i-x", "?status=open&sort=time": "i-z,i-y,i-x", "?sort=priority": "i-y,i-z,i-x"} {
		if got := incidents(q); got != want {
			t.Errorf("incidents%s = %s, want %s", q, got, want)
		}
	}
	for _, path := range []string{"/api/v1/alerts?sort=severity", "/api/v1/incidents?sort=x"} {
		code, body, _ := e.do("GET", path, "analyst", "")
		if code != 400 || !strings.Contains(string(body), "want time or priority") {
			t.Errorf("GET %s = %d %s", path, code, body)
		}
	}
}
