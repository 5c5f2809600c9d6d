package modbus

import (
	"net/netip"
	"testing"
	"time"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

type sink []vigil.Event

func (s *sink) Emit(ev proto.Event) { *s = append(*s, ev.Vigil()) }

func ctx(d proto.Direction) *proto.Context {
	return &proto.Context{Time: time.Unix(1700000000, 0), Dir: d,
		Flow: vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.0.2"), SrcPort: 40000,
			DstIP: netip.MustParseAddr("10.0.0.1"), DstPort: 502}}
}

func adu(tid uint16, unit byte, pdu ...byte) []byte {
	l := len(pdu) + 1
	return append([]byte{byte(tid >> 8), byte(tid), 0, 0, byte(l >> 8), byte(l), unit}, pdu...)
}

func TestRequestResponseAndException(t *testing.T) {
	p := New()
	var s sink
	// write multiple registers at 0x10, 2 registers; then a read answered
	// by an exception.
	req := append(adu(1, 7, 16, 0, 0x10, 0, 2, 4, 0, 1, 0, 2), adu(2, 7, 3, 0, 0, 0, 200)...)
	if n := p.Parse(ctx(proto.ToServer), req[:5], &s); n != 0 {
		t.Fatalf("consumed %d of a partial header", n)
	}
	if n := p.Parse(ctx(proto.ToServer), req, &s); n != len(req) {
		t.Fatalf("consumed %d", n)
	}
	resp := append(adu(1, 7, 16, 0, 0x10, 0, 2), adu(2, 7, 0x83, 2)...)
	p.Parse(ctx(proto.ToClient), resp, &s)
	var got []string
	for _, e := range s {
		got = append(got, e.Action+":"+vigil.ValueString(e.Fields["modbus.function_code"])+":"+vigil.ValueString(e.Fields["anomaly.event"]))
	}
	want := "request:16: anomaly::invalid_value request:3: response:16: response:3:"
	if g := join(got); g != want {
		t.Fatalf("got %q, want %q", g, want)
	}
	if s[0].Fields["modbus.write"] != true || s[0].Fields["modbus.address"] != 16.0 || s[0].Fields["modbus.quantity"] != 2.0 {
		t.Fatalf("write request %v", s[0].Fields)
	}
	ex := s[4]
	if ex.Fields["modbus.exception"] != true || ex.Fields["modbus.exception_name"] != "illegal_data_address" || ex.Outcome != vigil.OutcomeFailure {
		t.Fatalf("exception %v", ex.Fields)
	}
}

func join(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out
}

func TestAnomalies(t *testing.T) {
	f := func(name, want string, d proto.Direction, data []byte) {
		t.Helper()
		var s sink
		New().Parse(ctx(d), data, &s)
		for _, e := range s {
			if e.Fields["anomaly.event"] == want {
				return
			}
		}
		t.Errorf("%s: no %s in %v", name, want, s)
	}
	f("protocol id", AnomalyInvalidProtocolID, proto.ToServer, []byte{0, 1, 0, 1, 0, 2, 1, 1})
	f("length", AnomalyInvalidLength, proto.ToServer, []byte{0, 1, 0, 0, 1, 2, 1, 1})
	f("unsolicited", AnomalyUnsolicitedResponse, proto.ToClient, adu(9, 1, 3, 2, 0, 0))
	f("function 0", AnomalyInvalidFunctionCode, proto.ToServer, adu(9, 1, 0))
	f("short", AnomalyInvalidLength, proto.ToServer, adu(9, 1, 3, 0))
	f("coil value", AnomalyInvalidValue, proto.ToServer, adu(9, 1, 5, 0, 1, 0x12, 0x34))
}

func FuzzParse(f *testing.F) {
	f.Add(adu(1, 7, 16, 0, 0x10, 0, 2, 4, 0, 1, 0, 2), adu(1, 7, 16, 0, 0x10, 0, 2))
	f.Add(adu(2, 7, 3, 0, 0, 0, 200), adu(2, 7, 0x83, 2))
	f.Add(adu(3, 1, 43, 14, 1, 0), adu(3, 1, 8, 0, 0, 0xa5, 0x37))
	f.Fuzz(func(t *testing.T, req, resp []byte) {
		p := New()
		var s sink
		for i, b := range [][]byte{req, resp} {
			d := proto.Direction(i)
			if n := p.Parse(ctx(d), b, &s); n < 0 || n > len(b) {
				t.Fatalf("consumed %d of %d", n, len(b))
			}
		}
		if p.broken {
			for _, e := range s {
				if e.Action == "anomaly" {
					return
				}
			}
			t.Fatal("gave up without an anomaly")
		}
	})
}
