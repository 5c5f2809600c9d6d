package web

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

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
