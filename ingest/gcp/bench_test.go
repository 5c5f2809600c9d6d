package gcp_test

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/vigil-iot/vigil/ingest/gcp"
)

// BenchmarkReader converts a sink's Cloud Storage export (NDJSON) of 1000
// entries (the ten of sigma_positives.ndjson, repeated) into events.
func BenchmarkReader(b *testing.B) {
	one, err := os.ReadFile("testdata/sigma_positives.ndjson")
	if err != nil {
		b.Fatal(err)
	}
	in := bytes.Repeat(one, 100)
	b.SetBytes(int64(len(in)))
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		r := gcp.NewReader(bytes.NewReader(in), "bench")
		for {
			if _, err := r.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
