package coap

import (
	"bytes"
	"net/netip"
	"strings"
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
		// What the probe recognises decodes without an anomaly.
		if Probe(b) && (len(s) != 1 || s[0].Action != "request") {
			t.Fatalf("probed datagram decodes as %v", s)
		}
	})
}

func TestProbe(t *testing.T) {
	f := func(name string, want bool, b []byte) {
		t.Helper()
		if got := Probe(b); got != want {
			t.Errorf("%s: Probe = %v", name, got)
		}
	}
	f("get with options", true, []byte{0x42, 0x01, 0x12, 0x34, 0xca, 0xfe, 0x60, 0x57, 's', 'e', 'n', 's', 'o', 'r', 's', 0x04, 't', 'e', 'm', 'p'})
	f("non put with payload", true, []byte{0x50, 0x03, 0, 1, 0xb1, 'x', 0xff, '1'})
	f("get with token only", true, []byte{0x41, 0x01, 0, 1, 7})
	f("bare header", false, []byte{0x40, 0x01, 0, 1})
	f("content format twice", false, []byte{0x40, 0x02, 0, 1, 0xc0, 0x00})
	f("uri path twice", true, []byte{0x40, 0x02, 0, 1, 0xb1, 'a', 0x01, 'b'})
	f("response", false, []byte{0x60, 0x45, 0, 1, 0xc0, 0xff, '2'})
	f("ack", false, []byte{0x60, 0x01, 0, 1, 0xb1, 'x'})
	f("version 2", false, []byte{0x82, 0x01, 0, 1, 1, 2, 0xb1, 'x'})
	f("unknown option 13", false, []byte{0x40, 0x01, 0, 1, 0xd0, 0x00})
	f("content format too long", false, []byte{0x40, 0x01, 0, 1, 0xc3, 1, 2, 3})
	f("marker without payload", false, []byte{0x40, 0x01, 0, 1, 0xb1, 'x', 0xff})
	f("option past the end", false, []byte{0x40, 0x01, 0, 1, 0xb5, 'x'})
	f("dns query", false, []byte{0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 6, 'b', 'r', 'o', 'k', 'e', 'r', 0, 0, 1, 0, 1})
	f("rtps", false, []byte("RTPS\x02\x03\x01\x0f0123456789ab"))
	f("dtls hello", false, []byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 1})
}

// tcpMsg frames a CoAP over TCP message: options and payload in rest.
func tcpMsg(code byte, token []byte, rest []byte) []byte {
	l := len(rest)
	var h []byte
	switch {
	case l < 13:
		h = []byte{byte(l<<4) | byte(len(token))}
	case l < 269:
		h = []byte{13<<4 | byte(len(token)), byte(l - 13)}
	case l < 65805:
		h = []byte{14<<4 | byte(len(token)), byte((l - 269) >> 8), byte(l - 269)}
	default:
		h = []byte{15<<4 | byte(len(token)), byte((l - 65805) >> 24), byte((l - 65805) >> 16), byte((l - 65805) >> 8), byte(l - 65805)}
	}
	return append(append(append(h, code), token...), rest...)
}

func tcpCtx(dir proto.Direction, midstream bool) *proto.Context {
	c := ctx()
	c.Flow.Transport = "tcp"
	c.Dir = dir
	c.Midstream = midstream
	return c
}

// tcpSession is a CoAP over TCP exchange: both CSMs, a GET with token,
// its 2.05 response with a 300-byte payload, a Ping with Custody and its
// Pong, and a Release.
func tcpSession() (c2s, s2c []byte) {
	csmC := tcpMsg(0xe1, nil, []byte{0x22, 0x04, 0x80, 0x20})                                            // Max-Message-Size 1152, Block-Wise-Transfer
	get := tcpMsg(0x01, []byte{0xca, 0xfe}, []byte{0xb4, 't', 'e', 'm', 'p', 0x43, 'u', '=', 'c', 0x20}) // Accept 0 (empty value)
	ping := tcpMsg(0xe2, []byte{1}, []byte{0x20})
	rel := tcpMsg(0xe4, nil, []byte{0x41, 0x02}) // Hold-Off 2 s
	csmS := tcpMsg(0xe1, nil, []byte{0x22, 0x08, 0x00})
	resp := tcpMsg(0x45, []byte{0xca, 0xfe}, append([]byte{0xc0, 0xff}, bytes.Repeat([]byte{'v'}, 300)...))
	pong := tcpMsg(0xe3, []byte{1}, []byte{0x20})
	return append(append(append(csmC, get...), ping...), rel...), append(append(csmS, resp...), pong...)
}

// parseStream feeds a direction's bytes to s in pieces of n bytes, as the
// sensor does: what Parse leaves is presented again with the next bytes.
func parseStream(s *Stream, c *proto.Context, data []byte, n int, out proto.Emitter) {
	var buf []byte
	for len(data) > 0 {
		k := min(n, len(data))
		buf = append(buf, data[:k]...)
		data = data[k:]
		used := s.Parse(c, buf, out)
		buf = buf[used:]
	}
}

