package mqtt

import (
	"encoding/binary"
	"strconv"
	"strings"
	"unicode/utf8"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
	"github.com/vigil-iot/vigil/proto/twin"
)

// Kind is the event kind of every MQTT event.
const Kind = "mqtt"

// Packet types, as in the fixed header.
const (
	typeReserved = iota
	typeConnect
	typeConnack
	typePublish
	typePuback
	typePubrec
	typePubrel
	typePubcomp
	typeSubscribe
	typeSuback
	typeUnsubscribe
	typeUnsuback
	typePingreq
	typePingresp
	typeDisconnect
	typeAuth
)

var typeNames = [16]string{"reserved", "connect", "connack", "publish", "puback", "pubrec",
	"pubrel", "pubcomp", "subscribe", "suback", "unsubscribe", "unsuback", "pingreq",
	"pingresp", "disconnect", "auth"}

// typeValues are the typeNames, boxed once for event fields.
var typeValues = func() (t [16]any) {
	for i, n := range typeNames {
		t[i] = n
	}
	return t
}()

// Anomaly names (anomaly.event). They follow Suricata's MQTT event names
// where Suricata has one.
const (
	AnomalyMalformed         = "malformed_traffic"    // cannot be parsed; the connection is no longer decoded
	AnomalyMissingConnect    = "missing_connect"      // CONNACK without a CONNECT
	AnomalyMissingPublish    = "missing_publish"      // PUBACK/PUBREC/PUBREL/PUBCOMP for no pending PUBLISH
	AnomalyMissingSubscribe  = "missing_subscribe"    // SUBACK for no pending SUBSCRIBE
	AnomalyMissingUnsub      = "missing_unsubscribe"  // UNSUBACK for no pending UNSUBSCRIBE
	AnomalyDoubleConnect     = "double_connect"       // a second CONNECT on a connected session
	AnomalyUnintroduced      = "unintroduced_message" // traffic before the CONNECT/CONNACK exchange
	AnomalyInvalidQoS        = "invalid_qos_level"    // QoS 3
	AnomalyMissingMsgID      = "missing_msg_id"       // QoS>0 PUBLISH without a packet identifier
	AnomalyUnassignedType    = "unassigned_msg_type"  // packet type 0 (or AUTH before MQTT 5)
	AnomalyInvalidFlags      = "invalid_flags"        // reserved fixed-header or CONNECT flags set
	AnomalyTooManyPending    = "too_many_transactions"
	AnomalyTooLarge          = "message_too_large" // longer than Config.MaxMessage (not PUBLISH)
	AnomalyTruncated         = "truncated_message" // bytes lost in the middle of a message
	AnomalyInvalidUTF8       = "invalid_utf8"      // a string that is not UTF-8
	AnomalyEmptySubscription = "empty_subscription"
)

// Config tunes the decoder. The zero value uses the defaults.
type Config struct {
	// PayloadPreview is how many bytes of a PUBLISH payload (and of a
	// will message) the event carries in mqtt.payload. Default 256; a
	// negative value keeps none.
	PayloadPreview int
	// MaxMessage is the longest message decoded whole. A longer PUBLISH
	// is decoded from its first MaxMessage bytes (topic, size, preview)
	// and the rest skipped; other longer messages are skipped with a
	// message_too_large anomaly. Default 1 MiB.
	MaxMessage int
	// MaxPending bounds the packet identifiers awaiting an
	// acknowledgement per connection. Default 1024.
	MaxPending int
}

func (c Config) withDefaults() Config {
	if c.PayloadPreview == 0 {
		c.PayloadPreview = 256
	}
	if c.PayloadPreview < 0 {
		c.PayloadPreview = 0
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = 1 << 20
	}
	if c.MaxMessage < 64 {
		c.MaxMessage = 64
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 1024
	}
	return c
}

