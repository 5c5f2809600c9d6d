package sensor

import (
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	vigil "github.com/vigil-iot/vigil"
)

// seg is one TCP segment to write into a test capture.
type seg struct {
	fromClient bool
	seq        uint32
	flags      uint8
	data       []byte
}

var (
	cliIP = netip.MustParseAddr("192.0.2.10")
	srvIP = netip.MustParseAddr("192.0.2.1")
)

// ipv4TCP builds an IPv4+TCP packet (checksums left zero).
func ipv4TCP(src, dst netip.Addr, sport, dport uint16, seq uint32, flags uint8, data []byte) []byte {
	b := make([]byte, 40+len(data))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8] = 64
	b[9] = ipTCP
	s4, d4 := src.As4(), dst.As4()
	copy(b[12:], s4[:])
	copy(b[16:], d4[:])
	t := b[20:]
	binary.BigEndian.PutUint16(t, sport)
	binary.BigEndian.PutUint16(t[2:], dport)
	binary.BigEndian.PutUint32(t[4:], seq)
	t[12] = 5 << 4
	t[13] = flags
	copy(t[20:], data)
	return b
}

// frame wraps an IP packet for a link type.
func frame(link int, ip []byte) []byte {
	switch link {
	case LinkEthernet:
		h := make([]byte, 14)
		binary.BigEndian.PutUint16(h[12:], 0x0800)
		return append(h, ip...)
	case LinkLinuxSLL:
		h := make([]byte, 16)
		binary.BigEndian.PutUint16(h[14:], 0x0800)
		return append(h, ip...)
	case LinkLinuxSLL2:
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h[0:], 0x0800)
		return append(h, ip...)
	}
	return ip
}

// writePcap writes segments of one connection (client port cport, server
// port sport) to a capture file of the given link type.
func writePcap(t *testing.T, link int, cport, sport uint16, segs []seg) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "t.pcap")
	fh, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	w := pcapgo.NewWriter(fh)
	if err := w.WriteFileHeader(65535, layers.LinkType(link)); err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1700000000, 0)
	for i, s := range segs {
		var ip []byte
		if s.fromClient {
			ip = ipv4TCP(cliIP, srvIP, cport, sport, s.seq, s.flags, s.data)
		} else {
			ip = ipv4TCP(srvIP, cliIP, sport, cport, s.seq, s.flags, s.data)
		}
		fr := frame(link, ip)
		ci := gopacket.CaptureInfo{Timestamp: ts.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			t.Fatal(err)
		}
	}
	return name
}

func mqttStr(s string) []byte { return append([]byte{0, byte(len(s))}, s...) }

// mqttSession returns a client CONNECT+PUBLISH+DISCONNECT stream and the
// server's CONNACK.
func mqttSession() (c2s, s2c []byte) {
	body := append(mqttStr("MQTT"), 4, 0x02, 0, 60)
	body = append(body, mqttStr("sensor-1")...)
	c2s = append([]byte{0x10, byte(len(body))}, body...)
	pub := append(mqttStr("plant/temp"), []byte("21.5 degrees")...)
	c2s = append(c2s, append([]byte{0x30, byte(len(pub))}, pub...)...)
	c2s = append(c2s, 0xe0, 0)
	return c2s, []byte{0x20, 2, 0, 0}
}

// session returns the segments of a whole connection, with the client's
// stream cut at the given offsets.
func session(cuts ...int) []seg {
	c2s, s2c := mqttSession()
	const ci, si = 1000, 5000
	segs := []seg{
		{true, ci, tcpSYN, nil},
		{false, si, tcpSYN | tcpACK, nil},
		{true, ci + 1, tcpACK, nil},
	}
	// CONNECT first, then CONNACK, then the rest in pieces.
	cl := int(c2s[1]) + 2
	segs = append(segs, seg{true, ci + 1, tcpACK | tcpPSH, c2s[:cl]})
	segs = append(segs, seg{false, si + 1, tcpACK | tcpPSH, s2c})
	prev := cl
	for _, c := range append(cuts, len(c2s)) {
		segs = append(segs, seg{true, ci + 1 + uint32(prev), tcpACK | tcpPSH, c2s[prev:c]})
		prev = c
	}
	end := ci + 1 + uint32(len(c2s))
	segs = append(segs,
		seg{true, end, tcpFIN | tcpACK, nil},
		seg{false, si + 1 + uint32(len(s2c)), tcpFIN | tcpACK, nil},
		seg{true, end + 1, tcpACK, nil})
	return segs
}

// mqttActions returns the actions and key fields of the mqtt events.
func mqttActions(evs []vigil.Event) []string {
	var out []string
	for _, e := range evs {
		switch e.Kind {
		case "mqtt":
			s := e.Action
			if v, ok := e.Fields["mqtt.topic"]; ok {
				s += ":" + v.(string) + "=" + e.Fields["mqtt.payload"].(string)
			}
			if v, ok := e.Fields["anomaly.event"]; ok {
				s += ":" + v.(string)
			}
			out = append(out, s)
		case "flow":
			out = append(out, "flow:"+e.Fields["flow.reason"].(string)+":"+e.Fields["flow.app_proto"].(string))
		}
	}
	return out
}

var wantSession = []string{"connect", "connack", "publish:plant/temp=21.5 degrees", "disconnect", "flow:end:mqtt"}

