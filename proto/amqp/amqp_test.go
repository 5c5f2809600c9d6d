package amqp

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

type sink []vigil.Event

func (s *sink) Emit(ev proto.Event) { *s = append(*s, ev.Vigil()) }

func frame(typ byte, ch uint16, payload []byte) []byte {
	b := []byte{typ}
	b = binary.BigEndian.AppendUint16(b, ch)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	return append(append(b, payload...), 0xce)
}

func method(class, m uint16, args ...[]byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, class)
	b = binary.BigEndian.AppendUint16(b, m)
	for _, a := range args {
		b = append(b, a...)
	}
	return b
}

func short(s string) []byte { return append([]byte{byte(len(s))}, s...) }
func long(b []byte) []byte  { return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...) }

func ctx(d proto.Direction) *proto.Context { return &proto.Context{Time: time.Unix(1, 0), Dir: d} }

func TestSession(t *testing.T) {
	props := long(append(append(short("product"), 'S'), long([]byte("iot-gw"))...))
	c2s := []byte("AMQP\x00\x00\x09\x01")
	c2s = append(c2s, frame(1, 0, method(10, 11, props, short("PLAIN"), long([]byte("\x00meter\x00hunter2")), short("en_US")))...)
	c2s = append(c2s, frame(1, 0, method(10, 40, short("/plant"), short(""), []byte{0}))...)
	c2s = append(c2s, frame(1, 1, method(60, 40, []byte{0, 0}, short("telemetry"), short("meters.42"), []byte{0}))...)
	hdr := binary.BigEndian.AppendUint64([]byte{0, 60, 0, 0}, 5)
	c2s = append(c2s, frame(2, 1, append(hdr, 0, 0))...)
	c2s = append(c2s, frame(3, 1, []byte("hello"))...)
	p := New()
	var s sink
	if n := p.Parse(ctx(proto.ToServer), c2s[:20], &s); n != 8 {
		t.Fatalf("consumed %d", n)
	}
	if n := p.Parse(ctx(proto.ToServer), c2s[8:], &s); n != len(c2s)-8 {
		t.Fatalf("consumed %d", n)
	}
	p.Parse(ctx(proto.ToClient), frame(1, 0, method(10, 50, []byte{1, 147}, short("ACCESS_REFUSED"), []byte{0, 0, 0, 0})), &s)
	var acts []string
	for _, e := range s {
		acts = append(acts, e.Action)
	}
	if strings.Join(acts, ",") != "protocol_header,connection.start_ok,connection.open,basic.publish,connection.close" {
		t.Fatalf("%v", acts)
	}
	if s[1].Fields["amqp.user"] != "meter" || s[1].Fields["amqp.client.product"] != "iot-gw" || s[2].Fields["amqp.vhost"] != "/plant" ||
		s[3].Fields["amqp.routing_key"] != "meters.42" || s[3].Fields["amqp.body_size"] != 5.0 ||
		s[4].Fields["amqp.auth_failure"] != true || s[4].Outcome != vigil.OutcomeFailure {
		t.Fatalf("%+v", s)
	}
	for _, e := range s {
		for _, v := range e.Fields {
			if strings.Contains(vigil.ValueString(v), "hunter2") {
				t.Fatal("password kept")
			}
		}
	}
}

