package rtps

import (
	"encoding/binary"
	"testing"
	"time"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

type sink []vigil.Event

func (s *sink) Emit(ev proto.Event) { *s = append(*s, ev.Vigil()) }

func header() []byte {
	b := []byte("RTPS")
	b = append(b, 2, 3, 0x01, 0x10) // version 2.3, Cyclone DDS
	return append(b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
}

func param(pid uint16, v []byte) []byte {
	for len(v)%4 != 0 {
		v = append(v, 0)
	}
	b := binary.LittleEndian.AppendUint16(nil, pid)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
	return append(b, v...)
}

func cdr(s string) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(s)+1)), append([]byte(s), 0)...)
}

// data builds a little-endian DATA submessage from writer with payload.
func data(writer uint32, payload []byte) []byte {
	body := []byte{0, 0, 16, 0}                        // extra flags, octetsToInlineQos
	body = binary.BigEndian.AppendUint32(body, 0)      // reader
	body = binary.BigEndian.AppendUint32(body, writer) // writer
	body = append(body, 0, 0, 0, 0, 7, 0, 0, 0)        // sn 7
	body = append(body, payload...)
	sub := []byte{0x15, 0x05}
	sub = binary.LittleEndian.AppendUint16(sub, uint16(len(body)))
	return append(sub, body...)
}

func TestDiscoveryAndData(t *testing.T) {
	loc := binary.LittleEndian.AppendUint32(nil, 1)
	loc = binary.LittleEndian.AppendUint32(loc, 7411)
	loc = append(loc, make([]byte, 12)...)
	loc = append(loc, 192, 0, 2, 9)
	spdp := []byte{0, 3, 0, 0} // PL_CDR_LE
	spdp = append(spdp, param(0x0050, make([]byte, 16))...)
	spdp = append(spdp, param(0x0032, loc)...)
	spdp = append(spdp, param(0x0062, cdr("robot-arm"))...)
	spdp = append(spdp, 1, 0, 0, 0)
	sedp := []byte{0, 3, 0, 0}
	sedp = append(sedp, param(0x0005, cdr("rt/joint_states"))...)
	sedp = append(sedp, param(0x0007, cdr("sensor_msgs::msg::dds_::JointState_"))...)
	sedp = append(sedp, 1, 0, 0, 0)
	msg := append(header(), data(spdpWriter, spdp)...)
	msg = append(msg, data(sedpPubW, sedp)...)
	msg = append(msg, data(0x00001203, []byte{0, 1, 0, 0, 1, 2, 3, 4})...)
	var s sink
	Parser{}.ParseDatagram(&proto.Context{Time: time.Unix(1, 0)}, msg, &s)
	if len(s) != 3 || s[0].Action != "participant" || s[1].Action != "publication" || s[2].Action != "data" {
		t.Fatalf("%+v", s)
	}
	if s[0].Fields["rtps.entity_name"] != "robot-arm" || vigil.ValueString(s[0].Fields["rtps.locators"]) != "192.0.2.9:7411" ||
		s[0].Fields["rtps.vendor"] != "Eclipse Cyclone DDS" || s[0].Fields["rtps.version"] != "2.3" {
		t.Fatalf("%v", s[0].Fields)
	}
	if s[1].Fields["rtps.topic_name"] != "rt/joint_states" || s[1].Fields["rtps.type_name"] != "sensor_msgs::msg::dds_::JointState_" {
		t.Fatalf("%v", s[1].Fields)
	}
	if s[2].Fields["rtps.sequence"] != 7.0 || s[2].Fields["rtps.payload_size"] != 8.0 || s[2].Fields["rtps.writer_id"] != "0x00001203" {
		t.Fatalf("%v", s[2].Fields)
	}
	s = nil
	Parser{}.ParseDatagram(&proto.Context{}, append(header(), 0x15, 1, 200, 0), &s)
	if len(s) != 1 || s[0].Fields["anomaly.event"] != AnomalyMalformed {
		t.Fatalf("%v", s)
	}
}

func FuzzParseDatagram(f *testing.F) {
	f.Add(append(header(), data(sedpPubW, []byte{0, 3, 0, 0, 5, 0, 8, 0, 4, 0, 0, 0, 'a', 'b', 'c', 0, 1, 0, 0, 0})...))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s sink
		Parser{}.ParseDatagram(&proto.Context{}, b, &s)
	})
}
