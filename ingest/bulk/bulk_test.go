package bulk

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

var received = time.Date(2026, 11, 22, 3, 15, 0, 0, time.UTC)

func TestDecodeShapes(t *testing.T) {
	body := strings.Join([]string{
		`{"id":"e1","time":"2026-11-22T03:14:00Z","device_id":"cam-1","source":"syslog","kind":"auth","category":"authentication","action":"login","outcome":"failure","severity":"high","network":{"transport":"tcp","src_ip":"203.0.113.7","src_port":50000,"dst_ip":"10.0.0.5","dst_port":22},"fields":{"user.name":"root","attempts":3,"tags":["a",1,true],"ok":false},"received":"1999-01-01T00:00:00Z"}`,
		``,
		`{"@timestamp":"2026-11-22T03:14:01.5+01:00","device.id":"cam-2","kind":"auth","event.action":"login","event.outcome":"success","event.category":["authentication","session"],"user.name":"admin","source.ip":"198.51.100.1","destination.port":"22","user":{"domain":"corp","roles":["x"]},"severity":4,"nothing":null}`,
		`{"time":1763781240.25,"kind":"network","source":{"ip":"192.0.2.1","port":1234,"geo":{"country_iso_code":"NL"}},"network":{"protocol":"mqtt"}}`,
	}, "\n")
	evs, errs := Decode([]byte(body), received)
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	if len(evs) != 3 {
		t.Fatalf("got %d events", len(evs))
	}
	e := evs[0]
	want := vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("203.0.113.7"), SrcPort: 50000, DstIP: netip.MustParseAddr("10.0.0.5"), DstPort: 22}
	if e.ID != "e1" || e.DeviceID != "cam-1" || e.Source != "syslog" || e.Kind != "auth" || e.Category != "authentication" ||
		e.Action != "login" || e.Outcome != "failure" || e.Severity != vigil.SeverityHigh || !e.Received.Equal(received) ||
		!e.Time.Equal(time.Date(2026, 11, 22, 3, 14, 0, 0, time.UTC)) || e.Network == nil || *e.Network != want {
		t.Fatalf("event 0: %+v %+v", e, e.Network)
	}
	if e.Fields["user.name"] != "root" || e.Fields["attempts"] != 3.0 || e.Fields["ok"] != false ||
		fmt.Sprint(e.Fields["tags"]) != "[a 1 true]" || len(e.Fields) != 4 {
		t.Fatalf("event 0 fields: %#v", e.Fields)
	}

	e = evs[1]
	if e.DeviceID != "cam-2" || e.Action != "login" || e.Outcome != "success" || e.Category != "authentication" ||
		e.Severity != vigil.SeverityHigh || e.Source != "bulk" || len(e.ID) != 32 ||
		!e.Time.Equal(time.Date(2026, 11, 22, 2, 14, 1, 5e8, time.UTC)) {
		t.Fatalf("event 1: %+v", e)
	}
	if v, _ := e.FieldString("source.ip"); v != "198.51.100.1" {
		t.Fatalf("source.ip = %q", v)
	}
	if v, _ := e.FieldNumber("destination.port"); v != 22 {
		t.Fatalf("destination.port = %v", v)
	}
	if e.Fields["user.name"] != "admin" || e.Fields["user.domain"] != "corp" || fmt.Sprint(e.Fields["user.roles"]) != "[x]" {
		t.Fatalf("event 1 fields: %#v", e.Fields)
	}
	if _, ok := e.Fields["nothing"]; ok {
		t.Fatal("null field kept")
	}

	e = evs[2]
	if !e.Time.Equal(time.Unix(1763781240, 250e6)) || e.Source != "bulk" {
		t.Fatalf("event 2: %+v", e)
	}
	if v, _ := e.FieldString("source.ip"); v != "192.0.2.1" {
		t.Fatalf("ECS source object: %+v %v", e.Network, e.Fields)
	}
	if e.Fields["source.geo.country_iso_code"] != "NL" || e.Fields["network.protocol"] != "mqtt" || e.Network.SrcPort != 1234 {
		t.Fatalf("event 2 fields: %#v %+v", e.Fields, e.Network)
	}
	for _, e := range evs {
		if _, err := json.Marshal(e); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	lines := []string{
		`{"time":"2026-11-22T03:14:00Z","kind":"auth"}`, // 1 ok
		`{"time":"yesterday","kind":"auth"}`,            // 2
		`{"kind":"auth"}`,                               // 3
		`{"time":"2026-11-22T03:14:00Z"}`,               // 4
		`not json`,                                      // 5
		``,                                              // 6 blank
		`[1,2]`,                                         // 7
		`{"time":"2026-11-22T03:14:00Z","kind":"auth","severity":"urgent"}`, // 8
		`{"time":"2026-11-22T03:14:00Z","kind":"auth","outcome":"maybe"}`,   // 9
		`{"time":"2026-11-22T03:14:00Z","kind":"auth","network":{"src_ip":"x"}}`,
		`{"time":"2026-11-22T03:14:00Z","kind":"auth","network":{"dst_port":70000}}`,
		`{"time":"2026-11-22T03:14:00Z","kind":"auth","x":[{"a":1}]}`,
		`{"time":"2026-11-22T03:14:00Z","kind":7}`,
		`{"time":-5,"kind":"a"}`,
		`{"time":"2026-11-22T03:14:00Z","kind":"auth","n":1e999}`,
		`{"time":"2026-11-22T03:14:00Z","kind":"auth","fields":[]}`,
		`{"time":"2026-11-22T03:14:00Z","kind":"auth","device_id":"cam 7/x"}`,
		`{"time":"2026-11-22T03:14:00Z","kind":"auth"}`, // 18 ok
	}
	body := strings.Join(lines, "\r\n")
	evs, errs := Decode([]byte(body), received)
	if len(evs) != 2 {
		t.Fatalf("got %d events, want 2", len(evs))
	}
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		`line 2 (offset 47): time: cannot parse "yesterday": want an RFC 3339 time`,
		`line 3 (offset 83): time: missing`,
		`line 4 (offset 100): kind: missing`,
		`line 5 (offset 133): invalid JSON: unexpected value found: "not json"; unparsed tail: "not json"`,
		`line 7 (offset 145): want a JSON object, have array`,
		`line 8 (offset 152): severity: unknown severity "urgent": want informational, low, medium, high or critical`,
		`line 9 (offset 219): outcome: unknown outcome "maybe": want success, failure or unknown`,
		`line 10 (offset 284): network.src_ip: cannot parse "x" as an IP address`,
		`line 11 (offset 356): network.dst_port: 70000: want a port number 0 to 65535`,
		`line 12 (offset 432): x: a list may hold only strings, numbers and booleans`,
		`line 13 (offset 493): kind: want a string, have number`,
		`line 14 (offset 535): time: -5 is out of range for Unix seconds`,
		`line 15 (offset 559): n: 1e999 is not a finite number`,
		`line 16 (offset 616): fields: want an object`,
		`line 17 (offset 675): device_id: "cam 7/x": want letters, digits, '.', '_', ':', '@' or '-'`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d errors:\n%s", len(got), strings.Join(got, "\n"))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("error %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	// The offset points at the line's first byte.
	for _, e := range errs {
		if !strings.HasPrefix(body[e.Offset:], lines[e.Line-1]) {
			t.Errorf("line %d: offset %d is not its start", e.Line, e.Offset)
		}
	}
	if errs[0].Index != 1 || errs[3].Index != 4 || errs[4].Index != 5 {
		t.Fatalf("indexes: %d %d %d (blank lines are not items)", errs[0].Index, errs[3].Index, errs[4].Index)
	}
}