func TestTCP(t *testing.T) {
	c2s, s2c := tcpSession()
	for _, piece := range []int{1, 3, 7, 1 << 20} {
		var got sink
		s := &Stream{PayloadPreview: 8}
		parseStream(s, tcpCtx(proto.ToServer, false), c2s, piece, &got)
		parseStream(s, tcpCtx(proto.ToClient, false), s2c, piece, &got)
		var acts []string
		for _, e := range got {
			a := e.Action
			if sig, ok := e.Fields["coap.signal"].(string); ok {
				a += ":" + sig
			}
			acts = append(acts, a)
		}
		want := "signaling:csm request signaling:ping signaling:release signaling:csm response signaling:pong"
		if strings.Join(acts, " ") != want {
			t.Fatalf("pieces of %d: %v", piece, acts)
		}
		csm, get, rel, resp := got[0].Fields, got[1].Fields, got[3].Fields, got[5].Fields
		if csm["coap.max_message_size"] != 1152.0 || csm["coap.block_wise_transfer"] != true || csm["coap.code"] != "7.01" {
			t.Errorf("csm %v", csm)
		}
		if get["coap.method"] != "GET" || get["coap.uri_path"] != "/temp" || get["coap.uri_query"] != "u=c" ||
			get["coap.token"] != "cafe" || get["coap.accept"] != 0.0 || get["coap.type"] != nil || get["coap.message_id"] != nil {
			t.Errorf("get %v", get)
		}
		if got[2].Fields["coap.custody"] != true || rel["coap.hold_off"] != 2.0 {
			t.Errorf("ping %v release %v", got[2].Fields, rel)
		}
		if resp["coap.status"] != "content" || resp["coap.payload_size"] != 300.0 || resp["coap.payload"] != "vvvvvvvv" || got[5].Outcome != vigil.OutcomeSuccess {
			t.Errorf("response %v", resp)
		}
	}
}

func TestTCPAnomalies(t *testing.T) {
	get := tcpMsg(0x01, nil, []byte{0xb1, 'x'})
	var s sink
	(&Stream{}).Parse(tcpCtx(proto.ToServer, false), get, &s)
	if len(s) != 2 || s[0].Fields["anomaly.event"] != AnomalyMissingCSM || s[1].Action != "request" {
		t.Fatalf("missing csm: %v", s)
	}
	s = nil
	(&Stream{}).Parse(tcpCtx(proto.ToServer, true), get, &s)
	if len(s) != 1 {
		t.Fatalf("midstream: %v", s)
	}
	s = nil
	st := &Stream{}
	if n := st.Parse(tcpCtx(proto.ToServer, false), []byte{0x09, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9}, &s); n != 11 || len(s) != 1 || s[0].Fields["anomaly.event"] != AnomalyInvalidToken {
		t.Fatalf("token: %d %v", n, s)
	}
	if n := st.Parse(tcpCtx(proto.ToServer, true), get, &s); n != len(get) || len(s) != 1 {
		t.Fatalf("after giving up: %d %v", n, s)
	}
	s = nil
	st = &Stream{}
	if n := st.Parse(tcpCtx(proto.ToServer, false), []byte{0xf0, 0x7f, 0xff, 0xff, 0xff}, &s); n != 5 || len(s) != 1 || s[0].Fields["anomaly.event"] != AnomalyMalformed {
		t.Fatalf("huge: %d %v", n, s)
	}
	// Mid-stream, bytes that do not decode as a message are the end of
	// one: the connection is given up quietly.
	for _, b := range [][]byte{{0x09, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9}, tcpMsg(0x01, nil, []byte{0xf1, 'x'})} {
		s = nil
		st = &Stream{}
		if n := st.Parse(tcpCtx(proto.ToServer, true), append(b, get...), &s); n != len(b)+len(get) || len(s) != 0 || !st.broken {
			t.Fatalf("mid-stream garbage %x: %d %v", b, n, s)
		}
	}
	s = nil
	st = &Stream{}
	st.Gap(tcpCtx(proto.ToServer, true), 10, &s)
	if len(s) != 1 || s[0].Fields["anomaly.event"] != AnomalyTruncated {
		t.Fatalf("gap: %v", s)
	}
	// A bad option ends the message, not the connection.
	s = nil
	bad := append(tcpMsg(0xe1, nil, nil), append(tcpMsg(0x01, nil, []byte{0xf1, 'x'}), get...)...)
	(&Stream{}).Parse(tcpCtx(proto.ToServer, false), bad, &s)
	if len(s) != 3 || s[1].Fields["anomaly.event"] != AnomalyMalformed || s[2].Action != "request" {
		t.Fatalf("bad option: %v", s)
	}
}

func TestProbeTCP(t *testing.T) {
	c2s, _ := tcpSession()
	for _, n := range []int{2, 5, len(c2s)} {
		if !ProbeTCP(c2s[:n]) {
			t.Errorf("CSM cut at %d not recognised", n)
		}
	}
	for name, b := range map[string][]byte{
		"get first":    tcpMsg(0x01, nil, []byte{0xb1, 'x'}),
		"mqtt connect": {0x10, 0x0c, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 0},
		"http":         []byte("GET / HTTP/1.1\r\n"),
		"bad options":  tcpMsg(0xe1, nil, []byte{0x25, 1}),
		"token 9":      {0x09, 0xe1},
	} {
		if ProbeTCP(b) {
			t.Errorf("%s recognised as CoAP over TCP", name)
		}
	}
}

func FuzzStream(f *testing.F) {
	c2s, s2c := tcpSession()
	f.Add(c2s, s2c, uint8(3))
	f.Add([]byte{0xd0, 0x05}, []byte{0xe9, 0x01}, uint8(1))
	f.Fuzz(func(t *testing.T, a, b []byte, piece uint8) {
		var s sink
		st := &Stream{PayloadPreview: 4}
		ProbeTCP(a)
		parseStream(st, tcpCtx(proto.ToServer, piece&1 == 0), a, int(piece)+1, &s)
		parseStream(st, tcpCtx(proto.ToClient, piece&1 == 0), b, int(piece)+1, &s)
		if used := st.Parse(tcpCtx(proto.ToServer, false), a, &s); used < 0 || used > len(a) {
			t.Fatalf("consumed %d of %d", used, len(a))
		}
	})
}
