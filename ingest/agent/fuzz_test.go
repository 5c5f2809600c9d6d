package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/wire"
)

// fuzzSeeds returns the example reports and the wire package's fuzz
// regression inputs, by format.
func fuzzSeeds(tb testing.TB) map[wire.Format][][]byte {
	out := map[wire.Format][][]byte{}
	for f, name := range map[wire.Format]string{wire.FormatJSON: "report.json", wire.FormatXML: "report.xml"} {
		b, err := os.ReadFile(filepath.Join("../../wire/testdata", name))
		if err != nil {
			tb.Fatal(err)
		}
		out[f] = append(out[f], b)
	}
	for f, dir := range map[wire.Format]string{wire.FormatJSON: "FuzzDecodeJSON", wire.FormatXML: "FuzzDecodeXML"} {
		files, _ := filepath.Glob(filepath.Join("../../wire/testdata/fuzz", dir, "*"))
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				tb.Fatal(err)
			}
			// go test fuzz v1, then []byte("...").
			_, arg, _ := strings.Cut(string(b), "\n")
			arg = strings.TrimSpace(arg)
			if s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(arg, "[]byte("), ")")); err == nil {
				out[f] = append(out[f], []byte(s))
			}
		}
	}
	return out
}

// FuzzConvert decodes arbitrary report bodies as the report endpoint does
// (wire.DecodeReportBytes, then Convert) and checks what Convert makes of
// those that decode: no panic; each problem has a path and a message; no
// event without a valid envelope; each event has an id, the report's
// device, the agent source, a kind and a time, and encodes to JSON (both
// Vigil's encoder and encoding/json, as the bus and the store do); and an
// inventory event gives the same device through DeviceFromInventory before
// and after a JSON round trip.
func FuzzConvert(f *testing.F) {
	for format, seeds := range fuzzSeeds(f) {
		for _, s := range seeds {
			f.Add(format == wire.FormatXML, s)
		}
	}
	f.Add(false, []byte(`{"version":"1","device_id":"d","time":"2026-01-01T00:00:00Z","inventory":{"software":[{"name":"a\u0000","version":"\ud800"}]},"network":{"interfaces":[{"name":"e","mac":"AA:BB","addresses":["::ffff:1.2.3.4/96","x"]}],"listening":[{"proto":"TCP6","addr":"::ffff:10.0.0.1","port":23,"pid":-1},{"proto":"tcp","addr":"::ffff:10.0.0.1","port":23}]}}`))
	f.Add(false, []byte(`{"version":"1","device_id":"d","time":"9999-12-31T23:59:59+14:00","events":[{"time":"0001-01-01T00:00:00-14:00","kind":"auth","id":"x","fields":{"source.ip":"1.2.3.4","destination.port":"99999"}},{"time":"2026-01-01T00:00:00Z","kind":"auth","id":"x"}]}`))
	f.Add(false, []byte(`{"version":"1","device_id":"d","time":"2026-01-01T00:00:00Z","health":{"cpu_pct":1e308,"memory_pct":-0,"disk_pct":100,"temperature_c":-273.15,"uptime_s":18446744073709551615,"metrics":{"":1}}}`))
	received := received
	f.Fuzz(func(t *testing.T, xml bool, data []byte) {
		format := wire.FormatJSON
		if xml {
			format = wire.FormatXML
		}
		r, err := wire.DecodeReportBytes(format, data)
		if err != nil {
			return // the wire package's fuzz targets check decoding
		}
		valid, _ := r.Filter()
		events, probs := Convert(r, received)
		for _, p := range probs {
			if p.Path == "" || strings.TrimSpace(p.Message) == "" {
				t.Errorf("problem without a path or a message: %+v", p)
			}
		}
		if valid == nil {
			if len(events) != 0 {
				t.Fatalf("%d events from a report with an invalid envelope", len(events))
			}
			return
		}
		for i := range events {
			e := &events[i]
			if e.ID == "" || e.DeviceID != valid.DeviceID || e.DeviceID == "" || e.Source != Source || e.Kind == "" || e.Time.IsZero() || !e.Received.Equal(received) {
				t.Fatalf("event %d: %+v", i, e)
			}
			b, err := e.AppendJSON(nil, true)
			if err != nil {
				t.Fatalf("event %d does not encode: %v\n%+v", i, err, e)
			}
			std, err := json.Marshal(e)
			if err != nil {
				t.Fatalf("event %d does not encode with encoding/json: %v", i, err)
			}
			var back vigil.Event
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("event %d: its encoding does not decode: %v\n%s", i, err, b)
			}
			if e.Kind != vigil.KindInventory {
				continue
			}
			d, err := DeviceFromInventory(e)
			if err != nil {
				t.Fatalf("inventory event: %v", err)
			}
			d2, err := DeviceFromInventory(&back)
			if err != nil {
				t.Fatalf("inventory event through JSON: %v\n%s", err, b)
			}
			var back2 vigil.Event
			if err := json.Unmarshal(std, &back2); err != nil {
				t.Fatal(err)
			}
			d3, err := DeviceFromInventory(&back2)
			if err != nil {
				t.Fatalf("inventory event through encoding/json: %v\n%s", err, std)
			}
			d.LastSeen, d2.LastSeen, d3.LastSeen = d.LastSeen.UTC(), d2.LastSeen.UTC(), d3.LastSeen.UTC()
			if !reflect.DeepEqual(d, d2) || !reflect.DeepEqual(d, d3) {
				t.Fatalf("device changed through JSON:\n%+v\n%+v\n%+v", d, d2, d3)
			}
		}
	})
}
