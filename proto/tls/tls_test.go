package tls

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

// chrome143 is a Chrome 143 ClientHello as published by browserleaks.com
// (GREASE values already removed by the source), with the JA3 and JA4
// that service computed for it.
var chrome143 = ClientHello{
	Version:           771,
	Ciphers:           []uint16{4865, 4866, 4867, 49195, 49199, 49196, 49200, 52393, 52392, 49171, 49172, 156, 157, 47, 53},
	Extensions:        []uint16{45, 51, 16, 65037, 23, 17613, 0, 11, 10, 43, 65281, 35, 18, 5, 13, 27},
	Groups:            []uint16{4588, 29, 23, 24},
	PointFormats:      []uint8{0},
	SignatureAlgs:     []uint16{0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601},
	SupportedVersions: []uint16{0x0304, 0x0303},
	ALPN:              []string{"h2", "http/1.1"},
	ServerName:        "tls.browserleaks.com",
}

const (
	chromeJA3 = "98487aa16281980e7d1120d399efb6a4"
	chromeJA4 = "t13d1516h2_8daaf6152771_d8a2da3f94cd"
)

func TestFingerprintsAgainstPublishedValues(t *testing.T) {
	h := chrome143
	if _, sum := h.JA3(); sum != chromeJA3 {
		t.Errorf("JA3 %s, want %s", sum, chromeJA3)
	}
	if got := h.JA4(); got != chromeJA4 {
		t.Errorf("JA4 %s, want %s", got, chromeJA4)
	}
	// GREASE values change neither fingerprint.
	g := h
	g.Ciphers = append([]uint16{0x1a1a}, h.Ciphers...)
	g.Extensions = append([]uint16{0x2a2a}, h.Extensions...)
	g.Groups = append([]uint16{0x3a3a}, h.Groups...)
	g.SupportedVersions = append([]uint16{0x4a4a}, h.SupportedVersions...)
	if _, sum := g.JA3(); sum != chromeJA3 || g.JA4() != chromeJA4 {
		t.Errorf("GREASE changed the fingerprints: %s %s", sum, g.JA4())
	}
}

// encode serialises a ClientHello as a TLS record.
func encode(h ClientHello) []byte {
	u16 := func(b []byte, v int) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) }
	var body []byte
	body = u16(body, int(h.Version))
	body = append(body, make([]byte, 32)...)
	body = append(body, 0)
	body = u16(body, 2*len(h.Ciphers))
	for _, c := range h.Ciphers {
		body = u16(body, int(c))
	}
	body = append(body, 1, 0)
	var exts []byte
	for _, e := range h.Extensions {
		var d []byte
		switch e {
		case 0:
			n := []byte(h.ServerName)
			d = u16(nil, len(n)+3)
			d = append(d, 0)
			d = u16(d, len(n))
			d = append(d, n...)
		case 10:
			d = u16(nil, 2*len(h.Groups))
			for _, g := range h.Groups {
				d = u16(d, int(g))
			}
		case 11:
			d = append([]byte{byte(len(h.PointFormats))}, h.PointFormats...)
		case 13:
			d = u16(nil, 2*len(h.SignatureAlgs))
			for _, s := range h.SignatureAlgs {
				d = u16(d, int(s))
			}
		case 16:
			var l []byte
			for _, a := range h.ALPN {
				l = append(append(l, byte(len(a))), a...)
			}
			d = append(u16(nil, len(l)), l...)
		case 43:
			d = []byte{byte(2 * len(h.SupportedVersions))}
			for _, v := range h.SupportedVersions {
				d = u16(d, int(v))
			}
		}
		exts = u16(exts, int(e))
		exts = u16(exts, len(d))
		exts = append(exts, d...)
	}
	body = u16(body, len(exts))
	body = append(body, exts...)
	hs := append([]byte{1, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
	return append([]byte{22, 3, 1, byte(len(hs) >> 8), byte(len(hs))}, hs...)
}

type sink []vigil.Event

func (s *sink) Emit(ev proto.Event) { *s = append(*s, ev.Vigil()) }

func ctx(d proto.Direction) *proto.Context {
	return &proto.Context{Time: time.Unix(1700000000, 0), Dir: d,
		Flow: vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.0.2"), SrcPort: 40000,
			DstIP: netip.MustParseAddr("10.0.0.1"), DstPort: 8883}}
}