// Parser decodes one MQTT connection (both directions). Create one per
// connection with New.
type Parser struct {
	cfg       Config
	version   uint8 // 3, 4 or 5; 0 until known
	connected bool  // CONNACK seen for a CONNECT
	connect   bool  // CONNECT seen, not yet acknowledged
	broken    bool  // gave up after malformed traffic
	skip      [2]int
	pending   map[uint16]uint8 // packet id -> packet type awaiting an ack
	// On a connection picked up mid-stream the first bytes may be the
	// middle of a message: each direction searches for a message boundary
	// (synced) before it reports anything.
	synced  [2]bool
	scanned [2]int
	// The last PUBLISH topic: its bytes and its field value.
	lastTopicRaw string
	lastTopic    any
	// The client id of the connection's CONNECT, for twin events.
	clientID string
}

// maxResync bounds the bytes skipped looking for a message boundary.
const maxResync = 64 << 10

// collector keeps the events of a trial decode.
type collector []proto.Event

func (c *collector) Emit(ev proto.Event) { *c = append(*c, ev) }

// plausible reports whether b starts with a fixed header that can begin a
// message: a known type with the flags it allows.
func plausible(b byte, v5 bool) bool {
	t, flags := b>>4, b&0x0f
	switch t {
	case typeReserved:
		return false
	case typeAuth:
		return v5 && flags == 0
	case typePublish:
		return (flags>>1)&3 != 3
	case typePubrel, typeSubscribe, typeUnsubscribe:
		return flags == 2
	}
	return flags == 0
}

var _ proto.StreamParser = (*Parser)(nil)

// New returns a parser for one connection.
func New(cfg Config) *Parser {
	return &Parser{cfg: cfg.withDefaults()}
}

// Version returns the protocol level seen on the connection (3 for 3.1,
// 4 for 3.1.1, 5), or 0 while unknown.
func (p *Parser) Version() uint8 { return p.version }

// Probe reports whether data starts like an MQTT CONNECT packet, to
// recognise MQTT on ports other than 1883 and 8883.
func Probe(data []byte) bool {
	if len(data) < 2 || data[0] != typeConnect<<4 {
		return false
	}
	_, n := varint(data[1:])
	if n <= 0 {
		return false
	}
	b := data[1+n:]
	if len(b) < 8 {
		return false
	}
	l := int(binary.BigEndian.Uint16(b))
	if l != 4 && l != 6 || len(b) < 2+l+1 {
		return false
	}
	name := string(b[2 : 2+l])
	return name == "MQTT" || name == "MQIsdp"
}

// varint reads an MQTT variable byte integer. n is the number of bytes
// read, 0 when more bytes are needed and -1 when the encoding is invalid
// (longer than four bytes).
func varint(b []byte) (v int, n int) {
	mult := 1
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0
		}
		v += int(b[i]&0x7f) * mult
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
		mult *= 128
	}
	return 0, -1
}

// Gap implements proto.StreamParser.
func (p *Parser) Gap(c *proto.Context, n int, out proto.Emitter) {
	if p.broken {
		return
	}
	d := c.Dir & 1
	if p.skip[d] > 0 {
		if n <= p.skip[d] {
			p.skip[d] -= n
			return
		}
	}
	// Lost bytes inside or between messages: the stream cannot be framed
	// again reliably, so stop decoding it.
	p.broken = true
	out.Emit(c.Anomaly(Kind, AnomalyTruncated, "cannot decode after "+strconv.Itoa(n)+" lost bytes "+c.Dir.String()))
}

