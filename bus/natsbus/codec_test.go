package natsbus

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// encode encodes events as one message.
func encode(t testing.TB, events []vigil.Event) []byte {
	t.Helper()
	b := appendHeader(nil)
	for i := range events {
		var err error
		if b, err = appendEvent(b, &events[i]); err != nil {
			t.Fatal(err)
		}
	}
	putCount(b, len(events))
	return b
}

func codecEvents() []vigil.Event {
	cet := time.FixedZone("CET", 3600)
	return []vigil.Event{
		{}, // every field zero
		{
			ID:         "01J0000000000000000000000A",
			Time:       time.Date(2026, 11, 22, 3, 4, 5, 123456789, time.UTC),
			Received:   time.Date(2026, 11, 22, 3, 4, 6, 1, cet),
			DeviceID:   "cam-0007",
			Source:     "agent",
			Provenance: "device-cert:cam-0007",
			Kind:       vigil.KindAuth,
			Category:   "authentication",
			Action:     "login",
			Outcome:    vigil.OutcomeFailure,
			Severity:   vigil.SeverityHigh,
			Network: &vigil.Network{
				Transport: "tcp",
				SrcIP:     netip.MustParseAddr("10.0.0.7"),
				SrcPort:   51234,
				DstIP:     netip.MustParseAddr("fe80::1%eth0"),
				DstPort:   22,
			},
			Fields: map[string]any{
				"user.name":   "root",
				"metric.cpu":  93.25,
				"nan":         math.Inf(-1),
				"tls":         true,
				"anonymous":   false,
				"dns.answers": []string{"a", "", "ünïcode"},
				"empty.list":  []string{},
				"nil.list":    []string(nil),
				"nothing":     nil,
				"empty":       "",
			},
		},
		{
			ID:      "pre-epoch",
			Time:    time.Date(1969, 7, 20, 20, 17, 40, 999999999, time.FixedZone("", -4*3600-30*60)),
			Kind:    vigil.KindNetwork,
			Network: &vigil.Network{SrcIP: netip.MustParseAddr("::ffff:1.2.3.4")},
			Fields:  map[string]any{},
		},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	in := codecEvents()
	out, err := newDecoder().decode(nil, encode(t, in))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("decoded %d events, want %d", len(out), len(in))
	}
	for i := range in {
		want, got := in[i], out[i]
		if !got.Time.Equal(want.Time) || !got.Received.Equal(want.Received) {
			t.Errorf("event %d: times %v %v, want %v %v", i, got.Time, got.Received, want.Time, want.Received)
		}
		_, wantOff := want.Time.Zone()
		if _, off := got.Time.Zone(); off != wantOff {
			t.Errorf("event %d: zone offset %d, want %d", i, off, wantOff)
		}
		if got.Time.Nanosecond() != want.Time.Nanosecond() {
			t.Errorf("event %d: nanoseconds %d, want %d", i, got.Time.Nanosecond(), want.Time.Nanosecond())
		}
		got.Time, got.Received, want.Time, want.Received = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("event %d:\n got %#v\nwant %#v", i, got, want)
		}
	}
}

func TestCodecOtherValues(t *testing.T) {
	// Values outside the documented types decode as JSON would give them.
	in := []vigil.Event{{ID: "x", Fields: map[string]any{
		"int": 42, "int64": int64(-7), "uint16": uint16(9), "float32": float32(0.5),
		"any":    []any{"a", 1.5},
		"object": map[string]any{"k": "v"},
	}}}
	out, err := newDecoder().decode(nil, encode(t, in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"int": 42.0, "int64": -7.0, "uint16": 9.0, "float32": 0.5,
		"any":    []any{"a", 1.5},
		"object": map[string]any{"k": "v"},
	}
	if !reflect.DeepEqual(out[0].Fields, want) {
		t.Fatalf("fields %#v, want %#v", out[0].Fields, want)
	}
	// A value that JSON cannot encode is an error naming the field.
	_, err = appendEvent(nil, &vigil.Event{Fields: map[string]any{"ch": make(chan int)}})
	if err == nil {
		t.Fatal("encoding a channel value: no error")
	}
}

func TestCodecCorrupt(t *testing.T) {
	good := encode(t, codecEvents())
	f := func(name string, data []byte) {
		t.Helper()
		if _, err := newDecoder().decode(nil, data); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	f("empty", nil)
	f("bad magic", append([]byte{'X'}, good[1:]...))
	f("bad version", append([]byte{codecMagic, 9}, good[2:]...))
	f("trailing byte", append(append([]byte(nil), good...), 0))
	for i := headerLen; i < len(good); i++ {
		f(fmt.Sprintf("truncated at %d", i), good[:i])
	}
	huge := appendHeader(nil)
	putCount(huge, 1<<30)
	f("count larger than data", huge)
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(f, codecEvents()))
	f.Add(encode(f, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := newDecoder()
		events, err := d.decode(nil, data)
		if err != nil {
			return
		}
		// What decodes must encode and decode to the same events.
		again, err := d.decode(nil, encode(t, events))
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if len(again) != len(events) {
			t.Fatalf("re-decoded %d events, want %d", len(again), len(events))
		}
	})
}

// benchEvents returns n events of about 480 bytes in JSON, over 50 devices.
func benchEvents(n int) []vigil.Event {
	base := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	events := make([]vigil.Event, n)
	for i := range events {
		events[i] = vigil.Event{
			ID:       fmt.Sprintf("01JBENCH%018d", i),
			Time:     base.Add(time.Duration(i) * time.Millisecond),
			Received: base.Add(time.Duration(i)*time.Millisecond + 3*time.Millisecond),
			DeviceID: fmt.Sprintf("device-%04d", i%50),
			Source:   "agent",
			Kind:     vigil.KindAuth,
			Category: "authentication",
			Action:   "login",
			Outcome:  vigil.OutcomeFailure,
			Severity: vigil.SeverityMedium,
			Network: &vigil.Network{
				Transport: "tcp",
				SrcIP:     netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}),
				SrcPort:   uint16(40000 + i%20000),
				DstIP:     netip.MustParseAddr("192.168.1.10"),
				DstPort:   22,
			},
			Fields: map[string]any{
				"user.name":            "admin",
				"process.name":         "sshd",
				"process.command_line": "/usr/sbin/sshd -D -o PermitRootLogin=no",
				"auth.method":          "password",
				"host.cpu.pct":         float64(i % 100),
			},
		}
	}
	return events
}

func TestBenchEventSize(t *testing.T) {
	events := benchEvents(100)
	j, err := json.Marshal(events)
	if err != nil {
		t.Fatal(err)
	}
	bin := encode(t, events)
	t.Logf("per event: JSON %d bytes, binary %d bytes", len(j)/len(events), len(bin)/len(events))
}

// BenchmarkCodec compares the binary codec with encoding/json on batches
// of 1000 events; ns/op is per batch.
func BenchmarkCodec(b *testing.B) {
	events := benchEvents(1000)
	b.Run("binary/encode", func(b *testing.B) {
		buf := appendHeader(nil)
		b.ReportAllocs()
		for b.Loop() {
			buf = appendHeader(buf[:0])
			for i := range events {
				buf, _ = appendEvent(buf, &events[i])
			}
			putCount(buf, len(events))
		}
		b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("binary/decode", func(b *testing.B) {
		data := encode(b, events)
		d := newDecoder()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.decode(nil, data); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("json/encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(events); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("json/decode", func(b *testing.B) {
		data, _ := json.Marshal(events)
		b.ReportAllocs()
		for b.Loop() {
			var out []vigil.Event
			if err := json.Unmarshal(data, &out); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
	})
}
