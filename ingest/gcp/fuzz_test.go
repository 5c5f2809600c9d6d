package gcp_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/vigil-iot/vigil/ingest/gcp"
)

// FuzzReader: any input gives events or record errors, never a panic;
// events encode as valid JSON.
func FuzzReader(f *testing.F) {
	for _, name := range []string{"iot_story.json", "sigma_positives.ndjson"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"message":{"data":"eyJ0aW1lc3RhbXAiOiIyMDI2LTAzLTA2VDEwOjAwOjAwWiIsInByb3RvUGF5bG9hZCI6eyJtZXRob2ROYW1lIjoibSJ9fQ=="}}`))
	f.Add([]byte("{\"timestamp\":\"2026-03-06T10:00:00Z\",\"protoPayload\":{\"methodName\":\"\xff\",\"resourceName\":\"x/registries/r/devices/\xfe\"},\"resource\":{\"type\":\"cloudiot_device\"}}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := gcp.NewReader(bytes.NewReader(b), "fuzz")
		for {
			ev, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				var re *gcp.RecordError
				if !errors.As(err, &re) {
					t.Fatalf("not a record error: %v", err)
				}
				continue
			}
			out, err := ev.AppendJSON(nil, true)
			if err != nil || !json.Valid(out) || !utf8.Valid(out) {
				t.Fatalf("event out %q: %v", out, err)
			}
		}
	})
}
