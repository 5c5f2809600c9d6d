package sensor

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	vigil "github.com/vigil-iot/vigil"
)

var (
	fragCli  = netip.MustParseAddr("10.9.0.2")
	fragSrv  = netip.MustParseAddr("10.9.0.1")
	fragCli6 = netip.MustParseAddr("fd00:9::2")
	fragSrv6 = netip.MustParseAddr("fd00:9::1")
)

// fragment4 cuts an IPv4 packet (20-byte header) into fragments of at
// most chunk payload bytes (a multiple of 8), with identification id.
func fragment4(ip []byte, chunk int, id uint16) [][]byte {
	payload := ip[20:]
	var out [][]byte
	for off := 0; off < len(payload); off += chunk {
		end := min(off+chunk, len(payload))
		f := append(append([]byte{}, ip[:20]...), payload[off:end]...)
		binary.BigEndian.PutUint16(f[2:], uint16(len(f)))
		binary.BigEndian.PutUint16(f[4:], id)
		fo := uint16(off / 8)
		if end < len(payload) {
			fo |= 0x2000
		}
		binary.BigEndian.PutUint16(f[6:], fo)
		out = append(out, f)
	}
	return out
}

// ipv6UDP builds an IPv6 UDP packet; ext, when set, is a destination
// options header put before the UDP header.
func ipv6UDP(src, dst netip.Addr, sport, dport uint16, data []byte, ext bool) []byte {
	var body []byte
	next := byte(ipUDP)
	if ext {
		body = []byte{ipUDP, 0, 1, 4, 0, 0, 0, 0} // PadN
		next = 60
	}
	udp := make([]byte, 8, 8+len(data))
	binary.BigEndian.PutUint16(udp, sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(data)))
	body = append(append(body, udp...), data...)
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(body)))
	h[6], h[7] = next, 64
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, body...)
}

// fragment6 cuts an IPv6 packet (40-byte header, no extension headers
// before the fragmentable part) into fragments of at most chunk bytes.
func fragment6(ip []byte, chunk int, id uint32) [][]byte {
	next := ip[6]
	payload := ip[40:]
	var out [][]byte
	for off := 0; off < len(payload); off += chunk {
		end := min(off+chunk, len(payload))
		f := append([]byte{}, ip[:40]...)
		f[6] = 44
		fh := make([]byte, 8)
		fh[0] = next
		fo := uint16(off)
		if end < len(payload) {
			fo |= 1
		}
		binary.BigEndian.PutUint16(fh[2:], fo)
		binary.BigEndian.PutUint32(fh[4:], id)
		f = append(append(f, fh...), payload[off:end]...)
		binary.BigEndian.PutUint16(f[4:], uint16(len(f)-40))
		out = append(out, f)
	}
	return out
}

// timedPkt is a raw IP packet and its capture time offset.
type timedPkt struct {
	at time.Duration
	ip []byte
}

// writeRaw writes raw IP packets (link type raw) to a capture file.
func writeRaw(t *testing.T, pkts []timedPkt) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "frag.pcap")
	fh, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(fh)
	w.WriteFileHeader(65535, layers.LinkTypeRaw)
	t0 := time.Unix(1700000000, 0)
	for _, p := range pkts {
		w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(p.at), CaptureLength: len(p.ip), Length: len(p.ip)}, p.ip)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	return name
}

// seq gives packets capture times 1 ms apart.
func seq(pkts ...[]byte) []timedPkt {
	var out []timedPkt
	for i, p := range pkts {
		out = append(out, timedPkt{time.Duration(i) * time.Millisecond, p})
	}
	return out
}

// coapPut is a confirmable CoAP PUT /big with a payload of n bytes.
func coapPut(n int, fill byte) []byte {
	b := []byte{0x40, 0x03, 0x12, 0x34, 0xb3, 'b', 'i', 'g', 0xff}
	return append(b, bytes.Repeat([]byte{fill}, n)...)
}

func findEvents(evs []vigil.Event, kind, action string) []vigil.Event {
	var out []vigil.Event
	for _, e := range evs {
		if e.Kind == kind && (action == "" || e.Action == action) {
			out = append(out, e)
		}
	}
	return out
}

