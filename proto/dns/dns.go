package dns

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

// Kind is the event kind of every DNS event.
const Kind = "dns"

// Anomaly names (anomaly.event).
const (
	AnomalyMalformed    = "malformed_traffic" // truncated header, name or record
	AnomalyPointerLoop  = "name_pointer_loop" // compression pointers that do not end
	AnomalyZFlag        = "z_flag_set"        // the reserved header bit is set
	AnomalyLongName     = "name_too_long"     // a name longer than 255 bytes
	AnomalyTooManyQuery = "too_many_questions"
)

// maxRecords bounds the records decoded per section.
const maxRecords = 32

var typeNames = map[uint16]string{1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO",
	15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV", 35: "NAPTR", 41: "OPT", 43: "DS", 46: "RRSIG",
	47: "NSEC", 48: "DNSKEY", 64: "SVCB", 65: "HTTPS", 99: "SPF", 252: "AXFR", 255: "ANY", 257: "CAA"}

var rcodeNames = [16]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE", "", "", "", "", ""}

// rcodeValues are the response codes as event field values, boxed once:
// the name, or the number for unassigned codes.
var rcodeValues = func() (t [16]any) {
	for i, n := range rcodeNames {
		if n == "" {
			n = strconv.Itoa(i)
		}
		t[i] = n
	}
	return t
}()

// headerFlags are the header flags dns.header_flags lists, in order.
var headerFlags = [...]struct {
	bit  uint16
	name string
}{{0x0400, "AA"}, {0x0200, "TC"}, {0x0100, "RD"}, {0x0080, "RA"}, {0x0020, "AD"}, {0x0010, "CD"}}

// flagIndex packs the header flags of headerFlags into 6 bits.
func flagIndex(flags uint16) int {
	i := 0
	for k, x := range headerFlags {
		if flags&x.bit != 0 {
			i |= 1 << k
		}
	}
	return i
}

// headerFlagValues holds the dns.header_flags value of each combination
// of flags, boxed once (nil for none). Events share these lists: like
// every event field value, they must not be modified.
var headerFlagValues = func() (t [1 << len(headerFlags)]any) {
	for i := range t {
		var fl []string
		for k, x := range headerFlags {
			if i&(1<<k) != 0 {
				fl = append(fl, x.name)
			}
		}
		if fl != nil {
			t[i] = fl
		}
	}
	return t
}()

// typeValues are the names of typeNames, boxed once.
var typeValues = func() map[uint16]any {
	m := make(map[uint16]any, len(typeNames))
	for k, v := range typeNames {
		m[k] = v
	}
	return m
}()

// typeValue returns typeName(t) as an event field value.
func typeValue(t uint16) any {
	if v, ok := typeValues[t]; ok {
		return v
	}
	return typeName(t)
}

func typeName(t uint16) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// Datagram decodes DNS over UDP.
type Datagram struct{}

var _ proto.DatagramParser = Datagram{}

// ParseDatagram implements proto.DatagramParser.
func (Datagram) ParseDatagram(c *proto.Context, b []byte, out proto.Emitter) {
	message(c, b, out)
}

// Stream decodes DNS over TCP (length-prefixed messages).
type Stream struct{ broken bool }

var _ proto.StreamParser = (*Stream)(nil)

// Parse implements proto.StreamParser.
func (s *Stream) Parse(c *proto.Context, data []byte, out proto.Emitter) int {
	if s.broken {
		return len(data)
	}
	n := 0
	for len(data)-n >= 2 {
		l := int(binary.BigEndian.Uint16(data[n:]))
		if l < 12 {
			s.broken = true
			out.Emit(c.Anomaly(Kind, AnomalyMalformed, "tcp message length "+strconv.Itoa(l)+" is shorter than a header"))
			return len(data)
		}
		if len(data)-n < 2+l {
			return n
		}
		message(c, data[n+2:n+2+l], out)
		n += 2 + l
	}
	return n
}

// Gap implements proto.StreamParser.
func (s *Stream) Gap(c *proto.Context, n int, out proto.Emitter) {
	if !s.broken {
		s.broken = true
		out.Emit(c.Anomaly(Kind, AnomalyMalformed, "cannot decode after "+strconv.Itoa(n)+" lost bytes"))
	}
}

// name reads a possibly compressed domain name at off into buf (from its
// start). It returns the name's bytes (nameString makes the field value),
// the offset after it and an anomaly name ("" when fine).
func name(msg []byte, off int, buf []byte) ([]byte, int, string) {
	buf = buf[:0]
	end := -1
	jumps := 0
	for {
		if off >= len(msg) {
			return nil, 0, AnomalyMalformed
		}
		l := int(msg[off])
		switch l & 0xc0 {
		case 0xc0:
			if off+1 >= len(msg) {
				return nil, 0, AnomalyMalformed
			}
			if end < 0 {
				end = off + 2
			}
			jumps++
			if jumps > 32 {
				return nil, 0, AnomalyPointerLoop
			}
			off = int(binary.BigEndian.Uint16(msg[off:]) & 0x3fff)
			continue
		case 0x00:
		default:
			return nil, 0, AnomalyMalformed
		}
		off++
		if l == 0 {
			break
		}
		if off+l > len(msg) {
			return nil, 0, AnomalyMalformed
		}
		if len(buf) > 0 {
			buf = append(buf, '.')
		}
		buf = append(buf, msg[off:off+l]...)
		if len(buf) > 255 {
			return nil, 0, AnomalyLongName
		}
		off += l
	}
	if end < 0 {
		end = off
	}
	return buf, end, ""
}

