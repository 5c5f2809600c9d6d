package sensor

import (
	"encoding/binary"
	"net/netip"
)

// Link types (LINKTYPE_* values of pcap and pcapng) the sensor decodes.
const (
	LinkNull      = 0   // BSD loopback, 4-byte address family
	LinkEthernet  = 1   // Ethernet II, 802.1Q
	LinkRawAlt    = 12  // DLT_RAW on some systems
	LinkRaw       = 101 // raw IPv4 or IPv6
	LinkLinuxSLL  = 113 // Linux cooked capture v1
	LinkIPv4      = 228
	LinkIPv6      = 229
	LinkLinuxSLL2 = 276 // Linux cooked capture v2

	Link802154FCS    = 195 // IEEE 802.15.4 with a 2-byte FCS
	Link802154NonASK = 215 // IEEE 802.15.4 with PHY header, FCS included
	Link802154NoFCS  = 230 // IEEE 802.15.4 without FCS
	Link802154TAP    = 283 // IEEE 802.15.4 TAP: TLV header, FCS as the TLVs say
)

// dot15d4Frame returns the 802.15.4 MAC frame (without FCS) of a frame
// of one of the 802.15.4 link types, and false when the link type is not
// one of them or the header is truncated.
func dot15d4Frame(link int, b []byte) ([]byte, bool, bool) {
	fcs := 0
	switch link {
	case Link802154FCS:
		fcs = 2
	case Link802154NoFCS:
	case Link802154NonASK:
		if len(b) < 6 {
			return nil, true, false
		}
		b = b[6:] // preamble, SFD, PHY length
		fcs = 2
	case Link802154TAP:
		if len(b) < 4 || b[0] != 0 {
			return nil, true, false
		}
		hl := int(binary.LittleEndian.Uint16(b[2:]))
		if hl < 4 || hl > len(b) {
			return nil, true, false
		}
		for t := b[4:hl]; len(t) >= 4; {
			typ := binary.LittleEndian.Uint16(t)
			l := int(binary.LittleEndian.Uint16(t[2:]))
			if typ == 0 && l >= 1 && len(t) >= 5 {
				fcs = [3]int{0, 2, 4}[min(int(t[4]), 2)]
			}
			adv := 4 + (l+3)&^3
			if adv > len(t) {
				break
			}
			t = t[adv:]
		}
		b = b[hl:]
	default:
		return nil, false, false
	}
	if len(b) < fcs {
		return nil, true, false
	}
	return b[:len(b)-fcs], true, true
}

// IP protocol numbers.
const (
	ipTCP = 6
	ipUDP = 17
)

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
	tcpURG = 0x20
)

// packet is one decoded IP packet. Payload points into the capture buffer.
type packet struct {
	src, dst         netip.Addr
	sport, dport     uint16
	proto            uint8
	flags            uint8 // TCP flags
	seq              uint32
	payload          []byte
	ipLen            int // bytes on the wire from the IP header on
	fragment         bool
	transportInvalid bool
	// Of a fragment: the datagram's identification, the byte offset of
	// the fragment's data, whether more fragments follow, and its data
	// (the IP payload after the IPv4 header or the IPv6 fragment
	// header). truncated tells that the capture kept less than the
	// packet's IP length.
	fragID    uint32
	fragOff   int
	fragMore  bool
	fragData  []byte
	fragNext  uint8 // the protocol (IPv6: next header) of fragData
	truncated bool
	// frags is how many packets on the wire this one is: 1, or the
	// number of fragments of a reassembled datagram.
	frags  int
	srcMAC [6]byte // the sender's link address, when hasMAC
	hasMAC bool
}

// decodeLink decodes one captured frame of the given link type. It
// returns false for frames it does not handle (not IP, truncated).
func decodeLink(link int, b []byte, p *packet) bool {
	switch link {
	case LinkEthernet:
		if len(b) < 14 {
			return false
		}
		mac := [6]byte(b[6:12])
		et := binary.BigEndian.Uint16(b[12:])
		b = b[14:]
		for et == 0x8100 || et == 0x88a8 || et == 0x9100 {
			if len(b) < 4 {
				return false
			}
			et = binary.BigEndian.Uint16(b[2:])
			b = b[4:]
		}
		if !decodeEtherType(et, b, p) {
			return false
		}
		p.srcMAC, p.hasMAC = mac, true
		return true
	case LinkLinuxSLL:
		if len(b) < 16 {
			return false
		}
		if !decodeEtherType(binary.BigEndian.Uint16(b[14:]), b[16:], p) {
			return false
		}
		if binary.BigEndian.Uint16(b[4:]) == 6 { // link address length
			p.srcMAC, p.hasMAC = [6]byte(b[6:12]), true
		}
		return true
	case LinkLinuxSLL2:
		if len(b) < 20 {
			return false
		}
		if !decodeEtherType(binary.BigEndian.Uint16(b[0:]), b[20:], p) {
			return false
		}
		if b[11] == 6 { // link address length
			p.srcMAC, p.hasMAC = [6]byte(b[12:18]), true
		}
		return true
	case LinkRaw, LinkRawAlt:
		return decodeIP(b, p)
	case LinkIPv4, LinkIPv6:
		return decodeIP(b, p)
	case LinkNull:
		if len(b) < 4 {
			return false
		}
		return decodeIP(b[4:], p)
	}
	return false
}

