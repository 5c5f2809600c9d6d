package zigbee

import (
	"encoding/binary"
	"strconv"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

// Kind is the event kind of every 802.15.4/Zigbee event.
const Kind = "zigbee"

// Anomaly names (anomaly.event).
const (
	AnomalyMalformed  = "malformed_frame"      // truncated or inconsistent header
	AnomalyKeyInClear = "network_key_in_clear" // Transport-Key readable on the air
	// AnomalyDefaultLinkKey: a network key transported under the
	// well-known default link key ("ZigBeeAlliance09"), so readable by
	// anyone who captured the join.
	AnomalyDefaultLinkKey = "network_key_under_default_link_key"
	AnomalyReservedFrame  = "reserved_frame_type"
)

// Decoder decodes 802.15.4 frames (without FCS).
type Decoder struct{}

var _ proto.DatagramParser = Decoder{}

var macFrameTypes = [8]string{"beacon", "data", "ack", "mac_command", "reserved", "multipurpose", "fragment", "extended"}

var macCommands = map[byte]string{1: "association_request", 2: "association_response",
	3: "disassociation_notification", 4: "data_request", 5: "pan_id_conflict", 6: "orphan_notification",
	7: "beacon_request", 8: "coordinator_realignment", 9: "gts_request"}

var apsCommands = map[byte]string{1: "skke_1", 2: "skke_2", 3: "skke_3", 4: "skke_4", 5: "transport_key",
	6: "update_device", 7: "remove_device", 8: "request_key", 9: "switch_key", 14: "tunnel",
	15: "verify_key", 16: "confirm_key"}

var keyTypes = map[byte]string{0: "trust_center_master", 1: "network", 2: "application_master",
	3: "application_link", 4: "trust_center_link", 5: "high_security_network"}

var nwkKeyIDs = [4]string{"data", "network", "key_transport", "key_load"}

func short(v uint16) string {
	const h = "0123456789abcdef"
	return "0x" + string([]byte{h[v>>12], h[v>>8&15], h[v>>4&15], h[v&15]})
}

// ext formats a little-endian 64-bit address as 00:11:...:77 (most
// significant byte first, as Wireshark shows it).
func ext(b []byte) string {
	const h = "0123456789abcdef"
	out := make([]byte, 0, 23)
	for i := 7; i >= 0; i-- {
		out = append(out, h[b[i]>>4], h[b[i]&15])
		if i > 0 {
			out = append(out, ':')
		}
	}
	return string(out)
}

// ParseDatagram implements proto.DatagramParser: b is one 802.15.4 frame
// without its FCS.
func (Decoder) ParseDatagram(c *proto.Context, b []byte, out proto.Emitter) {
	anomaly := func(name, detail string) {
		ev := c.Anomaly(Kind, name, detail)
		ev.Network = nil
		if name == AnomalyKeyInClear || name == AnomalyDefaultLinkKey {
			ev.Severity = vigil.SeverityHigh
		}
		out.Emit(ev)
	}
	if len(b) < 3 {
		anomaly(AnomalyMalformed, "frame of "+strconv.Itoa(len(b))+" bytes")
		return
	}
	fcf := binary.LittleEndian.Uint16(b)
	ftype := fcf & 7
	if ftype == 2 {
		return // acknowledgement
	}
	ev := c.NewEvent(Kind, macFrameTypes[ftype], 16)
	ev.Network = nil
	f := &ev.Fields
	f.SetStr("zigbee.mac.frame_type", macFrameTypes[ftype])
	f.Set("zigbee.mac.security", fcf&0x08 != 0)
	f.Set("zigbee.mac.seq", proto.Num(float64(b[2])))
	dstMode, srcMode := (fcf>>10)&3, (fcf>>14)&3
	panComp := fcf&0x40 != 0
	off := 3
	need := func(n int) bool {
		if off+n > len(b) {
			anomaly(AnomalyMalformed, "mac header truncated at byte "+strconv.Itoa(off))
			return false
		}
		return true
	}
	var dstPAN uint16
	if dstMode != 0 {
		if !need(2) {
			return
		}
		dstPAN = binary.LittleEndian.Uint16(b[off:])
		f.SetStr("zigbee.mac.dst_pan", short(dstPAN))
		off += 2
	}
	switch dstMode {
	case 2:
		if !need(2) {
			return
		}
		f.SetStr("zigbee.mac.dst", short(binary.LittleEndian.Uint16(b[off:])))
		off += 2
	case 3:
		if !need(8) {
			return
		}
		f.SetStr("zigbee.mac.dst", ext(b[off:]))
		off += 8
	case 1:
		anomaly(AnomalyMalformed, "reserved destination address mode")
		return
	}
	if srcMode != 0 {
		if !panComp {
			if !need(2) {
				return
			}
			f.SetStr("zigbee.mac.src_pan", short(binary.LittleEndian.Uint16(b[off:])))
			off += 2
		} else if dstMode != 0 {
			f.SetStr("zigbee.mac.src_pan", short(dstPAN))
		}
	}
	switch srcMode {
	case 2:
		if !need(2) {
			return
		}
		f.SetStr("zigbee.mac.src", short(binary.LittleEndian.Uint16(b[off:])))
		off += 2
	case 3:
		if !need(8) {
			return
		}
		f.SetStr("zigbee.mac.src", ext(b[off:]))
		off += 8
	case 1:
		anomaly(AnomalyMalformed, "reserved source address mode")
		return
	}
	if fcf&0x08 != 0 {
		// MAC-layer security: the payload is encrypted.
		out.Emit(ev)
		return
	}
	var macSrc []byte
	if srcMode == 3 {
		macSrc = b[off-8 : off]
	}
	p := b[off:]
	switch ftype {
	case 3:
		if len(p) > 0 {
			if n, ok := macCommands[p[0]]; ok {
				f.SetStr("zigbee.mac.command", n)
			} else {
				f.SetStr("zigbee.mac.command", strconv.Itoa(int(p[0])))
			}
		}
	case 0:
		if len(p) >= 2 {
			sf := binary.LittleEndian.Uint16(p)
			f.Set("zigbee.mac.association_permit", sf&0x8000 != 0)
			f.Set("zigbee.mac.pan_coordinator", sf&0x4000 != 0)
		}
	case 1:
		nwk(p, macSrc, f, anomaly)
	case 4:
		anomaly(AnomalyReservedFrame, "mac frame type 4")
	}
	out.Emit(ev)
}

// nwk decodes a Zigbee NWK frame (and its APS frame when not encrypted).
func nwk(b, macSrc []byte, f *proto.Fields, anomaly func(name, detail string)) {
	src := macSrc
	if len(b) < 8 {
		return // not Zigbee NWK (or too short to tell)
	}
	fcf := binary.LittleEndian.Uint16(b)
	ver := (fcf >> 2) & 0xf
	if ver < 1 || ver > 3 {
		return // not Zigbee
	}
	ft := fcf & 3
	f.Set("zigbee.nwk.frame_type", map[uint16]string{0: "data", 1: "command", 2: "reserved", 3: "inter_pan"}[ft])
	f.Set("zigbee.nwk.version", proto.Num(float64(ver)))
	f.SetStr("zigbee.nwk.dst", short(binary.LittleEndian.Uint16(b[2:])))
	f.SetStr("zigbee.nwk.src", short(binary.LittleEndian.Uint16(b[4:])))
	f.Set("zigbee.nwk.radius", proto.Num(float64(b[6])))
	f.Set("zigbee.nwk.seq", proto.Num(float64(b[7])))
	off := 8
	if fcf&0x0800 != 0 {
		if off+8 > len(b) {
			anomaly(AnomalyMalformed, "nwk destination ieee address truncated")
			return
		}
		f.SetStr("zigbee.nwk.dst_ieee", ext(b[off:]))
		off += 8
	}
	if fcf&0x1000 != 0 {
		if off+8 > len(b) {
			anomaly(AnomalyMalformed, "nwk source ieee address truncated")
			return
		}
		f.SetStr("zigbee.nwk.src_ieee", ext(b[off:]))
		src = b[off : off+8]
		off += 8
	}
	if fcf&0x0100 != 0 {
		off++ // multicast control
	}
	if fcf&0x0400 != 0 {
		if off+2 > len(b) {
			anomaly(AnomalyMalformed, "nwk source route truncated")
			return
		}
		off += 2 + 2*int(b[off])
	}
	if off > len(b) {
		anomaly(AnomalyMalformed, "nwk header longer than the frame")
		return
	}
	secure := fcf&0x0200 != 0
	f.Set("zigbee.nwk.security", secure)
	if secure {
		aux(b[off:], f, "zigbee.nwk.", anomaly)
		return // encrypted with the network key
	}
	if ft != 0 {
		return
	}
	aps(b[off:], src, f, anomaly)
}

// aux decodes a Zigbee auxiliary security header.
func aux(b []byte, f *proto.Fields, pre string, anomaly func(name, detail string)) int {
	if len(b) < 5 {
		anomaly(AnomalyMalformed, pre+"security header truncated")
		return -1
	}
	sc := b[0]
	kid := (sc >> 3) & 3
	f.SetStr(pre+"key_id", nwkKeyIDs[kid])
	f.Set(pre+"frame_counter", proto.Num(float64(binary.LittleEndian.Uint32(b[1:]))))
	off := 5
	if sc&0x20 != 0 {
		if off+8 > len(b) {
			anomaly(AnomalyMalformed, pre+"security source address truncated")
			return -1
		}
		f.SetStr(pre+"security_source", ext(b[off:]))
		off += 8
	}
	if kid == 1 {
		if off+1 > len(b) {
			anomaly(AnomalyMalformed, pre+"key sequence number truncated")
			return -1
		}
		f.Set(pre+"key_seq", proto.Num(float64(b[off])))
		off++
	}
	return off
}

// aps decodes an APS frame carried in a NWK data frame.
func aps(b, src []byte, f *proto.Fields, anomaly func(name, detail string)) {
	if len(b) < 2 {
		return
	}
	fc := b[0]
	ft := fc & 3
	mode := (fc >> 2) & 3
	f.SetStr("zigbee.aps.frame_type", [4]string{"data", "command", "ack", "inter_pan"}[ft])
	f.SetStr("zigbee.aps.delivery", [4]string{"unicast", "indirect", "broadcast", "group"}[mode])
	secure := fc&0x20 != 0
	f.Set("zigbee.aps.security", secure)
	off := 1
	switch ft {
	case 0, 2:
		if mode != 3 && ft == 0 || mode == 0 && ft == 2 {
			if off+1 > len(b) {
				return
			}
			f.Set("zigbee.aps.dst_endpoint", proto.Num(float64(b[off])))
			off++
		}
		if mode == 3 {
			if off+2 > len(b) {
				return
			}
			f.SetStr("zigbee.aps.group", short(binary.LittleEndian.Uint16(b[off:])))
			off += 2
		}
		if off+5 > len(b) {
			anomaly(AnomalyMalformed, "aps header truncated")
			return
		}
		f.SetStr("zigbee.aps.cluster_id", short(binary.LittleEndian.Uint16(b[off:])))
		f.SetStr("zigbee.aps.profile_id", short(binary.LittleEndian.Uint16(b[off+2:])))
		f.Set("zigbee.aps.src_endpoint", proto.Num(float64(b[off+4])))
		off += 5
		if off < len(b) {
			f.Set("zigbee.aps.counter", proto.Num(float64(b[off])))
		}
	case 1:
		if off+1 > len(b) {
			anomaly(AnomalyMalformed, "aps command truncated")
			return
		}
		f.Set("zigbee.aps.counter", proto.Num(float64(b[off])))
		off++
		if secure {
			n := aux(b[off:], f, "zigbee.aps.", anomaly)
			if n < 0 {
				return
			}
			// Encrypted with a link key: try the well-known default one.
			if plain, ok := decryptAPS(b, off, n, src); ok {
				f.SetStr("zigbee.aps.decrypted_with", "default_link_key")
				apsCommand(plain, f, anomaly, AnomalyDefaultLinkKey)
			}
			return
		}
		apsCommand(b[off:], f, anomaly, AnomalyKeyInClear)
	}
}

// apsCommand decodes an APS command (id and payload) read in clear, or
// decrypted; a Transport-Key of a network key raises keyAnomaly.
func apsCommand(b []byte, f *proto.Fields, anomaly func(name, detail string), keyAnomaly string) {
	if len(b) < 1 {
		anomaly(AnomalyMalformed, "aps command id missing")
		return
	}
	cmd := b[0]
	off := 1
	name, ok := apsCommands[cmd]
	if !ok {
		name = strconv.Itoa(int(cmd))
	}
	f.SetStr("zigbee.aps.command", name)
	if cmd == 5 && off < len(b) {
		kt := b[off]
		ktn, ok := keyTypes[kt]
		if !ok {
			ktn = strconv.Itoa(int(kt))
		}
		f.SetStr("zigbee.aps.key_type", ktn)
		f.Set("zigbee.aps.key_in_clear", true)
		if off+1+16 > len(b) {
			anomaly(AnomalyMalformed, "transport-key truncated")
			return
		}
		if kt == 1 || kt == 5 {
			how := "without nwk or aps encryption"
			if keyAnomaly == AnomalyDefaultLinkKey {
				how = "under the well-known default link key ZigBeeAlliance09"
			}
			anomaly(keyAnomaly, "transport-key of a "+ktn+" key sent "+how)
		}
	}
}

// decryptAPS tries the well-known link key on an APS frame b whose
// auxiliary security header starts at aux and is n bytes long; src is the
// sender's extended address (as on the air) when the header does not
// carry it.
func decryptAPS(b []byte, aux, n int, src []byte) ([]byte, bool) {
	sc := b[aux]
	if sc&0x20 != 0 {
		src = b[aux+5 : aux+13]
	}
	if len(src) != 8 {
		return nil, false
	}
	var key [16]byte
	switch (sc >> 3) & 3 {
	case 0:
		key = WellKnownLinkKey
	case 2:
		key = keyTransportKey(WellKnownLinkKey)
	case 3:
		key = keyLoadKey(WellKnownLinkKey)
	default:
		return nil, false // the network key: not known
	}
	level5 := sc&^7 | 5 // the level on the air is 0; CCM* uses the NIB's, 5
	// Nonce: source address and frame counter in their on-air (little
	// endian) order, then the security control with level 5 (as
	// Wireshark builds it; checked against tshark in the tests).
	var nonce [13]byte
	copy(nonce[:8], src)
	copy(nonce[8:12], b[aux+1:aux+5])
	nonce[12] = level5
	aad := append([]byte{}, b[:aux+n]...)
	aad[aux] = level5
	return ccmStar(key, nonce, aad, b[aux+n:], true)
}
