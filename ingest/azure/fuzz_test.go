package azure_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/vigil-iot/vigil/ingest/azure"
)

// FuzzReader: any input gives events or record errors, never a panic;
// events encode as valid JSON.
func FuzzReader(f *testing.F) {
	for _, name := range []string{"signin.json", "activity.ndjson"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"time":"2026-03-04T08:05:30Z","operationName":"deviceConnect","category":"Connections","resourceId":"/x/PROVIDERS/MICROSOFT.DEVICES/IOTHUBS/h","properties":"{\"deviceId\":\"\xff\"}"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := azure.NewReader(bytes.NewReader(b), "fuzz")
		for {
			ev, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				var re *azure.RecordError
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
