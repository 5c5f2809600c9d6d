package vigil

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// TestAppendJSONMatchesEncodingJSON compares AppendJSON with encoding/json
// on events with every kind of field and awkward strings.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	strs := []string{"", "plain", `quote " and \ backslash`, "<script>&amp;", "tab\tnew\nline\r\x01\x1f", "é ü 日本",
		"bad utf8 \xff\xfe", "line sep \u2028 para \u2029", "emoji 😀"}
	nums := []float64{0, -0.5, 1, 3.14159, 1e-7, 1e21, 123456789012, -2.5e-300, 97.3}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	for i := range 2000 {
		e := Event{
			ID: pick(strs), Time: time.Date(2026, 11, 22, 3, 4, 5, rng.IntN(1e9), time.UTC), DeviceID: pick(strs),
			Source: pick(strs), Provenance: pick(strs), Kind: pick(strs), Category: pick(strs), Action: pick(strs), Outcome: pick(strs),
			Severity: Severity(rng.IntN(6)),
		}
		if i%2 == 0 {
			e.Received = e.Time.Add(time.Millisecond).In(time.FixedZone("X", 3600))
		}
		if i%3 != 0 {
			e.Network = &Network{Transport: pick([]string{"", "tcp"})}
			if rng.IntN(2) == 0 {
				e.Network.SrcIP = netip.MustParseAddr("10.0.0.1")
				e.Network.SrcPort = uint16(rng.IntN(65536))
			}
			if rng.IntN(2) == 0 {
				e.Network.DstIP = netip.MustParseAddr("2001:db8::1")
				e.Network.DstPort = uint16(rng.IntN(65536))
			}
		}
		var list []Field // the same fields as a list, names repeated at times
		if i%4 != 0 {
			e.Fields = map[string]any{}
			for range rng.IntN(12) {
				var v any
				switch rng.IntN(6) {
				case 0:
					v = pick(strs)
				case 1:
					v = nums[rng.IntN(len(nums))]
				case 2:
					v = rng.IntN(2) == 0
				case 3:
					v = []string{pick(strs), pick(strs)}
				case 4:
					v = nil
				default:
					v = map[string]any{"nested": 1} // falls back to encoding/json
				}
				k := pick(strs) + pick([]string{"a", "user.name", "b.c"})
				e.Fields[k] = v
				if s, ok := v.(string); ok && rng.IntN(2) == 0 {
					list = append(list, StringField(k, s))
				} else {
					list = append(list, Field{Key: k, Value: v})
				}
			}
		}
		want, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.AppendJSON(nil, true)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got, want)
		}
		fromList, err := (&Event{ID: e.ID, Time: e.Time, Received: e.Received, DeviceID: e.DeviceID, Source: e.Source, Provenance: e.Provenance,
			Kind: e.Kind, Category: e.Category, Action: e.Action, Outcome: e.Outcome, Severity: e.Severity,
			Network: e.Network}).AppendJSONFields(nil, list)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fromList, want) {
			t.Fatalf("event %d from a list:\n got %s\nwant %s", i, fromList, want)
		}
		var back Event
		unsorted, _ := e.AppendJSON(nil, false)
		if err := json.Unmarshal(unsorted, &back); err != nil {
			t.Fatalf("event %d: unsorted encoding is not valid JSON: %v\n%s", i, err, unsorted)
		}
	}
}

func TestAppendJSONRejectsWhatEncodingJSONRejects(t *testing.T) {
	for name, e := range map[string]Event{
		"year":     {Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"nan":      {Time: time.Now(), Fields: map[string]any{"x": math.NaN()}},
		"severity": {Time: time.Now(), Severity: 9},
	} {
		if _, err := e.AppendJSON(nil, true); err == nil {
			t.Errorf("%s: no error", name)
		}
		var list []Field
		for k, v := range e.Fields {
			list = append(list, Field{Key: k, Value: v})
		}
		if _, err := e.AppendJSONFields(nil, list); err == nil {
			t.Errorf("%s: no error from AppendJSONFields", name)
		}
	}
}

func TestAppendJSONStringEveryByteAnywhere(t *testing.T) {
	for c := range 256 {
		for n := 1; n <= 19; n++ {
			for at := range n {
				s := []byte("abcdefghijklmnopqrs"[:n])
				s[at] = byte(c)
				want, _ := json.Marshal(string(s))
				if got := AppendJSONString(nil, string(s)); !bytes.Equal(got, want) {
					t.Fatalf("%q: got %s, want %s", s, got, want)
				}
			}
		}
	}
}

func TestAppendTimeMatchesAppendFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	times := []time.Time{time.Unix(0, 0), time.Unix(0, 1), time.Unix(-1, 999999999), time.Unix(253402300799, 999999999),
		time.Unix(253402300800, 0), time.Date(2000, 2, 29, 23, 59, 59, 100, time.UTC), time.Date(2100, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(1700000000, 5e8).In(time.FixedZone("X", -5400)), time.Unix(1700000000, 0).Local()}
	for range 100000 {
		times = append(times, time.Unix(rng.Int64N(253402300800+86400*400)-86400*400, rng.Int64N(1e9)).UTC())
		times = append(times, time.Unix(rng.Int64N(4e9), rng.Int64N(1e3)*1e6).UTC())
	}
	for _, tm := range times {
		if got, want := string(AppendTime(nil, tm)), tm.Format(time.RFC3339Nano); got != want {
			t.Fatalf("AppendTime(%v) = %s, want %s", tm, got, want)
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	e := Event{ID: "000001a2015b364a1491a58993656a23", Time: time.Now(), Received: time.Now(), DeviceID: "camera-001",
		Source: "agent", Kind: "auth", Action: "login", Outcome: "failure", Severity: SeverityLow,
		Network: &Network{Transport: "tcp", SrcIP: netip.MustParseAddr("203.0.113.66"), SrcPort: 51234},
		Fields:  map[string]any{"user.name": "root", "service.name": "telnetd", "process.pid": 4242.0}}
	var buf []byte
	for b.Loop() {
		buf, _ = e.AppendJSON(buf[:0], false)
	}
}
