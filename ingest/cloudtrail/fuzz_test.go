package cloudtrail_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/vigil-iot/vigil/ingest/cloudtrail"
)

// FuzzReader: any input gives events or record errors, never a panic;
// the events are valid JSON with valid UTF-8 and the fields CloudTrail
// records must have. Run it with -fuzzminimizetime 3s: with the default
// 60 s, minimising mutants of the 9 KB log file seed held the worker for
// minutes on this machine (0 execs/s).
func FuzzReader(f *testing.F) {
	for _, name := range []string{"takeover.json", "sigma_positives.ndjson"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"eventTime":"2026-03-02T22:46:00Z","eventSource":"iot.amazonaws.com","eventName":"CreateJob","requestParameters":{"targets":["arn:aws:iot:r:1:thing/a",{"x":[1,[2,null]]}],"thingName":"\xff"}}`))
	f.Add([]byte("{\n \"Records\": [\n  {\"eventTime\":\"2026-03-02T22:46:00Z\"}\n ]\n}\n[1,2]\n{\"detail-type\":\"x\",\"detail\":{}}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := cloudtrail.NewReader(bytes.NewReader(b), "fuzz")
		for i := 0; ; i++ {
			ev, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				var re *cloudtrail.RecordError
				if !errors.As(err, &re) {
					t.Fatalf("not a record error: %v", err)
				}
				continue
			}
			if i > len(b) {
				t.Fatalf("more events (%d) than input bytes", i)
			}
			if ev.Kind != cloudtrail.Kind || ev.Action == "" || ev.Time.IsZero() {
				t.Fatalf("event %+v", ev)
			}
			out, err := ev.AppendJSON(nil, true)
			if err != nil {
				t.Fatalf("AppendJSON: %v", err)
			}
			if !json.Valid(out) || !utf8.Valid(out) {
				t.Fatalf("invalid JSON out: %q", out)
			}
		}
		st := r.Stats()
		if st.Bad > st.Records {
			t.Fatalf("stats %+v", st)
		}
	})
}
