package http

import (
	"net/netip"
	"strings"
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
			DstIP: netip.MustParseAddr("10.0.0.1"), DstPort: 80}}
}

func feed(t *testing.T, p *Parser, d proto.Direction, data string, s *sink) {
	t.Helper()
	buf := []byte{}
	for i := 0; i < len(data); i += 7 { // in pieces
		buf = append(buf, data[i:min(i+7, len(data))]...)
		n := p.Parse(ctx(d), buf, s)
		buf = buf[n:]
	}
	if len(buf) != 0 {
		t.Fatalf("%d bytes left: %q", len(buf), buf)
	}
}

func TestPipelinedRequestsAndBodies(t *testing.T) {
	p := New()
	var s sink
	feed(t, p, proto.ToServer, "POST /api/v1/telemetry?dev=7 HTTP/1.1\r\nHost: gw.local\r\nUser-Agent: iot-agent/2.1\r\n"+
		"Authorization: Basic c2VjcmV0\r\nContent-Length: 11\r\n\r\n{\"t\":21.5}\n"+
		"GET /fw.bin HTTP/1.1\r\nHost: gw.local\r\n\r\n", &s)
	feed(t, p, proto.ToClient, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"+
		"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop", &s)
	var got []string
	for _, e := range s {
		got = append(got, e.Action+":"+vigil.ValueString(e.Fields["http.method"])+vigil.ValueString(e.Fields["http.status_code"])+vigil.ValueString(e.Fields["anomaly.event"]))
	}
	if strings.Join(got, " ") != "request:POST request:GET response:200 response:404" {
		t.Fatalf("got %v", got)
	}
	f := s[0].Fields
	if f["http.host"] != "gw.local" || f["http.path"] != "/api/v1/telemetry" || f["http.query"] != "dev=7" ||
		f["http.user_agent"] != "iot-agent/2.1" || f["http.authorization_scheme"] != "Basic" || f["http.content_length"] != 11.0 {
		t.Fatalf("request %v", f)
	}
	for _, e := range s {
		for _, v := range e.Fields {
			if strings.Contains(vigil.ValueString(v), "c2VjcmV0") {
				t.Fatal("credential kept")
			}
		}
	}
}

func TestAnomalies(t *testing.T) {
	f := func(name, want string, d proto.Direction, data string) {
		t.Helper()
		var s sink
		New().Parse(ctx(d), []byte(data), &s)
		for _, e := range s {
			if e.Fields["anomaly.event"] == want {
				return
			}
		}
		t.Errorf("%s: no %s in %v", name, want, s)
	}
	f("garbage", AnomalyMalformed, proto.ToServer, "\x16\x03\x01 hello\r\n\r\n")
	f("no host", AnomalyMissingHost, proto.ToServer, "GET / HTTP/1.1\r\n\r\n")
	f("bad length", AnomalyInvalidLength, proto.ToServer, "GET / HTTP/1.0\r\nContent-Length: x\r\n\r\n")
	f("bad status", AnomalyMalformed, proto.ToClient, "HTTP/1.1 abc OK\r\n\r\n")
	f("bad chunk", AnomalyInvalidChunk, proto.ToClient, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
	f("long head", AnomalyHeaderTooLong, proto.ToServer, "GET / HTTP/1.1\r\nX: "+strings.Repeat("a", maxHead+10))
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"))
	f.Add([]byte("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), []byte("HTTP/1.0 500 E\r\n\r\n"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		p := New()
		var s sink
		for i, x := range [][]byte{a, b} {
			if n := p.Parse(ctx(proto.Direction(i)), x, &s); n < 0 || n > len(x) {
				t.Fatal(n)
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