func decodeEtherType(et uint16, b []byte, p *packet) bool {
	switch et {
	case 0x0800, 0x86dd:
		return decodeIP(b, p)
	}
	return false
}

// decodeIP decodes an IPv4 or IPv6 header and the TCP or UDP header
// after it. Other transports are kept with their protocol number only.
func decodeIP(b []byte, p *packet) bool {
	if len(b) < 1 {
		return false
	}
	*p = packet{frags: 1}
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return false
		}
		hl := int(b[0]&0x0f) * 4
		tl := int(binary.BigEndian.Uint16(b[2:]))
		if hl < 20 || len(b) < hl {
			return false
		}
		if tl >= hl && tl < len(b) {
			b = b[:tl] // drop Ethernet padding
		}
		p.ipLen = max(tl, len(b))
		p.truncated = tl > len(b)
		p.proto = b[9]
		p.src = netip.AddrFrom4([4]byte(b[12:16]))
		p.dst = netip.AddrFrom4([4]byte(b[16:20]))
		frag := binary.BigEndian.Uint16(b[6:])
		if frag&0x3fff != 0 { // more fragments or an offset
			p.fragment = true
			p.fragID = uint32(binary.BigEndian.Uint16(b[4:]))
			p.fragOff = int(frag&0x1fff) * 8
			p.fragMore = frag&0x2000 != 0
			p.fragData = b[hl:]
			p.fragNext = p.proto
			if frag&0x1fff != 0 {
				return true // not the first fragment: no transport header
			}
		}
		return decodeTransport(b[hl:], p)
	case 6:
		if len(b) < 40 {
			return false
		}
		pl := int(binary.BigEndian.Uint16(b[4:]))
		if 40+pl < len(b) {
			b = b[:40+pl]
		}
		p.ipLen = max(40+pl, len(b))
		p.truncated = 40+pl > len(b)
		p.src = netip.AddrFrom16([16]byte(b[8:24]))
		p.dst = netip.AddrFrom16([16]byte(b[24:40]))
		return decodeIPv6Headers(b[6], b[40:], p, true)
	}
	return false
}

// decodeIPv6Headers skips IPv6 extension headers (hop-by-hop, routing,
// destination options) from next on and decodes the transport header. A
// fragment header, when frag allows one, marks p as a fragment; the
// transport header is decoded only in the first fragment.
func decodeIPv6Headers(next uint8, b []byte, p *packet, frag bool) bool {
	for i := 0; i < 8; i++ {
		switch next {
		case 0, 43, 60:
			if len(b) < 8 {
				return false
			}
			l := (int(b[1]) + 1) * 8
			if len(b) < l {
				return false
			}
			next = b[0]
			b = b[l:]
			continue
		case 44: // fragment
			if len(b) < 8 || !frag {
				return false
			}
			p.fragment = true
			fo := binary.BigEndian.Uint16(b[2:])
			off := fo &^ 7
			p.fragID = binary.BigEndian.Uint32(b[4:])
			p.fragOff = int(off)
			p.fragMore = fo&1 != 0
			next = b[0]
			b = b[8:]
			p.fragData = b
			p.fragNext = next
			if off != 0 {
				p.proto = next
				return true
			}
			continue
		}
		break
	}
	p.proto = next
	return decodeTransport(b, p)
}

func decodeTransport(b []byte, p *packet) bool {
	switch p.proto {
	case ipTCP:
		if len(b) < 20 {
			p.transportInvalid = true
			return true
		}
		off := int(b[12]>>4) * 4
		if off < 20 || off > len(b) {
			p.transportInvalid = true
			return true
		}
		p.sport = binary.BigEndian.Uint16(b)
		p.dport = binary.BigEndian.Uint16(b[2:])
		p.seq = binary.BigEndian.Uint32(b[4:])
		p.flags = b[13]
		p.payload = b[off:]
	case ipUDP:
		if len(b) < 8 {
			p.transportInvalid = true
			return true
		}
		p.sport = binary.BigEndian.Uint16(b)
		p.dport = binary.BigEndian.Uint16(b[2:])
		ul := int(binary.BigEndian.Uint16(b[4:]))
		if ul >= 8 && ul <= len(b) {
			b = b[:ul]
		}
		p.payload = b[8:]
	}
	return true
}

// flagString renders TCP flags as "SYN,ACK,FIN".
func flagString(f uint8) string {
	names := [...]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}
	s := ""
	for i, n := range names {
		if f&(1<<i) != 0 {
			if s != "" {
				s += ","
			}
			s += n
		}
	}
	return s
}
