package zigbee

import (
	"testing"
	"time"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

type sink []vigil.Event

func (s *sink) Emit(ev proto.Event) { *s = append(*s, ev.Vigil()) }

func decode(b []byte) sink {
	var s sink
	Decoder{}.ParseDatagram(&proto.Context{Time: time.Unix(1700000000, 0)}, b, &s)
	return s
}

// macData is a data frame, PAN 0x1a62, from 0x0001 to 0x0000.
var macData = []byte{0x41, 0x88, 7, 0x62, 0x1a, 0x00, 0x00, 0x01, 0x00}

// TransportKeyInClear is a Zigbee NWK data frame (no NWK security)
// carrying an APS Transport-Key command (no APS security) with a
// standard network key.
func TransportKeyInClear() []byte {
	b := append([]byte{}, macData...)
	b = append(b, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 30, 9) // nwk: data, v2, dst 0, src 1
	b = append(b, 0x01, 0x42, 0x05, 0x01)                    // aps: command, counter, transport-key, network key
	b = append(b, make([]byte, 16)...)                       // the key
	b = append(b, 0)                                         // key sequence
	b = append(b, make([]byte, 16)...)                       // dst, src ext addresses
	return b
}

func TestTransportKeyInClearIsFlagged(t *testing.T) {
	s := decode(TransportKeyInClear())
	if len(s) != 2 || s[0].Fields["anomaly.event"] != AnomalyKeyInClear || s[0].Severity != vigil.SeverityHigh {
		t.Fatalf("%+v", s)
	}
	f := s[1].Fields
	if f["zigbee.mac.dst_pan"] != "0x1a62" || f["zigbee.mac.src"] != "0x0001" || f["zigbee.nwk.security"] != false ||
		f["zigbee.aps.command"] != "transport_key" || f["zigbee.aps.key_type"] != "network" || s[1].Network != nil {
		t.Fatalf("%v", f)
	}
	for _, v := range f {
		if str, ok := v.(string); ok && len(str) >= 16 && str == string(make([]byte, 16)) {
			t.Fatal("key kept")
		}
	}
}

func TestSecuredNWKAndAPSData(t *testing.T) {
	sec := append(append([]byte{}, macData...), 0x08, 0x12, 0xfd, 0xff, 0x01, 0x00, 30, 10, // nwk secured, src ieee
		1, 2, 3, 4, 5, 6, 7, 8, // src ieee
		0x28, 0x10, 0, 0, 0, // aux: level 0, key id network, ext nonce; frame counter 16
		8, 7, 6, 5, 4, 3, 2, 1, // security source
		3,          // key seq
		0xde, 0xad) // encrypted
	s := decode(sec)
	f := s[0].Fields
	if len(s) != 1 || f["zigbee.nwk.security"] != true || f["zigbee.nwk.key_id"] != "network" ||
		f["zigbee.nwk.frame_counter"] != 16.0 || f["zigbee.nwk.key_seq"] != 3.0 || f["zigbee.nwk.src_ieee"] != "08:07:06:05:04:03:02:01" {
		t.Fatalf("%+v", s)
	}
	data := append(append([]byte{}, macData...), 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 30, 11,
		0x00, 1, 0x06, 0x00, 0x04, 0x01, 1, 5, 0x01) // aps data: dst ep 1, cluster on/off, profile HA, src ep 1
	f = decode(data)[0].Fields
	if f["zigbee.aps.cluster_id"] != "0x0006" || f["zigbee.aps.profile_id"] != "0x0104" || f["zigbee.aps.dst_endpoint"] != 1.0 {
		t.Fatalf("%v", f)
	}
}

func TestBeaconAndAck(t *testing.T) {
	if s := decode([]byte{0x02, 0x00, 1}); len(s) != 0 {
		t.Fatalf("ack produced %v", s)
	}
	s := decode([]byte{0x00, 0x80, 1, 0x62, 0x1a, 0x00, 0x00, 0xff, 0xcf, 0, 0})
	if s[0].Action != "beacon" || s[0].Fields["zigbee.mac.association_permit"] != true {
		t.Fatalf("%v", s)
	}
	if s := decode([]byte{0x41, 0x88, 7, 0x62}); s[0].Fields["anomaly.event"] != AnomalyMalformed {
		t.Fatalf("%v", s)
	}
}

func FuzzParseDatagram(f *testing.F) {
	f.Add(TransportKeyInClear())
	f.Add([]byte{0x00, 0x80, 1, 0x62, 0x1a, 0x00, 0x00, 0xff, 0xcf, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) { decode(b) })
}