// Parse implements proto.StreamParser.
func (p *Parser) Parse(c *proto.Context, data []byte, out proto.Emitter) int {
	if p.broken {
		return len(data)
	}
	d := c.Dir & 1
	consumed := 0
	if p.skip[d] > 0 {
		if len(data) <= p.skip[d] {
			p.skip[d] -= len(data)
			return len(data)
		}
		consumed = p.skip[d]
		p.skip[d] = 0
	}
	for consumed < len(data) {
		b := data[consumed:]
		if len(b) < 2 {
			return consumed
		}
		if c.Midstream && !p.synced[d] {
			k, wait := p.resync(c, b, out)
			consumed += k
			if wait || p.broken {
				if p.broken {
					return len(data)
				}
				return consumed
			}
			continue
		}
		rl, n := varint(b[1:])
		if n == 0 {
			return consumed
		}
		if n < 0 {
			p.fail(c, out, "invalid remaining length at byte 1 of a "+typeNames[b[0]>>4]+" header")
			return len(data)
		}
		hl := 1 + n
		total := hl + rl
		if total > p.cfg.MaxMessage {
			if len(b) < p.cfg.MaxMessage {
				return consumed
			}
			if b[0]>>4 == typePublish {
				p.message(c, b[0], rl, b[hl:p.cfg.MaxMessage], out)
			} else {
				out.Emit(c.Anomaly(Kind, AnomalyTooLarge, typeNames[b[0]>>4]+" of "+strconv.Itoa(total)+" bytes skipped"))
			}
			if p.broken {
				return len(data)
			}
			if len(b) >= total {
				consumed += total
				continue
			}
			p.skip[d] = total - len(b)
			return len(data)
		}
		if len(b) < total {
			return consumed
		}
		p.message(c, b[0], rl, b[hl:total], out)
		if p.broken {
			return len(data)
		}
		consumed += total
	}
	return consumed
}

// resync looks for the first message boundary in b on a connection
// picked up mid-stream: the earliest plausible fixed header whose message
// decodes and is followed by the end of the data or another plausible
// header. It returns how many bytes to consume (the skipped bytes and that
// message) and whether it needs more data first (to try a candidate whose
// message is not complete yet).
func (p *Parser) resync(c *proto.Context, b []byte, out proto.Emitter) (int, bool) {
	d := c.Dir & 1
	v5 := p.version == 5
	for i := 0; i+1 < len(b); i++ {
		if p.scanned[d]+i > maxResync {
			p.fail(c, out, "no message boundary in the first "+strconv.Itoa(maxResync)+" bytes of a connection picked up mid-stream")
			return 0, false
		}
		if !plausible(b[i], v5) {
			continue
		}
		rl, n := varint(b[i+1:])
		total := 1 + n + rl
		if n < 0 || n > 0 && total > p.cfg.MaxMessage {
			continue
		}
		if n == 0 || i+total > len(b) {
			// The earliest candidate is tried first: wait for its end.
			p.scanned[d] += i
			return i, true
		}
		if i+total < len(b) && !plausible(b[i+total], v5) {
			continue
		}
		var trial collector
		version, connected, connect := p.version, p.connected, p.connect
		p.message(c, b[i], rl, b[i+1+n:i+total], &trial)
		if p.broken {
			p.broken = false
			p.version, p.connected, p.connect = version, connected, connect
			continue
		}
		p.synced[d] = true
		for _, ev := range trial {
			out.Emit(ev)
		}
		return i + total, false
	}
	p.scanned[d] += len(b) - 1
	return len(b) - 1, true
}

func (p *Parser) fail(c *proto.Context, out proto.Emitter, detail string) {
	p.broken = true
	out.Emit(c.Anomaly(Kind, AnomalyMalformed, detail))
}

// reader is a bounds-checked cursor over one message body. Reads past the
// end set bad and return zero values.
type reader struct {
	b   []byte
	off int
	bad bool
}

func (r *reader) left() int { return len(r.b) - r.off }

