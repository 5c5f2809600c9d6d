package sqlite

import (
	"encoding/json"
	"math"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// TestAppendEvent checks that appendEvent's JSON decodes to what
// encoding/json's does, for events with every kind of field and string.
func TestAppendEvent(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
	f := func(e vigil.Event) {
		t.Helper()
		got, err := appendEvent(nil, &e)
		if err != nil {
			t.Fatalf("appendEvent: %v", err)
		}
		if !json.Valid(got) {
			t.Fatalf("appendEvent wrote invalid JSON: %s", got)
		}
		want, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		var g, w vigil.Event
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("cannot decode %s: %v", got, err)
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("decoded differently\n got: %s\nwant: %s", got, want)
		}
		var gm, wm map[string]any
		json.Unmarshal(got, &gm)
		json.Unmarshal(want, &wm)
		if !reflect.DeepEqual(gm, wm) {
			t.Fatalf("documents differ\n got: %s\nwant: %s", got, want)
		}
	}
	f(vigil.Event{ID: "a", Time: at})
	f(vigil.Event{ID: "a", Time: at.UTC(), Kind: "auth", Network: &vigil.Network{}})
	f(vigil.Event{ID: "a", Time: at, Network: &vigil.Network{DstPort: 23}})
	f(vigil.Event{
		ID: "ev\"1\\", Time: at, Received: at.Add(time.Second), DeviceID: "cam-1", Source: "agent",
		Kind: "auth", Category: "authentication", Action: "login", Outcome: "failure", Severity: vigil.SeverityCritical,
		Network: &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.0.7"), SrcPort: 1,
			DstIP: netip.MustParseAddr("fe80::1%eth0"), DstPort: 65535},
		Fields: map[string]any{
			"s":       "ünïcode \"q\" \\ <tag> & \u2028 \x00\x01\x1f\x7f \n\r\t",
			"bad":     "a\xffb\xc3",
			"f":       1.5,
			"big":     1e21,
			"small":   1e-7,
			"neg":     -0.000001,
			"zero":    0.0,
			"int":     float64(math.MaxInt64),
			"b":       true,
			"nb":      false,
			"l":       []string{"x", "", "y\"z"},
			"empty":   []string{},
			"nil":     nil,
			"other":   map[string]any{"k": 1.0},
			"ints":    []any{1.0, "x"},
			"k\"e\ny": "v",
		},
	})
	bad := []vigil.Event{
		{ID: "a", Time: at, Severity: 9},
		{ID: "a", Time: at, Fields: map[string]any{"x": math.NaN()}},
		{ID: "a", Time: at, Fields: map[string]any{"x": math.Inf(1)}},
		{ID: "a", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, e := range bad {
		if _, err := appendEvent(nil, &e); err == nil {
			t.Errorf("appendEvent(%+v) did not fail", e)
		}
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	e := vigil.Event{
		ID: "0123456789abcdef0123456789abcdef", Time: time.Now(), Received: time.Now(), DeviceID: "dev-001",
		Source: "agent", Kind: "auth", Category: "authentication", Action: "login", Outcome: "failure",
		Severity: vigil.SeverityLow,
		Network:  &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.0.7"), SrcPort: 40000, DstIP: netip.MustParseAddr("10.0.0.1"), DstPort: 22},
		Fields:   map[string]any{"user.name": "root", "process.pid": 1234.0, "auth.method": "password"},
	}
	b.Run("append", func(b *testing.B) {
		var buf []byte
		for range b.N {
			buf, _ = appendEvent(buf[:0], &e)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for range b.N {
			json.Marshal(&e)
		}
	})
}