func TestDecodeArray(t *testing.T) {
	evs, errs := DecodeArray([]byte(`[{"time":"2026-11-22T03:14:00Z","kind":"auth"},{"kind":"auth"}]`), received)
	if len(evs) != 1 || len(errs) != 1 || errs[0].Error() != "item 1: time: missing" {
		t.Fatalf("got %v, %v", evs, errs)
	}
	_, errs = DecodeArray([]byte(`{"time":1}`), received)
	if len(errs) != 1 || errs[0].Index != -1 {
		t.Fatalf("got %v", errs)
	}
}

func benchBody(n int) []byte {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"time":"2026-11-22T03:%02d:%02d.%03dZ","device_id":"cam-%04d","kind":"auth","category":"authentication","action":"login","outcome":"failure","severity":"low","source.ip":"203.0.113.%d","source.port":%d,"user.name":"root","fields":{"service.name":"sshd","process.pid":%d}}`+"\n",
			i/60%60, i%60, i%1000, i%5000, i%250, 1024+i%60000, 100+i%30000)
	}
	return []byte(b.String())
}

func BenchmarkDecode(b *testing.B) {
	body := benchBody(10000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		evs, errs := Decode(body, received)
		if len(evs) != 10000 || len(errs) != 0 {
			b.Fatalf("%d events, %v", len(evs), errs)
		}
	}
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "lines/s")
}

func FuzzBulk(f *testing.F) {
	f.Add([]byte(`{"time":"2026-11-22T03:14:00Z","kind":"auth","user":{"name":"root"},"tags":["a",1]}` + "\n" + `{"time":1.5,"kind":"x","network":{"src_ip":"::1","dst_port":80}}`))
	f.Add(benchBody(3))
	f.Add([]byte("\n\r\n{\"time\":\"2026-11-22T03:14:00Z\",\"kind\":\"a\",\"source\":{\"ip\":\"1.2.3.4\"},\"n\":NaN}\n[1]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res := DecodeLines(data, Options{Received: received})
		evs, errs := res.Events, res.Errors
		items := 0
		for _, l := range strings.Split(string(data), "\n") {
			if strings.TrimSpace(l) != "" {
				items++
			}
		}
		if len(evs)+res.Rejected != items || len(errs) > DefaultMaxErrors || len(errs) != min(res.Rejected, DefaultMaxErrors) {
			t.Fatalf("%d events + %d rejected (%d errors kept) != %d items", len(evs), res.Rejected, len(errs), items)
		}
		for _, e := range evs {
			if e.Kind == "" || e.Time.IsZero() || e.ID == "" || e.Source == "" {
				t.Fatalf("incomplete event accepted: %+v", e)
			}
			if _, err := json.Marshal(e); err != nil {
				t.Fatalf("accepted event does not encode: %v: %+v", err, e)
			}
		}
		for _, e := range errs {
			if e.Offset < 0 || e.Offset > int64(len(data)) || e.Line < 1 || e.Msg == "" {
				t.Fatalf("bad error position: %+v", e)
			}
		}
		DecodeArray(data, received)
	})
}
