package console

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
)

// TestLive: the live stream sends an alert created and an incident
// updated after it opened, as server-sent events; without a session it
// is refused.
func TestLive(t *testing.T) {
	e := newEnv(t)
	e.c.opts.LiveEvery = 10 * time.Millisecond
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	b := e.loggedIn(auth.RoleViewer)
	open := func(withCookie bool) *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/live", nil)
		if withCookie {
			req.AddCookie(b.cookies[SessionCookie])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := open(false); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("live without a session: %d, want 401", res.StatusCode)
	} else {
		res.Body.Close()
	}
	res := open(true)
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("live: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	at := e.clock.Now().Add(time.Second)
	ctx := context.Background()
	if err := e.st.PutAlert(ctx, vigil.Alert{ID: "al-live", DedupKey: "k", Title: "Live one", Severity: vigil.SeverityHigh, DeviceID: "cam-9", Created: at, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutIncident(ctx, vigil.Incident{ID: "inc-live", Title: "Live incident", Status: vigil.IncidentOpen, Detected: at, Updated: at}); err != nil {
		t.Fatal(err)
	}
	e.clock.add(2 * time.Second)
	sc := bufio.NewScanner(res.Body)
	seen := map[string]string{}
	var event string
	for sc.Scan() && len(seen) < 2 {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			seen[event] = line
		}
	}
	if !strings.Contains(seen["alert"], `"url":"/alerts/al-live"`) || !strings.Contains(seen["incident"], `"status":"open"`) {
		t.Fatalf("live events: %v", seen)
	}
}
