package node

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/ingest/cloudpush"
	"github.com/vigil-iot/vigil/web"
)

// startAuditApp runs a server like startTestApp, with an anchor file.
func startAuditApp(t *testing.T) (*Node, string) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.SigmaDirs = []string{t.TempDir()}
	anchors := filepath.Join(t.TempDir(), "anchors.jsonl")
	cfg.Audit.Anchors.File = anchors
	a := runTestApp(t, cfg)
	return a, anchors
}

// TestEveryWriteRouteAudited walks every write route the server registers
// (the built-in ones and the Extra routes of enroll, respond, audit and
// the incident resolution) with a token and finds one audit record for
// each request: the token's name, the route's action, an object and the
// outcome. The only write routes left out are the two ingest routes.
func TestEveryWriteRouteAudited(t *testing.T) {
	a, _ := startAuditApp(t)
	analyst, _, err := a.tokens.Create("alice", auth.RoleAnalyst)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.ca.Pool()}}}
	do := func(method, path, token, body string) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, a.URL()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ctx := t.Context()
	lastSeq := func() int64 {
		recs, err := a.store.ListAudit(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return 0
		}
		return recs[len(recs)-1].Seq
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	var walked, left []string
	for _, rt := range a.web.Routes() {
		if rt.Method == http.MethodGet || rt.Method == http.MethodHead {
			continue
		}
		if !web.Audited(rt) {
			left = append(left, rt.Method+" "+rt.Pattern)
			continue
		}
		path := param.ReplaceAllString(rt.Pattern, "walk-1")
		before := lastSeq()
		status := do(rt.Method, path, a.AdminToken(), "{}")
		recs, err := a.store.ListAudit(ctx, before, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := rt.Action
		if want == "" {
			want = rt.Method + " " + rt.Pattern
		}
		// One record of the request: the token's, with the route's action
		// (or, for a route without one, the action its handler named).
		var mine []vigil.AuditRecord
		for _, r := range recs {
			if r.Actor == "token:"+auth.BootstrapName {
				mine = append(mine, r)
			}
		}
		if len(mine) != 1 || mine[0].Outcome == "" || mine[0].Object == "" || (rt.Action != "" || status >= 400) && mine[0].Action != want {
			t.Errorf("%s %s (answered %d): want one record with action %s, got %+v", rt.Method, rt.Pattern, status, want, recs)
			continue
		}
		i := 0
		recs = mine
		walked = append(walked, fmt.Sprintf("%s %s -> %d %s %s %s", rt.Method, rt.Pattern, status, recs[i].Action, recs[i].Object, recs[i].Outcome))
	}
	t.Logf("walked %d write routes:\n%s", len(walked), strings.Join(walked, "\n"))
	if len(walked) < 15 {
		t.Errorf("only %d write routes walked", len(walked))
	}
	slices.Sort(left)
	// The data path (routes of the ingest permission: the events carry
	// their provenance) is not audited.
	want := []string{"POST " + web.PathAgentReport, "POST " + web.PathBulkEvents, "POST " + cloudpush.Path, "POST " + cloudpush.PathFormat}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Errorf("write routes not audited: %v, want only the ingest routes", left)
	}

	// What the issue found unaudited, done for real: an analyst's command,
	// an enrollment token made and deleted, a device revoked.
	// Commands go only to known devices: cam-9 is in the inventory.
	if err := a.store.PutDevice(ctx, vigil.Device{ID: "cam-9", Class: "camera", FirstSeen: time.Now(), LastSeen: time.Now()}); err != nil {
		t.Fatal(err)
	}
	before := lastSeq()
	if s := do("POST", "/api/v1/devices/cam-9/commands", analyst, `{"action":"isolate"}`); s != 201 {
		t.Fatalf("command: %d", s)
	}
	if s := do("POST", "/api/v1/devices/cam-9/revoke", analyst, ""); s != 403 {
		t.Fatalf("revoke as analyst: %d", s)
	}
	if s := do("POST", "/api/v1/devices/cam-9/revoke", a.AdminToken(), ""); s != 204 {
		t.Fatalf("revoke: %d", s)
	}
	recs, _ := a.store.ListAudit(ctx, before, 0)
	var got []string
	for _, r := range recs {
		got = append(got, strings.Join([]string{r.Actor, r.Action, r.Object, r.Outcome}, " "))
	}
	for _, w := range []string{
		"token:alice command.send device:cam-9 ok",
		"vigil command.queue device:cam-9 ",
		"token:alice device.revoke /api/v1/devices/cam-9/revoke denied", // the handler never ran: the object is the path
		"token:" + auth.BootstrapName + " device.revoke device:cam-9 ok",
	} {
		if !slices.Contains(got, w) {
			t.Errorf("no record %q in\n%s", w, strings.Join(got, "\n"))
		}
	}
	for _, r := range recs {
		if r.MAC == "" || r.MAC != r.ComputeMAC(a.auditKey) {
			t.Errorf("record %d is not sealed with the data dir's key", r.Seq)
		}
	}
}

func TestAuditConfigSinks(t *testing.T) {
	f := func(mod func(c *AuditConfig), want string) {
		t.Helper()
		var c AuditConfig
		mod(&c)
		_, err := c.sinks(nil)
		if (want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("sinks: %v, want %q", err, want)
		}
	}
	f(func(c *AuditConfig) {}, "")
	f(func(c *AuditConfig) { c.Anchors.File = "anchors.jsonl" }, "audit.anchors.file")
	f(func(c *AuditConfig) { c.Anchors.Syslog = &SyslogConfig{Network: "sctp", Addr: "x:514"} }, "audit.anchors.syslog.network")
	f(func(c *AuditConfig) { c.Anchors.Webhook = &WebhookConfig{URL: "file:///etc/passwd"} }, "audit.anchors.webhook.url")
	f(func(c *AuditConfig) {
		c.Anchors.File = "/var/log/a.jsonl"
		c.Anchors.Syslog = &SyslogConfig{Addr: "127.0.0.1:514"}
		c.Anchors.Webhook = &WebhookConfig{URL: "https://siem.example.org/a"}
	}, "")
}
