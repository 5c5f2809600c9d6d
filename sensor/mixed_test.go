package sensor

import (
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

func ipv4UDP(src, dst netip.Addr, sport, dport uint16, data []byte) []byte {
	b := make([]byte, 28+len(data))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8] = 64
	b[9] = ipUDP
	s4, d4 := src.As4(), dst.As4()
	copy(b[12:], s4[:])
	copy(b[16:], d4[:])
	binary.BigEndian.PutUint16(b[20:], sport)
	binary.BigEndian.PutUint16(b[22:], dport)
	binary.BigEndian.PutUint16(b[24:], uint16(8+len(data)))
	copy(b[28:], data)
	return b
}

// mixedCapture writes a capture of n rounds, each with one MQTT, Modbus,
// HTTP and TLS connection and one CoAP and DNS exchange, from n
// different clients, with payload sizes typical of each protocol.
func mixedCapture(t testing.TB, n int) string {
	name := filepath.Join(t.TempDir(), "mixed.pcap")
	fh, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(fh)
	w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	ts := time.Unix(1700000000, 0)
	write := func(ip []byte) {
		fr := frame(LinkEthernet, ip)
		fr[6], fr[11] = 0x02, byte(len(ip)) // a source MAC
		ts = ts.Add(50 * time.Microsecond)
		w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(fr), Length: len(fr)}, fr)
	}
	srv := netip.MustParseAddr("10.1.0.1")
	tcpConn := func(cli netip.Addr, cport, sport uint16, msgs ...[]byte) {
		for _, s := range exchange(msgs...) {
			if s.fromClient {
				write(ipv4TCP(cli, srv, cport, sport, s.seq, s.flags, s.data))
			} else {
				write(ipv4TCP(srv, cli, sport, cport, s.seq, s.flags, s.data))
			}
		}
	}
	c2s, s2c := mqttSession()
	pub := append(mqttStr("site/7/meter"), []byte(strings.Repeat("x", 200))...)
	pubMsg := append([]byte{0x30, byte(len(pub)&0x7f | 0x80), byte(len(pub) >> 7)}, pub...)
	mb := func(tid byte) []byte { return []byte{0, tid, 0, 0, 0, 6, 1, 3, 0, 0, 0, 10} }
	mbr := func(tid byte) []byte { return append([]byte{0, tid, 0, 0, 0, 23, 1, 3, 20}, make([]byte, 20)...) }
	body := strings.Repeat("b", 1024)
	hello := encodeHello()
	sh := append(append([]byte{3, 3}, make([]byte, 32)...), 0, 0x13, 0x01, 0)
	sh = append([]byte{2, 0, 0, byte(len(sh))}, sh...)
	serverHello := append([]byte{22, 3, 3, 0, byte(len(sh))}, sh...)
	appData := append([]byte{23, 3, 3, 0x05, 0x78}, make([]byte, 1400)...)
	dnsQ := []byte{0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 6, 'b', 'r', 'o', 'k', 'e', 'r', 3, 'l', 'a', 'n', 0, 0, 1, 0, 1}
	dnsR := append(append([]byte{0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0}, dnsQ[12:]...), 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 1, 0, 1)
	coapQ := []byte{0x42, 0x01, 0x12, 0x34, 0xca, 0xfe, 0xb4, 't', 'e', 'm', 'p'}
	coapR := []byte{0x62, 0x45, 0x12, 0x34, 0xca, 0xfe, 0xc0, 0xff, '2', '1', '.', '5'}
	for i := 0; i < n; i++ {
		cli := netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)})
		cp := uint16(20000 + i%30000)
		tcpConn(cli, cp, 1883, c2s[:22], s2c, append(append(append([]byte{}, pubMsg...), pubMsg...), pubMsg...), nil, c2s[22:])
		tcpConn(cli, cp, 502, mb(1), mbr(1), mb(2), mbr(2), mb(3), mbr(3))
		tcpConn(cli, cp, 80, []byte("GET /api/state HTTP/1.1\r\nHost: gw\r\nUser-Agent: dev/1\r\n\r\n"),
			[]byte("HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n"+body))
		tcpConn(cli, cp, 443, hello, serverHello, appData, appData, appData, appData)
		write(ipv4UDP(cli, srv, cp, 5683, coapQ))
		write(ipv4UDP(srv, cli, 5683, cp, coapR))
		write(ipv4UDP(cli, srv, cp, 53, dnsQ))
		write(ipv4UDP(srv, cli, 53, cp, dnsR))
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	return name
}

// encodeHello is a minimal TLS ClientHello record with SNI.
func encodeHello() []byte {
	sni := "broker.example.com"
	ext := []byte{0, 0}
	ext = binary.BigEndian.AppendUint16(ext, uint16(len(sni)+5))
	ext = binary.BigEndian.AppendUint16(ext, uint16(len(sni)+3))
	ext = append(ext, 0)
	ext = binary.BigEndian.AppendUint16(ext, uint16(len(sni)))
	ext = append(ext, sni...)
	body := append([]byte{3, 3}, make([]byte, 32)...)
	body = append(body, 0, 0, 4, 0x13, 0x01, 0xc0, 0x2f, 1, 0)
	body = binary.BigEndian.AppendUint16(body, uint16(len(ext)))
	body = append(body, ext...)
	hs := append([]byte{1, 0, byte(len(body) >> 8), byte(len(body))}, body...)
	return append([]byte{22, 3, 1, byte(len(hs) >> 8), byte(len(hs))}, hs...)
}

func TestMixedCapture(t *testing.T) {
	evs, st := runPcap(t, Config{}, mixedCapture(t, 3))
	kinds := map[string]int{}
	for _, e := range evs {
		kinds[e.Kind]++
		if e.Action == "anomaly" {
			t.Errorf("anomaly %v", e.Fields)
		}
	}
	for _, k := range []string{"mqtt", "modbus", "http", "tls", "coap", "dns", "flow", "inventory"} {
		if kinds[k] == 0 {
			t.Errorf("no %s events: %v", k, kinds)
		}
	}
	if st.Flows != 18 || st.Undecoded != 0 {
		t.Errorf("stats %+v", st)
	}
}

// BenchmarkMixed runs every decoder over a mixed IoT capture (MQTT,
// Modbus, HTTP, TLS, CoAP, DNS; 2,000 clients, ~94k packets).
func BenchmarkMixed(b *testing.B) {
	f := mixedCapture(b, 2000)
	b.Run("events", func(b *testing.B) { benchPcap(b, f, false) })
	b.Run("ndjson", func(b *testing.B) { benchPcap(b, f, true) })
}