func TestReassemblyInOrderAndLinkTypes(t *testing.T) {
	for _, link := range []int{LinkEthernet, LinkLinuxSLL, LinkLinuxSLL2, LinkRaw} {
		evs, st := runPcap(t, Config{}, writePcap(t, link, 40001, 1883, session(30, 40)))
		if got := mqttActions(evs); !reflect.DeepEqual(got, wantSession) {
			t.Errorf("link %d: %v", link, got)
		}
		if st.Undecoded != 0 || st.Flows != 1 {
			t.Errorf("link %d: %+v", link, st)
		}
	}
}

func TestReassemblyOutOfOrderAndRetransmission(t *testing.T) {
	segs := session(30, 40, 46)
	// Swap the three data segments after the CONNACK and retransmit one,
	// and add an overlapping retransmission of the first half.
	d := segs[5:9]
	d[0], d[2] = d[2], d[0]
	over := seg{true, d[2].seq, d[2].flags, append(append([]byte{}, d[2].data...), d[1].data[:3]...)}
	segs = append(segs[:9], append([]seg{d[0], over}, segs[9:]...)...)
	evs, st := runPcap(t, Config{}, writePcap(t, LinkEthernet, 40002, 1883, segs))
	if got := mqttActions(evs); !reflect.DeepEqual(got, wantSession) {
		t.Errorf("got %v", got)
	}
	if st.OutOfOrder == 0 || st.Retransmissions == 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestMidstreamPickupAndProbe(t *testing.T) {
	// No handshake, a non-standard port: the CONNECT is recognised by
	// probing; the flow is marked midstream.
	segs := session()[3:]
	evs, _ := runPcap(t, Config{}, writePcap(t, LinkEthernet, 40003, 9999, segs))
	if got := mqttActions(evs); !reflect.DeepEqual(got, wantSession) {
		t.Errorf("got %v", got)
	}
	for _, e := range evs {
		if e.Kind == "flow" && e.Fields["flow.midstream"] != true {
			t.Errorf("flow not midstream: %v", e.Fields)
		}
	}
}

func TestGapIsReported(t *testing.T) {
	segs := session(30, 40)
	segs = append(segs[:5], segs[6:]...) // lose a data segment
	evs, st := runPcap(t, Config{}, writePcap(t, LinkEthernet, 40004, 1883, segs))
	got := strings.Join(mqttActions(evs), " ")
	if !strings.Contains(got, "anomaly:truncated_message") || st.Gaps == 0 {
		t.Errorf("got %v, stats %+v", got, st)
	}
}

func TestFlowTableEviction(t *testing.T) {
	name := filepath.Join(t.TempDir(), "many.pcap")
	fh, _ := os.Create(name)
	w := pcapgo.NewWriter(fh)
	w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	for i := 0; i < 10; i++ {
		fr := frame(LinkEthernet, ipv4TCP(cliIP, srvIP, uint16(30000+i), 80, 1, tcpSYN, nil))
		w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1700000000+int64(i), 0), CaptureLength: len(fr), Length: len(fr)}, fr)
	}
	fh.Close()
	evs, st := runPcap(t, Config{MaxFlows: 4}, name)
	if st.FlowsEvicted != 6 || st.Flows != 10 {
		t.Fatalf("stats %+v", st)
	}
	evicted := 0
	for _, e := range evs {
		if e.Fields["flow.reason"] == "evicted" {
			evicted++
		}
	}
	if evicted != 6 {
		t.Fatalf("%d evicted records", evicted)
	}
}

// exchange returns the segments of a connection whose client and server
// send the given messages in turn, each in one segment.
func exchange(msgs ...[]byte) []seg {
	const ci, si = 7000, 9000
	cs, ss := uint32(ci+1), uint32(si+1)
	segs := []seg{{true, ci, tcpSYN, nil}, {false, si, tcpSYN | tcpACK, nil}, {true, ci + 1, tcpACK, nil}}
	for i, m := range msgs {
		if i%2 == 0 {
			segs = append(segs, seg{true, cs, tcpACK | tcpPSH, m})
			cs += uint32(len(m))
		} else {
			segs = append(segs, seg{false, ss, tcpACK | tcpPSH, m})
			ss += uint32(len(m))
		}
	}
	return append(segs, seg{true, cs, tcpFIN | tcpACK, nil}, seg{false, ss, tcpFIN | tcpACK, nil}, seg{true, cs + 1, tcpACK, nil})
}

func TestMQTTOverWebSocket(t *testing.T) {
	c2s, s2c := mqttSession()
	mask := func(p []byte) []byte {
		key := []byte{0x11, 0x22, 0x33, 0x44}
		b := append([]byte{0x82, 0x80 | byte(len(p))}, key...)
		for i, x := range p {
			b = append(b, x^key[i&3])
		}
		return b
	}
	segs := exchange(
		[]byte("GET /mqtt HTTP/1.1\r\nHost: broker\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\nSec-WebSocket-Protocol: mqtt\r\nSec-WebSocket-Version: 13\r\n\r\n"),
		[]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"),
		mask(c2s[:22]),
		append([]byte{0x82, byte(len(s2c))}, s2c...),
		mask(c2s[22:]),
	)
	evs, _ := runPcap(t, Config{}, writePcap(t, LinkEthernet, 40005, 9001, segs))
	got := mqttActions(evs)
	want := []string{"connect", "connack", "publish:plant/temp=21.5 degrees", "disconnect"}
	var mq []string
	for _, g := range got {
		if !strings.HasPrefix(g, "flow") {
			mq = append(mq, g)
		}
	}
	if !reflect.DeepEqual(mq, want) {
		for _, e := range evs {
			t.Log(e.Kind, e.Action, e.Fields)
		}
		t.Fatalf("got %v", got)
	}
}