func TestClientHelloEvent(t *testing.T) {
	rec := encode(chrome143)
	if !Probe(rec) {
		t.Fatal("probe")
	}
	p := New()
	var s sink
	if n := p.Parse(ctx(proto.ToServer), rec[:40], &s); n != 0 || len(s) != 0 {
		t.Fatalf("partial record: %d %v", n, s)
	}
	if n := p.Parse(ctx(proto.ToServer), rec, &s); n != len(rec) || len(s) != 1 {
		t.Fatalf("consumed %d, events %v", n, s)
	}
	f := s[0].Fields
	if f["tls.client.server_name"] != "tls.browserleaks.com" || f["tls.client.ja3"] != chromeJA3 ||
		f["tls.client.ja4"] != chromeJA4 || vigil.ValueString(f["tls.client.alpn"]) != "h2,http/1.1" ||
		vigil.ValueString(f["tls.client.supported_versions"]) != "1.3,1.2" {
		t.Fatalf("fields %v", f)
	}
	// Application data afterwards is skipped.
	if n := p.Parse(ctx(proto.ToServer), []byte{23, 3, 3, 0, 1, 0}, &s); n != 6 || len(s) != 1 {
		t.Fatal("encrypted data decoded")
	}
}

func TestAnomalies(t *testing.T) {
	var s sink
	New().Parse(ctx(proto.ToServer), []byte{22, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3}, &s)
	if len(s) != 1 || s[0].Fields["anomaly.event"] != AnomalyMalformed {
		t.Fatalf("%v", s)
	}
	s = nil
	New().Parse(ctx(proto.ToServer), []byte("GET / HTTP/1.1\r\n"), &s)
	if len(s) != 1 || s[0].Fields["anomaly.event"] != AnomalyMalformed {
		t.Fatalf("%v", s)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(encode(chrome143))
	f.Add([]byte{22, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := New()
		var s sink
		if n := p.Parse(ctx(proto.ToServer), b, &s); n < 0 || n > len(b) {
			t.Fatal(n)
		}
		ParseClientHello(b)
		parseHello(b, true)
		DTLS{}.ParseDatagram(ctx(proto.ToServer), b, &s)
	})
}

func TestDTLSClientHello(t *testing.T) {
	// Turn the TLS hello into a DTLS 1.2 one: version fefd, an empty
	// cookie after the session id, DTLS record and handshake headers.
	h := chrome143
	h.Version = 0xfefd
	h.SupportedVersions = nil
	rec := encode(h)
	body := rec[9:] // after the record and handshake headers
	body = append(append(append([]byte{}, body[:35]...), 0), body[35:]...)
	hs := []byte{1, 0, byte(len(body) >> 8), byte(len(body)), 0, 0, 0, 0, 0, 0, byte(len(body) >> 8), byte(len(body))}
	hs = append(hs, body...)
	dg := append([]byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, byte(len(hs) >> 8), byte(len(hs))}, hs...)
	if !ProbeDTLS(dg) {
		t.Fatal("probe")
	}
	var s sink
	DTLS{}.ParseDatagram(ctx(proto.ToServer), dg, &s)
	if len(s) != 1 || s[0].Fields["tls.client.server_name"] != "tls.browserleaks.com" ||
		!strings.HasPrefix(s[0].Fields["tls.client.ja4"].(string), "dd2d1516h2_") {
		t.Fatalf("%+v", s)
	}
}
