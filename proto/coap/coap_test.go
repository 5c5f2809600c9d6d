package coap

import (
	"net/netip"
	"testing"
	"time"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

type sink []vigil.Event

func (s *sink) Emit(ev vigil.Event) { *s = append(*s, ev) }

func ctx() *proto.Context {
	return &proto.Context{Time: time.Unix(1700000000, 0),
		Flow: vigil.Network{Transport: "udp", SrcIP: netip.MustParseAddr("10.0.0.2"), SrcPort: 40000,
			DstIP: netip.MustParseAddr("10.0.0.1"), DstPort: 5683}}
}

func parse(b []byte) sink {
	var s sink
	(&Parser{PayloadPreview: 16}).ParseDatagram(ctx(), b, &s)
	return s
}

func TestRequest(t *testing.T) {
	// CON GET, mid 0x1234, token 0xcafe, Observe 0, Uri-Path "sensors"
	// "temp", Uri-Query "unit=c", Accept 50, Block2 num 2 more size 64.
	b := []byte{0x42, 0x01, 0x12, 0x34, 0xca, 0xfe,
		0x60,                                    // observe (6), len 0
		0x57, 's', 'e', 'n', 's', 'o', 'r', 's', // uri-path (11)
		0x04, 't', 'e', 'm', 'p', // uri-path
		0x46, 'u', 'n', 'i', 't', '=', 'c', // uri-query (15)
		0x21, 50, // accept (17)
		0x61, 0x2a, // block2 (23): num 2, more, szx 2
	}
	s := parse(b)
	if len(s) != 1 {
		t.Fatalf("events %+v", s)
	}
	f := s[0].Fields
	want := map[string]any{"coap.type": "confirmable", "coap.code": "0.01", "coap.method": "GET",
		"coap.message_id": 4660.0, "coap.token": "cafe", "coap.observe": 0.0, "coap.uri_path": "/sensors/temp",
		"coap.uri_query": "unit=c", "coap.accept": 50.0, "coap.block2.num": 2.0, "coap.block2.more": true,
		"coap.block2.size": 64.0, "coap.payload_size": 0.0}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s = %#v, want %#v", k, f[k], v)
		}
	}
	if s[0].Action != "request" {
		t.Errorf("action %s", s[0].Action)
	}
}

func TestResponse(t *testing.T) {
	// ACK 2.05 Content, content-format 0 (empty value), payload "22.1".
	s := parse([]byte{0x60, 0x45, 0, 1, 0xc0, 0xff, '2', '2', '.', '1'})
	f := s[0].Fields
	if s[0].Action != "response" || f["coap.code"] != "2.05" || f["coap.status"] != "content" ||
		f["coap.content_format"] != 0.0 || f["coap.payload"] != "22.1" || f["coap.payload_size"] != 4.0 {
		t.Fatalf("%v %v", s[0].Action, f)
	}
}

func TestAnomalies(t *testing.T) {
	f := func(name, want string, b []byte) {
		t.Helper()
		for _, e := range parse(b) {
			if e.Fields["anomaly.event"] == want {
				return
			}
		}
		t.Errorf("%s: no %s", name, want)
	}
	f("short", AnomalyMalformed, []byte{0x40, 1})
	f("version", AnomalyBadVersion, []byte{0x80, 1, 0, 0})
	f("tkl", AnomalyInvalidToken, []byte{0x49, 1, 0, 0})
	f("option truncated", AnomalyMalformed, []byte{0x40, 1, 0, 0, 0xb5, 'a'})
	f("delta 15", AnomalyMalformed, []byte{0x40, 1, 0, 0, 0xf1, 'a'})
	f("marker", AnomalyPayloadMarker, []byte{0x40, 1, 0, 0, 0xff})
	f("class 1", AnomalyInvalidCode, []byte{0x40, 0x21, 0, 0})
	f("critical", AnomalyUnknownOption, []byte{0x40, 1, 0, 0, 0xd0, 0x00}) // option 13
	f("empty with token", AnomalyEmptyWithData, []byte{0x41, 0, 0, 0, 1})
	f("repeated", AnomalyRepeatedOption, []byte{0x40, 1, 0, 0, 0xc1, 0, 0x01, 0})
}

func FuzzParseDatagram(f *testing.F) {
	f.Add([]byte{0x42, 0x01, 0x12, 0x34, 0xca, 0xfe, 0x60, 0x57, 's', 'e', 'n', 's', 'o', 'r', 's'})
	f.Add([]byte{0x60, 0x45, 0, 1, 0xc0, 0xff, '2', '2'})
	f.Add([]byte{0x40, 1, 0, 0, 0xe1, 0, 0, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := parse(b)
		if len(s) == 0 {
			t.Fatal("no event")
		}
	})
}
