package dns

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

type sink []vigil.Event

func (s *sink) Emit(ev proto.Event) { *s = append(*s, ev.Vigil()) }

func ctx() *proto.Context {
	return &proto.Context{Time: time.Unix(1700000000, 0),
		Flow: vigil.Network{Transport: "udp", SrcIP: netip.MustParseAddr("10.0.0.2"), SrcPort: 40000,
			DstIP: netip.MustParseAddr("10.0.0.1"), DstPort: 53}}
}

// response for broker.example.com A with a CNAME and an A answer, using
// compression pointers.
var response = []byte{
	0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0,
	6, 'b', 'r', 'o', 'k', 'e', 'r', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1,
	0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 5, 2, 'm', 'q', 0xc0, 19,
	0xc0, 48, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7,
}

func TestResponse(t *testing.T) {
	var s sink
	Datagram{}.ParseDatagram(ctx(), response, &s)
	if len(s) != 1 {
		t.Fatalf("events %+v", s)
	}
	f := s[0].Fields
	if s[0].Action != "response" || f["dns.id"] != float64(0xabcd) || f["dns.question.name"] != "broker.example.com" ||
		f["dns.question.type"] != "A" || f["dns.response_code"] != "NOERROR" ||
		!reflect.DeepEqual(f["dns.answers.data"], []string{"mq.example.com", "192.0.2.7"}) ||
		!reflect.DeepEqual(f["dns.answers.type"], []string{"CNAME", "A"}) ||
		!reflect.DeepEqual(f["dns.header_flags"], []string{"RD", "RA"}) {
		t.Fatalf("fields %v", f)
	}
}

func TestStream(t *testing.T) {
	var s sink
	st := &Stream{}
	b := append([]byte{0, byte(len(response))}, response...)
	b = append(b, b...)
	if n := st.Parse(ctx(), b[:10], &s); n != 0 {
		t.Fatal(n)
	}
	if n := st.Parse(ctx(), b, &s); n != len(b) || len(s) != 2 {
		t.Fatalf("consumed %d, %d events: %v", n, len(s), s)
	}
}

func TestAnomalies(t *testing.T) {
	f := func(name, want string, b []byte) {
		t.Helper()
		var s sink
		Datagram{}.ParseDatagram(ctx(), b, &s)
		for _, e := range s {
			if e.Fields["anomaly.event"] == want {
				return
			}
		}
		t.Errorf("%s: no %s in %v", name, want, s)
	}
	f("short", AnomalyMalformed, []byte{1, 2, 3})
	f("loop", AnomalyPointerLoop, []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})
	f("truncated answer", AnomalyMalformed, response[:len(response)-2])
	f("z", AnomalyZFlag, []byte{0, 1, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0})
}

func FuzzMessage(f *testing.F) {
	f.Add(response)
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s sink
		Datagram{}.ParseDatagram(ctx(), b, &s)
		if len(s) == 0 {
			t.Fatal("no event")
		}
		st := &Stream{}
		if n := st.Parse(ctx(), b, &s); n < 0 || n > len(b) {
			t.Fatal(n)
		}
	})
}