func TestAnomalies(t *testing.T) {
	var s sink
	New().Parse(ctx(proto.ToServer), []byte{1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 40, 0}, &s)
	if len(s) != 1 || s[0].Fields["anomaly.event"] != AnomalyFrameEnd {
		t.Fatalf("%v", s)
	}
	s = nil
	New().Parse(ctx(proto.ToServer), []byte{9, 0, 0, 0, 0, 0, 0, 0xce}, &s)
	if len(s) != 1 || s[0].Fields["anomaly.event"] != AnomalyMalformed {
		t.Fatalf("%v", s)
	}
	s = nil
	New().Parse(ctx(proto.ToServer), []byte("AMQP\x00\x01\x00\x00"), &s)
	if len(s) != 1 || s[0].Fields["amqp.version"] != "1.0" {
		t.Fatalf("%v", s)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("AMQP\x00\x00\x09\x01"), frame(1, 0, method(10, 50, []byte{1, 147}, short("X"), []byte{0, 0, 0, 0})))
	f.Add([]byte("AMQP\x03\x01\x00\x00"), frame10(1, 0x44, []byte{0x50, 1}))
	f.Add(frame(1, 1, method(60, 40, []byte{0, 0}, short("e"), short("k"), []byte{0})), frame(2, 1, make([]byte, 14)))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		p := New()
		var s sink
		for i, x := range [][]byte{a, b} {
			if n := p.Parse(ctx(proto.Direction(i)), x, &s); n < 0 || n > len(x) {
				t.Fatal(n)
			}
		}
	})
}

// frame10 builds an AMQP 1.0 frame (type 1 for SASL) around a described
// performative with a list8 of the given encoded fields.
func frame10(typ byte, code byte, fields ...[]byte) []byte {
	var body []byte
	for _, f := range fields {
		body = append(body, f...)
	}
	perf := append([]byte{0x00, 0x53, code, 0xc0, byte(len(body) + 1), byte(len(fields))}, body...)
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(perf)))
	return append(append(b, 2, typ, 0, 0), perf...)
}

func sym(s string) []byte  { return append([]byte{0xa3, byte(len(s))}, s...) }
func str8(s string) []byte { return append([]byte{0xa1, byte(len(s))}, s...) }

func TestAMQP10(t *testing.T) {
	c2s := []byte("AMQP\x03\x01\x00\x00")
	c2s = append(c2s, frame10(1, 0x41, sym("PLAIN"), append([]byte{0xa0, 15}, "\x00sensor\x00secret"...), str8("broker"))...)
	c2s = append(c2s, "AMQP\x00\x01\x00\x00"...)
	c2s = append(c2s, frame10(0, 0x10, str8("dev-17"), str8("plant.example"))...)
	target := []byte{0x00, 0x53, 0x29, 0xc0, 11, 1, 0xa1, 8, 'm', 'e', 't', 'e', 'r', 's', '/', '1'}
	c2s = append(c2s, frame10(0, 0x12, str8("link-1"), []byte{0x43}, []byte{0x42}, []byte{0x40}, []byte{0x40}, []byte{0x40}, target)...)
	transfer := frame10(0, 0x14, []byte{0x43}, []byte{0x43}, []byte{0xa0, 1, 7})
	transfer = append(transfer, 0x00, 0x53, 0x75, 0xa0, 4, '2', '1', '.', '5') // data section
	binary.BigEndian.PutUint32(transfer, uint32(len(transfer)))
	c2s = append(c2s, transfer...)
	p := New()
	var s sink
	if n := p.Parse(ctx(proto.ToServer), c2s, &s); n != len(c2s) {
		t.Fatalf("consumed %d of %d", n, len(c2s))
	}
	p.Parse(ctx(proto.ToClient), append([]byte("AMQP\x03\x01\x00\x00"), frame10(1, 0x44, []byte{0x50, 1})...), &s)
	var acts []string
	for _, e := range s {
		acts = append(acts, e.Action)
	}
	if strings.Join(acts, ",") != "protocol_header,sasl.init,open,attach,transfer,sasl.outcome" {
		t.Fatalf("%v %+v", acts, s)
	}
	if s[1].Fields["amqp.user"] != "sensor" || s[2].Fields["amqp.vhost"] != "plant.example" ||
		s[3].Fields["amqp.address"] != "meters/1" || s[3].Fields["amqp.role"] != "sender" ||
		s[4].Fields["amqp.address"] != "meters/1" || s[4].Fields["amqp.body_size"] != 9.0 ||
		s[5].Fields["amqp.auth_failure"] != true {
		t.Fatalf("%+v", s)
	}
	for _, e := range s {
		for _, v := range e.Fields {
			if strings.Contains(vigil.ValueString(v), "secret") {
				t.Fatal("password kept")
			}
		}
	}
}
