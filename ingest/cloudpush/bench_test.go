package cloudpush_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/vigil-iot/vigil/bus/natsbus"
	"github.com/vigil-iot/vigil/ingest/cloudpush"
)

// BenchmarkPushCloudTrail posts a CloudTrail log file of 900 records (the
// takeover story's nine, repeated) to the handler, which reads, stamps
// and publishes them on an embedded NATS JetStream bus, in process (no
// network, no TLS).
func BenchmarkPushCloudTrail(b *testing.B) {
	one, err := os.ReadFile("../cloudtrail/testdata/takeover.json")
	if err != nil {
		b.Fatal(err)
	}
	recs := bytes.TrimSuffix(bytes.TrimSpace(bytes.TrimPrefix(one, []byte(`{"Records":[`))), []byte("]}"))
	var file bytes.Buffer
	file.WriteString(`{"Records":[`)
	for i := 0; i < 100; i++ {
		if i > 0 {
			file.WriteByte(',')
		}
		file.Write(bytes.TrimSpace(recs))
	}
	file.WriteString("]}\n")
	body := file.Bytes()
	bus, err := natsbus.Open(b.Context(), natsbus.Config{DataDir: b.TempDir(), Partitions: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	h, err := cloudpush.NewHandler(cloudpush.Options{Publisher: bus, Formats: formats, MaxFuture: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/ingest/cloud/cloudtrail", bytes.NewReader(body))
		req.SetPathValue("format", "cloudtrail")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(900*b.N)/b.Elapsed().Seconds(), "records/s")
}