func (r *reader) u8() byte {
	if r.off+1 > len(r.b) {
		r.bad = true
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *reader) u16() uint16 {
	if r.off+2 > len(r.b) {
		r.bad = true
		return 0
	}
	r.off += 2
	return binary.BigEndian.Uint16(r.b[r.off-2:])
}

func (r *reader) u32() uint32 {
	if r.off+4 > len(r.b) {
		r.bad = true
		return 0
	}
	r.off += 4
	return binary.BigEndian.Uint32(r.b[r.off-4:])
}

// bytes returns a length-prefixed byte string without copying.
func (r *reader) bytes() []byte {
	l := int(r.u16())
	if r.bad || r.off+l > len(r.b) {
		r.bad = true
		return nil
	}
	r.off += l
	return r.b[r.off-l : r.off]
}

func (r *reader) vint() int {
	v, n := varint(r.b[r.off:])
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.off += n
	return v
}

// text turns bytes from the wire into a valid UTF-8 string of at most max
// bytes (max < 0: no limit).
func text(b []byte, max int) string {
	if max >= 0 && len(b) > max {
		b = b[:max]
	}
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// topicValue returns a PUBLISH topic as an event field value. A device
// publishes to the same topics again and again: the last topic of the
// connection is kept, boxed, and reused when the next one is the same.
func (p *Parser) topicValue(topic []byte) any {
	if len(topic) > 1024 {
		return text(topic, 1024)
	}
	if p.lastTopic == nil || string(topic) != p.lastTopicRaw {
		p.lastTopicRaw = string(topic)
		p.lastTopic = text(topic, 1024)
	}
	return p.lastTopic
}

func qosOK(q byte) bool { return q <= 2 }

// message decodes one message body. body may be a prefix of the message
// when rl is larger than len(body) (a PUBLISH longer than MaxMessage).
func (p *Parser) message(c *proto.Context, h byte, rl int, body []byte, out proto.Emitter) {
	t := h >> 4
	flags := h & 0x0f
	qos := (flags >> 1) & 3
	n := 12
	if t == typeConnect {
		n = 20 // flags, will, user: the most fields of any type
	}
	ev := c.NewEvent(Kind, typeNames[t], n)
	f := &ev.Fields
	f.Set("mqtt.type", typeValues[t])
	f.Set("mqtt.qos", proto.Num(float64(qos)))
	f.Set("mqtt.retain", flags&1 != 0)
	f.Set("mqtt.dup", flags&8 != 0)
	f.Set("mqtt.length", proto.Num(float64(rl)))
	r := &reader{b: body}
	v5 := p.version == 5
	var tw proto.Event // the twin update a PUBLISH carries, emitted after it
	twOK := false

	// Fixed-header flags are reserved except for PUBLISH.
	switch t {
	case typePubrel, typeSubscribe, typeUnsubscribe:
		if flags != 2 {
			out.Emit(c.Anomaly(Kind, AnomalyInvalidFlags, typeNames[t]+" fixed header flags "+strconv.Itoa(int(flags))+", want 2"))
		}
	case typePublish:
	default:
		if flags != 0 {
			out.Emit(c.Anomaly(Kind, AnomalyInvalidFlags, typeNames[t]+" fixed header flags "+strconv.Itoa(int(flags))+", want 0"))
		}
	}
	unintroduced := func() {
		if !p.connected && !c.Midstream {
			out.Emit(c.Anomaly(Kind, AnomalyUnintroduced, typeNames[t]+" before the CONNECT/CONNACK exchange"))
		}
	}

	switch t {
	case typeConnect:
		name := r.bytes()
		ver := r.u8()
		cf := r.u8()
		keep := r.u16()
		if r.bad {
			p.fail(c, out, "connect variable header truncated")
			return
		}
		if ver < 3 || ver > 5 {
			p.fail(c, out, "connect protocol level "+strconv.Itoa(int(ver))+" unknown")
			return
		}
		p.version, v5 = ver, ver == 5
		f.SetStr("mqtt.protocol_name", text(name, 64))
		f.Set("mqtt.protocol_version", proto.Num(float64(ver)))
		f.Set("mqtt.flags.username", cf&0x80 != 0)
		f.Set("mqtt.flags.password", cf&0x40 != 0)
		f.Set("mqtt.flags.will_retain", cf&0x20 != 0)
		f.Set("mqtt.flags.will", cf&0x04 != 0)
		f.Set("mqtt.flags.clean_session", cf&0x02 != 0)
		f.Set("mqtt.keep_alive", proto.Num(float64(keep)))
		if cf&0x01 != 0 {
			out.Emit(c.Anomaly(Kind, AnomalyInvalidFlags, "connect reserved flag set"))
		}
		if v5 && !p.properties(r, f, "mqtt.properties.") {
			p.fail(c, out, "connect properties overrun the message")
			return
		}
		cid := text(r.bytes(), 256)
		f.SetStr("mqtt.client_id", cid)
		if !r.bad {
			p.clientID = cid
		}
		if cf&0x04 != 0 {
			wq := (cf >> 3) & 3
			f.Set("mqtt.will.qos", proto.Num(float64(wq)))
			if !qosOK(wq) {
				out.Emit(c.Anomaly(Kind, AnomalyInvalidQoS, "connect will qos 3"))
			}
			if v5 && !p.properties(r, f, "mqtt.will.properties.") {
				p.fail(c, out, "connect will properties overrun the message")
				return
			}
			f.SetStr("mqtt.will.topic", text(r.bytes(), 1024))
			wm := r.bytes()
			f.Set("mqtt.will.size", proto.Num(float64(len(wm))))
			f.SetStr("mqtt.will.message", text(wm, p.cfg.PayloadPreview))
		} else if cf&0x38 != 0 {
			out.Emit(c.Anomaly(Kind, AnomalyInvalidFlags, "connect will qos or retain without will"))
		}
		if cf&0x80 != 0 {
			f.SetStr("mqtt.username", text(r.bytes(), 256))
		}
		if cf&0x40 != 0 {
			r.bytes() // the password is never kept
			f.Set("mqtt.password_present", !r.bad)
		} else {
			f.Set("mqtt.password_present", false)
		}
		if r.bad {
			p.fail(c, out, "connect payload truncated")
			return
		}
		if p.connected || p.connect {
			out.Emit(c.Anomaly(Kind, AnomalyDoubleConnect, "second connect on one connection"))
		}
		p.connect = true
	case typeConnack:
		if p.version == 0 && len(body) > 2 {
			p.version, v5 = 5, true // only MQTT 5 has properties here
		}
		sp := r.u8()
		code := r.u8()
		if r.bad {
			p.fail(c, out, "connack truncated")
			return
		}
		f.Set("mqtt.session_present", sp&1 != 0)
		f.Set("mqtt.reason_code", proto.Num(float64(code)))
		f.SetStr("mqtt.reason", reasonName(code, v5, true))
		if code == 0 {
			ev.Outcome = vigil.OutcomeSuccess
		} else {
			ev.Outcome = vigil.OutcomeFailure
		}
		if v5 && r.left() > 0 && !p.properties(r, f, "mqtt.properties.") {
			p.fail(c, out, "connack properties overrun the message")
			return
		}
		if !p.connect && !c.Midstream {
			out.Emit(c.Anomaly(Kind, AnomalyMissingConnect, "connack without a connect"))
		}
		p.connect = false
		p.connected = code == 0 || c.Midstream || p.connected
	case typePublish:
		topic := r.bytes()
		if r.bad {
			p.fail(c, out, "publish topic truncated")
			return
		}
		f.Set("mqtt.topic", p.topicValue(topic))
		if !utf8.Valid(topic) {
			out.Emit(c.Anomaly(Kind, AnomalyInvalidUTF8, "publish topic"))
		}
		if !qosOK(qos) {
			out.Emit(c.Anomaly(Kind, AnomalyInvalidQoS, "publish qos 3"))
		}
		if qos > 0 {
			if r.left() < 2 {
				out.Emit(c.Anomaly(Kind, AnomalyMissingMsgID, "publish qos "+strconv.Itoa(int(qos))+" without a packet identifier"))
			} else {
				id := r.u16()
				f.Set("mqtt.message_id", proto.Num(float64(id)))
				p.await(c, out, id, typePublish)
			}
		}
		if v5 && !p.properties(r, f, "mqtt.properties.") {
			p.fail(c, out, "publish properties overrun the message")
			return
		}
		size := rl - r.off
		if size < 0 {
			size = 0
		}
		payload := r.b[r.off:]
		f.Set("mqtt.payload_size", proto.Num(float64(size)))
		f.SetStr("mqtt.payload", text(payload, p.cfg.PayloadPreview))
		f.Set("mqtt.payload_truncated", size > p.cfg.PayloadPreview)
		unintroduced()
		if len(topic) > 0 && topic[0] == '$' {
			if tp, ok := twin.ParseTopic(string(topic)); ok {
				tw, twOK = p.twinEvent(c, tp, topic, payload, size), true
			}
		}
	case typePuback, typePubrec, typePubrel, typePubcomp:
		if p.version == 0 && rl > 2 {
			p.version, v5 = 5, true // only MQTT 5 has a reason code here
		}
		id := r.u16()
		if r.bad {
			p.fail(c, out, typeNames[t]+" without a packet identifier")
			return
		}
		f.Set("mqtt.message_id", proto.Num(float64(id)))
		if v5 && r.left() == 0 {
			f.Set("mqtt.reason_code", float64(0)) // absent means success
			f.SetStr("mqtt.reason", "success")
		}
		if r.left() > 0 {
			code := r.u8()
			f.Set("mqtt.reason_code", proto.Num(float64(code)))
			f.SetStr("mqtt.reason", reasonName(code, true, false))
			if r.left() > 0 && !p.properties(r, f, "mqtt.properties.") {
				p.fail(c, out, typeNames[t]+" properties overrun the message")
				return
			}
		}
		switch t {
		case typePubrec, typePubrel:
			if _, ok := p.pending[id]; !ok && !c.Midstream {
				out.Emit(c.Anomaly(Kind, AnomalyMissingPublish, typeNames[t]+" for packet "+strconv.Itoa(int(id))+" with no pending publish"))
			}
		default:
			p.ack(c, out, id, typePublish, AnomalyMissingPublish)
		}
		unintroduced()
	case typeSubscribe, typeUnsubscribe:
		id := r.u16()
		if v5 && !p.properties(r, f, "mqtt.properties.") {
			p.fail(c, out, typeNames[t]+" properties overrun the message")
			return
		}
		var topics, opts []string
		for !r.bad && r.left() > 0 {
			tf := r.bytes()
			if r.bad {
				break
			}
			topics = append(topics, text(tf, 1024))
			if t == typeSubscribe {
				o := r.u8()
				if !qosOK(o & 3) {
					out.Emit(c.Anomaly(Kind, AnomalyInvalidQoS, "subscribe requested qos 3"))
				}
				opts = append(opts, strconv.Itoa(int(o&3)))
			}
		}
		if r.bad {
			p.fail(c, out, typeNames[t]+" truncated")
			return
		}
		f.Set("mqtt.message_id", proto.Num(float64(id)))
		f.Set("mqtt.topics", topics)
		if t == typeSubscribe {
			f.Set("mqtt.topics_qos", opts)
		}
		if len(topics) == 0 {
			out.Emit(c.Anomaly(Kind, AnomalyEmptySubscription, typeNames[t]+" without a topic filter"))
		}
		p.await(c, out, id, t)
		unintroduced()
	case typeSuback, typeUnsuback:
		id := r.u16()
		if r.bad {
			p.fail(c, out, typeNames[t]+" without a packet identifier")
			return
		}
		f.Set("mqtt.message_id", proto.Num(float64(id)))
		if v5 && !p.properties(r, f, "mqtt.properties.") {
			p.fail(c, out, typeNames[t]+" properties overrun the message")
			return
		}
		if r.left() > 0 {
			codes := make([]string, 0, r.left())
			for _, b := range r.b[r.off:] {
				codes = append(codes, strconv.Itoa(int(b)))
			}
			f.Set("mqtt.reason_codes", codes)
		}
		if t == typeSuback {
			p.ack(c, out, id, typeSubscribe, AnomalyMissingSubscribe)
		} else {
			p.ack(c, out, id, typeUnsubscribe, AnomalyMissingUnsub)
		}
		unintroduced()
	case typePingreq, typePingresp:
		unintroduced()
	case typeDisconnect, typeAuth:
		if p.version == 0 && (rl > 0 || t == typeAuth) {
			p.version, v5 = 5, true // only MQTT 5 has a body here, or AUTH
		}
		if t == typeAuth && p.version != 0 && !v5 {
			f.SetStr("mqtt.type", "unassigned")
			out.Emit(c.Anomaly(Kind, AnomalyUnassignedType, "auth packet before mqtt 5"))
			return
		}
		if v5 && r.left() == 0 {
			f.Set("mqtt.reason_code", float64(0)) // absent means success
			f.SetStr("mqtt.reason", "success")
		}
		if r.left() > 0 {
			code := r.u8()
			f.Set("mqtt.reason_code", proto.Num(float64(code)))
			f.SetStr("mqtt.reason", reasonName(code, true, false))
			if r.left() > 0 && !p.properties(r, f, "mqtt.properties.") {
				p.fail(c, out, typeNames[t]+" properties overrun the message")
				return
			}
		}
		unintroduced()
	default:
		out.Emit(c.Anomaly(Kind, AnomalyUnassignedType, "packet type 0"))
		return
	}
	if p.version != 0 {
		f.Set("mqtt.protocol_version", proto.Num(float64(p.version)))
	}
	out.Emit(ev)
	if twOK {
		out.Emit(tw)
	}
}

// twinEvent makes the twin event (kind twin, action update) of a PUBLISH
// on a shadow or twin update topic: the platform, the thing (from the
// topic for AWS; the connection's client id for Azure, whose device is
// the client), the numeric parameters of the document as
// twin.desired.<path> and twin.reported.<path>, and who published it
// (mqtt.client_id, when the publish went from a client to the broker).
// The document is read whole up to twin.MaxPayload (not only the
// preview); a document cut short (a message longer than MaxMessage, or
// one that is not JSON) sets twin.truncated or twin.error.
func (p *Parser) twinEvent(c *proto.Context, tp twin.Topic, topic, payload []byte, size int) proto.Event {
	ev := c.NewEvent(twin.Kind, "update", 12)
	ev.Category = "configuration"
	f := &ev.Fields
	f.SetStr("mqtt.topic", text(topic, 1024))
	f.SetStr("twin.direction", c.Dir.String())
	if p.clientID != "" && c.Dir == proto.ToServer {
		f.SetStr("mqtt.client_id", p.clientID)
	}
	complete := len(payload) >= size
	if len(payload) > size {
		payload = payload[:size]
	}
	thing := ""
	if tp.Platform == twin.PlatformAzure {
		thing = p.clientID
	}
	ev.DeviceID = twin.SetFields(f, tp, thing, payload, complete)
	return ev
}

// await records a packet identifier awaiting an acknowledgement.
func (p *Parser) await(c *proto.Context, out proto.Emitter, id uint16, t uint8) {
	if p.pending == nil {
		p.pending = make(map[uint16]uint8)
	}
	if len(p.pending) >= p.cfg.MaxPending {
		out.Emit(c.Anomaly(Kind, AnomalyTooManyPending, strconv.Itoa(len(p.pending))+" unacknowledged packets"))
		clear(p.pending)
	}
	p.pending[id] = t
}

// ack completes a pending packet identifier, or reports an anomaly.
func (p *Parser) ack(c *proto.Context, out proto.Emitter, id uint16, t uint8, missing string) {
	if got, ok := p.pending[id]; ok && got == t {
		delete(p.pending, id)
		return
	}
	if !c.Midstream {
		out.Emit(c.Anomaly(Kind, missing, "acknowledgement of packet "+strconv.Itoa(int(id))+" with none pending"))
	}
}

// reasonName names an MQTT return or reason code.
func reasonName(code byte, v5, connack bool) string {
	if connack && !v5 {
		switch code {
		case 0:
			return "accepted"
		case 1:
			return "unacceptable_protocol_version"
		case 2:
			return "identifier_rejected"
		case 3:
			return "server_unavailable"
		case 4:
			return "bad_username_or_password"
		case 5:
			return "not_authorized"
		}
		return "unknown"
	}
	if n, ok := reasonNames[code]; ok {
		return n
	}
	return "unknown"
}

var reasonNames = map[byte]string{
	0x00: "success", 0x01: "granted_qos_1", 0x02: "granted_qos_2", 0x04: "disconnect_with_will",
	0x10: "no_matching_subscribers", 0x11: "no_subscription_existed", 0x18: "continue_authentication",
	0x19: "re_authenticate", 0x80: "unspecified_error", 0x81: "malformed_packet",
	0x82: "protocol_error", 0x83: "implementation_specific_error",
	0x84: "unsupported_protocol_version", 0x85: "client_identifier_not_valid",
	0x86: "bad_username_or_password", 0x87: "not_authorized", 0x88: "server_unavailable",
	0x89: "server_busy", 0x8a: "banned", 0x8b: "server_shutting_down",
	0x8c: "bad_authentication_method", 0x8d: "keep_alive_timeout", 0x8e: "session_taken_over",
	0x8f: "topic_filter_invalid", 0x90: "topic_name_invalid", 0x91: "packet_identifier_in_use",
	0x92: "packet_identifier_not_found", 0x93: "receive_maximum_exceeded",
	0x94: "topic_alias_invalid", 0x95: "packet_too_large", 0x96: "message_rate_too_high",
	0x97: "quota_exceeded", 0x98: "administrative_action", 0x99: "payload_format_invalid",
	0x9a: "retain_not_supported", 0x9b: "qos_not_supported", 0x9c: "use_another_server",
	0x9d: "server_moved", 0x9e: "shared_subscriptions_not_supported",
	0x9f: "connection_rate_exceeded", 0xa0: "maximum_connect_time",
	0xa1: "subscription_identifiers_not_supported", 0xa2: "wildcard_subscriptions_not_supported",
}

// Property value types.
const (
	pByte = iota
	pU16
	pU32
	pVarint
	pString
	pBinary
	pPair
)

type propDef struct {
	name string
	typ  uint8
}

var props = [43]propDef{
	1: {"payload_format_indicator", pByte}, 2: {"message_expiry_interval", pU32},
	3: {"content_type", pString}, 8: {"response_topic", pString}, 9: {"correlation_data", pBinary},
	11: {"subscription_identifier", pVarint}, 17: {"session_expiry_interval", pU32},
	18: {"assigned_client_identifier", pString}, 19: {"server_keep_alive", pU16},
	21: {"authentication_method", pString}, 22: {"authentication_data", pBinary},
	23: {"request_problem_information", pByte}, 24: {"will_delay_interval", pU32},
	25: {"request_response_information", pByte}, 26: {"response_information", pString},
	28: {"server_reference", pString}, 31: {"reason_string", pString},
	33: {"receive_maximum", pU16}, 34: {"topic_alias_maximum", pU16}, 35: {"topic_alias", pU16},
	36: {"maximum_qos", pByte}, 37: {"retain_available", pByte}, 38: {"user", pPair},
	39: {"maximum_packet_size", pU32}, 40: {"wildcard_subscription_available", pByte},
	41: {"subscription_identifier_available", pByte}, 42: {"shared_subscription_available", pByte},
}

// properties decodes an MQTT 5 property list into fields under prefix.
// User properties become prefix+"user."+key. Authentication data is a
// credential: only its size is kept. It returns false when the list is
// malformed (overruns the message, unknown identifier).
func (p *Parser) properties(r *reader, f *proto.Fields, prefix string) bool {
	l := r.vint()
	if r.bad || l > r.left() {
		r.bad = true
		return false
	}
	end := r.off + l
	sub := &reader{b: r.b[:end], off: r.off}
	for sub.off < end {
		id := sub.vint()
		if sub.bad || id <= 0 || id >= len(props) || props[id].name == "" {
			return false
		}
		d := props[id]
		key := prefix + d.name
		switch d.typ {
		case pByte:
			f.Set(key, proto.Num(float64(sub.u8())))
		case pU16:
			f.Set(key, proto.Num(float64(sub.u16())))
		case pU32:
			f.Set(key, proto.Num(float64(sub.u32())))
		case pVarint:
			f.Set(key, proto.Num(float64(sub.vint())))
		case pString:
			f.SetStr(key, text(sub.bytes(), 1024))
		case pBinary:
			b := sub.bytes()
			if id == 22 {
				f.Set(prefix+"authentication_data_size", proto.Num(float64(len(b))))
			} else {
				f.SetStr(key, text(b, 256))
			}
		case pPair:
			k := sub.bytes()
			v := sub.bytes()
			if !sub.bad {
				f.SetStr(prefix+"user."+text(k, 128), text(v, 1024))
			}
		}
		if sub.bad {
			return false
		}
	}
	r.off = end
	return true
}
