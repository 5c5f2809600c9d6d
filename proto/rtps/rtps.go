package rtps

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strconv"

	"github.com/vigil-iot/vigil/proto"
)

// Kind is the event kind of every RTPS event.
const Kind = "rtps"

// Anomaly names (anomaly.event).
const (
	AnomalyMalformed     = "malformed_message" // header or submessage overruns the datagram
	AnomalyBadParameters = "invalid_parameter_list"
)

// Probe reports whether a UDP payload is an RTPS message.
func Probe(b []byte) bool { return len(b) >= 20 && string(b[:4]) == "RTPS" }

// Parser decodes RTPS datagrams.
type Parser struct{}

var _ proto.DatagramParser = Parser{}

var vendors = map[uint16]string{0x0101: "RTI Connext DDS", 0x0102: "OpenSplice DDS", 0x0103: "OpenDDS",
	0x0106: "CoreDX DDS", 0x010f: "eProsima Fast DDS", 0x0110: "Eclipse Cyclone DDS"}

// Built-in entity ids.
const (
	spdpWriter = 0x000100c2
	sedpPubW   = 0x000003c2
	sedpSubW   = 0x000004c2
)

func hexs(b []byte) string { return hex.EncodeToString(b) }

// ParseDatagram implements proto.DatagramParser.
func (Parser) ParseDatagram(c *proto.Context, b []byte, out proto.Emitter) {
	if !Probe(b) {
		out.Emit(c.Anomaly(Kind, AnomalyMalformed, "datagram of "+strconv.Itoa(len(b))+" bytes without an RTPS header"))
		return
	}
	version := strconv.Itoa(int(b[4])) + "." + strconv.Itoa(int(b[5]))
	vendor := binary.BigEndian.Uint16(b[6:])
	prefix := hexs(b[8:20])
	off := 20
	for off+4 <= len(b) {
		id, flags := b[off], b[off+1]
		var bo binary.ByteOrder = binary.BigEndian
		if flags&1 != 0 {
			bo = binary.LittleEndian
		}
		l := int(bo.Uint16(b[off+2:]))
		body := b[off+4:]
		if l == 0 && id != 0x01 && id != 0x03 {
			l = len(body) // last submessage extends to the end
		}
		if l > len(body) {
			out.Emit(c.Anomaly(Kind, AnomalyMalformed, "submessage "+strconv.Itoa(int(id))+" length "+strconv.Itoa(l)+" overruns the datagram"))
			return
		}
		body = body[:l]
		off += 4 + l
		if id == 0x0e && len(body) >= 12 { // INFO_DST: later submessages go to that participant
			continue
		}
		if id != 0x15 { // DATA only
			continue
		}
		if len(body) < 20 {
			out.Emit(c.Anomaly(Kind, AnomalyMalformed, "data submessage of "+strconv.Itoa(len(body))+" bytes"))
			return
		}
		toQos := int(bo.Uint16(body[2:]))
		writer := binary.BigEndian.Uint32(body[8:])
		sn := int64(int32(bo.Uint32(body[12:])))<<32 | int64(bo.Uint32(body[16:]))
		p := 4 + toQos
		if p > len(body) {
			out.Emit(c.Anomaly(Kind, AnomalyMalformed, "inline qos offset beyond the submessage"))
			return
		}
		if flags&0x02 != 0 { // inline QoS: a parameter list to skip
			q, ok := skipParams(body[p:], bo)
			if !ok {
				out.Emit(c.Anomaly(Kind, AnomalyBadParameters, "inline qos"))
				return
			}
			p += q
		}
		payload := body[p:]
		action := "data"
		switch writer {
		case spdpWriter:
			action = "participant"
		case sedpPubW:
			action = "publication"
		case sedpSubW:
			action = "subscription"
		}
		ev := c.NewEvent(Kind, action, 12)
		f := &ev.Fields
		f.SetStr("rtps.version", version)
		f.SetStr("rtps.vendor_id", "0x"+hexs(b[6:8]))
		if n := vendors[vendor]; n != "" {
			f.SetStr("rtps.vendor", n)
		}
		f.SetStr("rtps.guid_prefix", prefix)
		f.SetStr("rtps.writer_id", "0x"+hexs(body[8:12]))
		f.SetStr("rtps.reader_id", "0x"+hexs(body[4:8]))
		f.Set("rtps.sequence", proto.Num(float64(sn)))
		f.Set("rtps.payload_size", proto.Num(float64(len(payload))))
		if action != "data" && flags&0x04 != 0 && len(payload) >= 4 {
			if !params(payload[4:], payload[1]&1 != 0, f) {
				out.Emit(c.Anomaly(Kind, AnomalyBadParameters, action+" parameter list"))
			}
		}
		out.Emit(ev)
	}
}

// skipParams returns the length of a parameter list up to and including
// its sentinel.
func skipParams(b []byte, bo binary.ByteOrder) (int, bool) {
	off := 0
	for off+4 <= len(b) {
		pid := bo.Uint16(b[off:])
		l := int(bo.Uint16(b[off+2:]))
		off += 4
		if pid == 1 {
			return off, true
		}
		if off+l > len(b) {
			return 0, false
		}
		off += l
	}
	return 0, false
}

// cdrString reads a CDR string (length including the NUL, then bytes).
func cdrString(v []byte, bo binary.ByteOrder) string {
	if len(v) < 4 {
		return ""
	}
	n := int(bo.Uint32(v))
	if n <= 0 || 4+n > len(v) {
		return ""
	}
	s := v[4 : 4+n]
	if s[len(s)-1] == 0 {
		s = s[:len(s)-1]
	}
	return string(s)
}

// params decodes the discovery parameters Vigil reports.
func params(b []byte, little bool, f *proto.Fields) bool {
	var bo binary.ByteOrder = binary.BigEndian
	if little {
		bo = binary.LittleEndian
	}
	var locators []string
	off := 0
	for off+4 <= len(b) {
		pid := bo.Uint16(b[off:]) & 0x3fff
		l := int(bo.Uint16(b[off+2:]))
		off += 4
		if pid == 1 {
			break
		}
		if off+l > len(b) {
			return false
		}
		v := b[off : off+l]
		off += l
		switch pid {
		case 0x0005:
			f.SetStr("rtps.topic_name", cdrString(v, bo))
		case 0x0007:
			f.SetStr("rtps.type_name", cdrString(v, bo))
		case 0x0062:
			f.SetStr("rtps.entity_name", cdrString(v, bo))
		case 0x0050:
			if len(v) == 16 {
				f.SetStr("rtps.participant_guid", hexs(v))
			}
		case 0x005a:
			if len(v) == 16 {
				f.SetStr("rtps.endpoint_guid", hexs(v))
			}
		case 0x000f:
			if len(v) >= 4 {
				f.Set("rtps.domain_id", proto.Num(float64(bo.Uint32(v))))
			}
		case 0x0031, 0x0032, 0x002f, 0x0030, 0x0033, 0x0048:
			if len(v) == 24 && len(locators) < 8 {
				kind, port := int32(bo.Uint32(v)), bo.Uint32(v[4:])
				var a netip.Addr
				switch kind {
				case 1:
					a = netip.AddrFrom4([4]byte(v[20:24]))
				case 2:
					a = netip.AddrFrom16([16]byte(v[8:24]))
				default:
					continue
				}
				locators = append(locators, netip.AddrPortFrom(a, uint16(port)).String())
			}
		}
	}
	if locators != nil {
		f.Set("rtps.locators", locators)
	}
	return true
}