// nameString returns a name read by name as a field value.
func nameString(b []byte) string {
	if len(b) == 0 {
		return "."
	}
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func message(c *proto.Context, msg []byte, out proto.Emitter) {
	if len(msg) < 12 {
		out.Emit(c.Anomaly(Kind, AnomalyMalformed, "message of "+strconv.Itoa(len(msg))+" bytes is shorter than the header"))
		return
	}
	id := binary.BigEndian.Uint16(msg)
	flags := binary.BigEndian.Uint16(msg[2:])
	qd := int(binary.BigEndian.Uint16(msg[4:]))
	an := int(binary.BigEndian.Uint16(msg[6:]))
	ns := int(binary.BigEndian.Uint16(msg[8:]))
	ar := int(binary.BigEndian.Uint16(msg[10:]))
	qr := flags&0x8000 != 0
	action := "query"
	if qr {
		action = "response"
	}
	ev := c.NewEvent(Kind, action, 14)
	f := &ev.Fields
	f.Set("dns.id", proto.Num(float64(id)))
	f.Set("dns.opcode", proto.Num(float64((flags>>11)&0xf)))
	if fl := headerFlagValues[flagIndex(flags)]; fl != nil {
		f.Set("dns.header_flags", fl)
	}
	if flags&0x0040 != 0 {
		out.Emit(c.Anomaly(Kind, AnomalyZFlag, "reserved z bit set"))
	}
	if qr {
		rc := flags & 0xf
		f.Set("dns.response_code", rcodeValues[rc])
		if rc == 0 {
			ev.Outcome = vigil.OutcomeSuccess
		} else {
			ev.Outcome = vigil.OutcomeFailure
		}
	}
	f.Set("dns.answers_count", proto.Num(float64(an)))
	var nb [320]byte // a name: 255 bytes at most, then the last label
	off := 12
	bad := func(what, anomaly string) {
		out.Emit(c.Anomaly(Kind, anomaly, what+" at byte "+strconv.Itoa(off)))
		out.Emit(ev)
	}
	if qd > 1 && c.Flow.DstPort != 5353 && c.Flow.SrcPort != 5353 {
		out.Emit(c.Anomaly(Kind, AnomalyTooManyQuery, strconv.Itoa(qd)+" questions"))
	}
	for i := 0; i < qd && i < maxRecords; i++ {
		n, next, a := name(msg, off, nb[:0])
		if a != "" {
			bad("question name", a)
			return
		}
		if next+4 > len(msg) {
			bad("question truncated", AnomalyMalformed)
			return
		}
		qt := binary.BigEndian.Uint16(msg[next:])
		if i == 0 {
			f.SetStr("dns.question.name", nameString(n))
			f.Set("dns.question.type", typeValue(qt))
			f.Set("dns.question.class", proto.Num(float64(binary.BigEndian.Uint16(msg[next+2:])&0x7fff)))
		}
		off = next + 4
	}
	var data, types []string
	for i := 0; i < an+ns+ar && i < 3*maxRecords; i++ {
		_, next, a := name(msg, off, nb[:0])
		if a != "" {
			bad("record name", a)
			return
		}
		if next+10 > len(msg) {
			bad("record header truncated", AnomalyMalformed)
			return
		}
		rt := binary.BigEndian.Uint16(msg[next:])
		ttl := binary.BigEndian.Uint32(msg[next+4:])
		rl := int(binary.BigEndian.Uint16(msg[next+8:]))
		rd := next + 10
		if rd+rl > len(msg) {
			off = rd
			bad("record data truncated", AnomalyMalformed)
			return
		}
		off = rd + rl
		if i >= an {
			continue // authority and additional records are not reported
		}
		var v string
		switch rt {
		case 1:
			if rl == 4 {
				v = netip.AddrFrom4([4]byte(msg[rd : rd+4])).String()
			}
		case 28:
			if rl == 16 {
				v = netip.AddrFrom16([16]byte(msg[rd : rd+16])).String()
			}
		case 2, 5, 12:
			if b, _, a := name(msg, rd, nb[:0]); a == "" {
				v = nameString(b)
			}
		case 15:
			if rl > 2 {
				if b, _, a := name(msg, rd+2, nb[:0]); a == "" {
					v = nameString(b)
				}
			}
		case 33:
			if rl > 6 {
				t := ""
				if b, _, a := name(msg, rd+6, nb[:0]); a == "" {
					t = nameString(b)
				}
				v = t + ":" + strconv.Itoa(int(binary.BigEndian.Uint16(msg[rd+4:])))
			}
		case 16:
			var parts []string
			for p := rd; p < rd+rl; {
				l := int(msg[p])
				if p+1+l > rd+rl {
					break
				}
				parts = append(parts, string(msg[p+1:p+1+l]))
				p += 1 + l
			}
			v = strings.ToValidUTF8(strings.Join(parts, ""), "\uFFFD")
		}
		if i == 0 {
			f.Set("dns.answers.ttl", proto.Num(float64(ttl)))
		}
		types = append(types, typeName(rt))
		data = append(data, v)
	}
	if data != nil {
		f.Set("dns.answers.data", data)
		f.Set("dns.answers.type", types)
	}
	out.Emit(ev)
}
