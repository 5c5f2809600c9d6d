package cloudtrail_test

import (
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/vigil-iot/vigil/ingest/cloudtrail"
)

// BenchmarkReader converts a CloudTrail log file of 900 records (the
// takeover story's nine, repeated) into events.
func BenchmarkReader(b *testing.B) {
	one, err := os.ReadFile("testdata/takeover.json")
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
	in := file.Bytes()
	b.SetBytes(int64(len(in)))
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		r := cloudtrail.NewReader(bytes.NewReader(in), "bench")
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