// TestIPv4FragmentsReassembled sends a 3,000-byte CoAP request in three
// fragments, out of order, one of them twice: one CoAP event with the
// whole payload, a flow counting the four packets.
func TestIPv4FragmentsReassembled(t *testing.T) {
	fr := fragment4(ipv4UDP(fragCli, fragSrv, 40000, 5683, coapPut(3000, 'x')), 1480, 7)
	if len(fr) != 3 {
		t.Fatalf("%d fragments", len(fr))
	}
	evs, st := runPcap(t, Config{}, writeRaw(t, seq(fr[2], fr[0], fr[1], fr[0])))
	coap := findEvents(evs, "coap", "request")
	if len(coap) != 1 || coap[0].Fields["coap.payload_size"] != 3000.0 || coap[0].Fields["coap.uri_path"] != "/big" {
		t.Fatalf("coap events %v", coap)
	}
	flows := findEvents(evs, "flow", "")
	if len(flows) != 1 || flows[0].Fields["flow.pkts_toserver"] != 3.0 || flows[0].Fields["flow.app_proto"] != "coap" {
		t.Fatalf("flows %v", flows)
	}
	if st.Fragments != 4 || st.Reassembled != 1 || st.FragsDropped != 1 || len(findEvents(evs, "ip", "")) != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestIPv6FragmentsReassembled sends a CoAP request over IPv6 in
// fragments, with a destination options header after the fragment
// header, and a second one without.
func TestIPv6FragmentsReassembled(t *testing.T) {
	a := fragment6(ipv6UDP(fragCli6, fragSrv6, 40000, 5683, coapPut(2500, 'y'), true), 1232, 0x01020304)
	b := fragment6(ipv6UDP(fragCli6, fragSrv6, 40000, 5683, coapPut(1500, 'z'), false), 1232, 0x01020305)
	evs, st := runPcap(t, Config{}, writeRaw(t, seq(a[1], b[0], a[0], a[2], b[1])))
	coap := findEvents(evs, "coap", "request")
	if len(coap) != 2 || coap[0].Fields["coap.payload_size"] != 2500.0 || coap[1].Fields["coap.payload_size"] != 1500.0 {
		t.Fatalf("coap events %v", coap)
	}
	if coap[0].Network.SrcIP != fragCli6 || coap[0].Network.DstPort != 5683 {
		t.Fatalf("network %+v", coap[0].Network)
	}
	if st.Fragments != 5 || st.Reassembled != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestFragmentedTCP reassembles an MQTT CONNECT whose TCP segment was
// fragmented.
func TestFragmentedTCP(t *testing.T) {
	c2s, s2c := mqttSession()
	var pkts [][]byte
	for _, s := range exchange(c2s[:22], s2c) {
		var ip []byte
		if s.fromClient {
			ip = ipv4TCP(fragCli, fragSrv, 40001, 1883, s.seq, s.flags, s.data)
		} else {
			ip = ipv4TCP(fragSrv, fragCli, 1883, 40001, s.seq, s.flags, s.data)
		}
		if len(s.data) > 16 {
			pkts = append(pkts, fragment4(ip, 16, 99)...)
			continue
		}
		pkts = append(pkts, ip)
	}
	evs, st := runPcap(t, Config{}, writeRaw(t, seq(pkts...)))
	if len(findEvents(evs, "mqtt", "connect")) != 1 || len(findEvents(evs, "mqtt", "connack")) != 1 || st.Reassembled == 0 {
		t.Fatalf("events %v, stats %+v", mqttActions(evs), st)
	}
}

// TestFragmentOverlap: fragments that overlap with the same bytes are
// duplicates; with different bytes the datagram is dropped and reported.
func TestFragmentOverlap(t *testing.T) {
	ip := ipv4UDP(fragCli, fragSrv, 40000, 5683, coapPut(2000, 'a'))
	fr := fragment4(ip, 1480, 11)
	// A fragment covering bytes 1464..1999 of the payload: the same bytes
	// as the originals, then different ones.
	same := fragment4(ip, 1464, 11)[1]
	other := append([]byte{}, same...)
	other[len(other)-1] ^= 0xff
	evs, _ := runPcap(t, Config{}, writeRaw(t, seq(fr[0], same, fr[1])))
	if len(findEvents(evs, "coap", "request")) != 1 || len(findEvents(evs, "ip", "anomaly")) != 0 {
		t.Fatalf("identical overlap: %v", evs)
	}
	fr2 := fragment4(ipv4UDP(fragCli, fragSrv, 40000, 5683, coapPut(2000, 'a')), 1480, 12)
	other2 := append([]byte{}, other...)
	binary.BigEndian.PutUint16(other2[4:], 12)
	evs, _ = runPcap(t, Config{}, writeRaw(t, seq(fr2[0], fr2[1], other2)))
	// The datagram was whole before the rewrite came: it is decoded, and
	// the late fragment starts a datagram that never completes.
	if len(findEvents(evs, "coap", "request")) != 1 {
		t.Fatalf("late rewrite: %v", evs)
	}
	evs, st := runPcap(t, Config{}, writeRaw(t, seq(fr2[1], other2, fr2[0])))
	an := findEvents(evs, "ip", "anomaly")
	if len(an) != 1 || an[0].Fields["anomaly.event"] != AnomalyFragOverlap || an[0].Fields["anomaly.layer"] != "decoder" ||
		an[0].Fields["ip.fragment_id"] != 12.0 || an[0].Network.SrcIP != fragCli || an[0].Severity != vigil.SeverityMedium {
		t.Fatalf("anomalies %v", an)
	}
	if len(findEvents(evs, "coap", "")) != 0 || st.FragsDropped != 3 {
		t.Fatalf("events %v, stats %+v", evs, st)
	}
}

// TestFragmentLimits: an incomplete datagram times out; the table keeps
// MaxIPDatagrams datagrams, dropping the oldest; a datagram past 65,535
// bytes and one of too many fragments are reported.
func TestFragmentLimits(t *testing.T) {
	mk := func(id uint16) [][]byte {
		return fragment4(ipv4UDP(fragCli, fragSrv, 40000+id, 5683, coapPut(2000, 'q')), 1480, id)
	}
	a, b, c := mk(1), mk(2), mk(3)
	// a's second fragment comes after the timeout.
	evs, st := runPcap(t, Config{FragmentTimeout: 10 * time.Second}, writeRaw(t, []timedPkt{
		{0, a[0]}, {11 * time.Second, a[1]}, {12 * time.Second, b[0]}, {13 * time.Second, b[1]}}))
	if n := len(findEvents(evs, "coap", "request")); n != 1 || st.FragsDropped != 2 {
		t.Fatalf("timeout: %d coap events, stats %+v", n, st)
	}
	// Three datagrams in flight with room for two: the oldest (a) goes.
	evs, st = runPcap(t, Config{MaxIPDatagrams: 2}, writeRaw(t, seq(a[0], b[0], c[0], b[1], c[1], a[1])))
	coap := findEvents(evs, "coap", "request")
	if len(coap) != 2 || coap[0].Network.SrcPort != 40002 || coap[1].Network.SrcPort != 40003 {
		t.Fatalf("bound: %v, stats %+v", coap, st)
	}
	// A fragment ending past 65,535 bytes.
	big := append([]byte{}, a[1]...)
	binary.BigEndian.PutUint16(big[6:], 8190) // offset 65,520
	// Too many fragments: 300 fragments of 8 bytes.
	tiny := fragment4(ipv4UDP(fragCli, fragSrv, 40009, 5683, coapPut(2400, 't')), 8, 9)
	evs, _ = runPcap(t, Config{}, writeRaw(t, seq(append([][]byte{big}, tiny...)...)))
	an := findEvents(evs, "ip", "anomaly")
	if len(an) != 2 || an[0].Fields["anomaly.event"] != AnomalyFragTooLarge || an[1].Fields["anomaly.event"] != AnomalyFragTooMany {
		t.Fatalf("anomalies %v", an)
	}
	if len(findEvents(evs, "coap", "")) != 0 {
		t.Fatal("a dropped datagram was decoded")
	}
	// Reassembly off: fragments are counted, the first one's flow seen.
	evs, st = runPcap(t, Config{MaxIPDatagrams: -1}, writeRaw(t, seq(a[0], a[1])))
	if st.Fragments != 1 || st.Reassembled != 0 || len(findEvents(evs, "coap", "")) != 1 {
		t.Fatalf("off: stats %+v", st)
	}
}

// FuzzDefrag feeds fragments described by the input (5 header bytes each:
// datagram, offset in 8-byte units (2), more fragments, length; then the
// data) to a small reassembly table, and checks its bounds: never a
// panic, a whole datagram exactly as long as its fragments say, the
// table and its byte count within their limits.
func FuzzDefrag(f *testing.F) {
	f.Add([]byte{1, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 0, 1, 0, 4, 9, 9, 9, 9})
	f.Add([]byte{1, 0, 1, 0, 8, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 16, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 2})
	f.Add([]byte{2, 0xff, 0xff, 0, 200})
	f.Fuzz(func(t *testing.T, in []byte) {
		d := newDefrag(3, time.Second)
		ts := time.Unix(1700000000, 0)
		for len(in) >= 5 {
			n := min(int(in[4]), len(in)-5)
			p := &packet{src: fragCli, dst: fragSrv, proto: ipUDP, fragNext: ipUDP, fragment: true,
				fragID: uint32(in[0] & 7), fragOff: int(binary.BigEndian.Uint16(in[1:])) * 8, fragMore: in[3]&1 != 0,
				fragData: in[5 : 5+n], ipLen: 20 + n}
			if in[3]&2 != 0 {
				ts = ts.Add(700 * time.Millisecond)
			}
			r := d.add(p, ts)
			if r.done && (len(r.payload) > maxDatagram || r.frags < 1) {
				t.Fatalf("datagram of %d bytes from %d fragments", len(r.payload), r.frags)
			}
			if len(d.m) > 3 || d.bytes < 0 || d.bytes > maxFragBytes+maxDatagram {
				t.Fatalf("%d datagrams, %d bytes", len(d.m), d.bytes)
			}
			in = in[5+n:]
		}
		d.clear()
		if len(d.m) != 0 || d.bytes != 0 || d.head != nil || d.tail != nil {
			t.Fatalf("after clear: %d datagrams, %d bytes", len(d.m), d.bytes)
		}
	})
}

// TestRealFragments decodes a capture of fragments made by the Linux
// kernel (testdata/ipfrag/README.md): a CoAP PUT of 3,000 bytes over
// IPv4 and over IPv6 on a link of MTU 1280, three fragments each.
func TestRealFragments(t *testing.T) {
	evs, st := runPcap(t, Config{}, filepath.Join("testdata", "ipfrag", "coap-udp-mtu1280.pcapng"))
	puts := findEvents(evs, "coap", "request")
	if len(puts) != 2 || st.Reassembled != 2 || st.Fragments != 6 || st.FragsDropped != 0 {
		t.Fatalf("requests %v, stats %+v", puts, st)
	}
	for i, want := range []string{"10.213.9.2", "fd00:213:9::2"} {
		e := puts[i]
		if e.Network.SrcIP.String() != want || e.Fields["coap.payload_size"] != 3000.0 || e.Fields["coap.uri_path"] != "/example_data" || e.Fields["coap.token"] != "beef" {
			t.Errorf("request %d: %+v %v", i, e.Network, e.Fields)
		}
	}
	for _, f := range findEvents(evs, "flow", "") {
		if f.Fields["flow.app_proto"] == "coap" && f.Fields["flow.pkts_toserver"] != 3.0 {
			t.Errorf("flow %v", f.Fields)
		}
	}
}

// FuzzPackets runs raw IP packets (each prefixed by a one-byte length)
// through the whole packet path: IPv4/IPv6 headers, fragment reassembly,
// flows, protocol recognition and every decoder. Never a panic; a
// reassembled datagram is never larger than 65,535 bytes.
func FuzzPackets(f *testing.F) {
	for _, fr := range fragment4(ipv4UDP(fragCli, fragSrv, 40000, 5683, coapPut(300, 'x')), 128, 7) {
		f.Add(append([]byte{byte(len(fr))}, fr[:min(len(fr), 255)]...))
	}
	six := fragment6(ipv6UDP(fragCli6, fragSrv6, 40000, 15683, coapPut(200, 'y'), true), 96, 9)
	f.Add(append(append([]byte{byte(len(six[0]))}, six[0]...), append([]byte{byte(len(six[1]))}, six[1]...)...))
	f.Add(append([]byte{40}, ipv4TCP(fragCli, fragSrv, 1, 15683, 1, tcpSYN, nil)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		e := newEngine(context.Background(), Config{MaxIPDatagrams: 4, DisableDiscovery: true}.withDefaults(), nil)
		ts := time.Unix(1700000000, 0)
		for len(in) > 0 {
			n := min(int(in[0]), len(in)-1)
			e.packet(LinkRaw, in[1:1+n], ts, n)
			in = in[1+n:]
			ts = ts.Add(time.Second)
			if e.defrag.bytes > maxFragBytes+maxDatagram || len(e.defrag.m) > 4 {
				t.Fatalf("reassembly holds %d datagrams, %d bytes", len(e.defrag.m), e.defrag.bytes)
			}
		}
		e.finish("capture_end")
	})
}
