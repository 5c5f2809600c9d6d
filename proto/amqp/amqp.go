package amqp

import (
	"bytes"
	"encoding/binary"
	"strconv"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

// Kind is the event kind of every AMQP event.
const Kind = "amqp"

// Anomaly names (anomaly.event).
const (
	AnomalyMalformed   = "malformed_traffic"   // bad frame; decoding stops
	AnomalyFrameEnd    = "invalid_frame_end"   // frame not ended by 0xCE
	AnomalyFrameSize   = "frame_too_large"     // over 16 MiB
	AnomalyBadArgs     = "invalid_method_args" // method arguments overrun the frame
	AnomalyUnsupported = "unsupported_protocol"
)

const maxFrame = 16 << 20

// Parser decodes one AMQP connection.
type Parser struct {
	header [2]bool // protocol header seen (client) / not needed (server)
	broken bool
	v10    bool
	// publish waiting for its content header, per channel (first 16)
	pending map[uint16]*proto.Event
	links   map[linkKey]string // AMQP 1.0 sending links' addresses
}

var _ proto.StreamParser = (*Parser)(nil)

// New returns a parser for one connection.
func New() *Parser { return &Parser{} }

// Probe reports whether data starts with an AMQP protocol header.
func Probe(data []byte) bool {
	return len(data) >= 8 && string(data[:4]) == "AMQP"
}

// Gap implements proto.StreamParser.
func (p *Parser) Gap(c *proto.Context, n int, out proto.Emitter) {
	if !p.broken {
		p.broken = true
		out.Emit(c.Anomaly(Kind, AnomalyMalformed, "cannot decode after "+strconv.Itoa(n)+" lost bytes"))
	}
}

// Parse implements proto.StreamParser.
func (p *Parser) Parse(c *proto.Context, data []byte, out proto.Emitter) int {
	if p.broken {
		return len(data)
	}
	if p.v10 {
		return p.parse10(c, data, out)
	}
	n := 0
	if len(data) >= 4 && string(data[:4]) == "AMQP" {
		if len(data) < 8 {
			return 0
		}
		ev := c.NewEvent(Kind, "protocol_header", 2)
		switch {
		case data[4] == 0 && data[5] == 0 && data[6] == 9:
			ev.Fields.SetStr("amqp.version", "0-9-"+strconv.Itoa(int(data[7])))
		case data[5] == 1 && data[6] == 0:
			ev.Fields.SetStr("amqp.version", "1.0")
			if data[4] == 3 {
				ev.Fields.Set("amqp.sasl", true)
			}
			p.v10 = true
		default:
			v := strconv.Itoa(int(data[4])) + "-" + strconv.Itoa(int(data[5])) + "-" + strconv.Itoa(int(data[6])) + "-" + strconv.Itoa(int(data[7]))
			ev.Fields.SetStr("amqp.version", v)
			out.Emit(c.Anomaly(Kind, AnomalyUnsupported, "protocol header "+v))
		}
		out.Emit(ev)
		if p.v10 {
			return 8 + p.parse10(c, data[8:], out)
		}
		n = 8
	}
	for len(data)-n >= 7 {
		b := data[n:]
		typ := b[0]
		ch := binary.BigEndian.Uint16(b[1:])
		size := int(binary.BigEndian.Uint32(b[3:]))
		if size > maxFrame || typ != 1 && typ != 2 && typ != 3 && typ != 8 {
			p.broken = true
			out.Emit(c.Anomaly(Kind, AnomalyMalformed, "frame type "+strconv.Itoa(int(typ))+" size "+strconv.Itoa(size)))
			return len(data)
		}
		if len(b) < 8+size {
			return n
		}
		if b[7+size] != 0xce {
			p.broken = true
			out.Emit(c.Anomaly(Kind, AnomalyFrameEnd, "frame end "+strconv.Itoa(int(b[7+size]))))
			return len(data)
		}
		payload := b[7 : 7+size]
		n += 8 + size
		switch typ {
		case 1:
			p.method(c, ch, payload, out)
		case 2:
			if ev := p.pending[ch]; ev != nil && len(payload) >= 12 {
				ev.Fields.Set("amqp.body_size", proto.Num(float64(binary.BigEndian.Uint64(payload[4:]))))
				out.Emit(*ev)
				delete(p.pending, ch)
			}
		}
	}
	return n
}

// rd reads AMQP method arguments.
type rd struct {
	b   []byte
	bad bool
}

func (r *rd) n(k int) []byte {
	if r.bad || k < 0 || len(r.b) < k {
		r.bad = true
		return nil
	}
	v := r.b[:k]
	r.b = r.b[k:]
	return v
}
func (r *rd) u8() int {
	if v := r.n(1); v != nil {
		return int(v[0])
	}
	return 0
}
func (r *rd) u16() int {
	if v := r.n(2); v != nil {
		return int(binary.BigEndian.Uint16(v))
	}
	return 0
}
func (r *rd) u32() int {
	if v := r.n(4); v != nil {
		return int(binary.BigEndian.Uint32(v))
	}
	return 0
}
func (r *rd) short() string { return text(r.n(r.u8())) }
func (r *rd) long() []byte  { return r.n(r.u32()) }

func text(b []byte) string { return string(bytes.ToValidUTF8(b, []byte("\uFFFD"))) }

// table reads a field table and returns the string values of the keys
// wanted.
func (r *rd) table(want map[string]string, f *proto.Fields) {
	t := &rd{b: r.long()}
	if r.bad {
		return
	}
	for len(t.b) > 0 && !t.bad {
		k := t.short()
		v := t.value()
		if name, ok := want[k]; ok && v != "" {
			f.SetStr(name, v)
		}
	}
}

// value reads one field value, returning it as text for strings.
func (r *rd) value() string {
	switch r.u8() {
	case 'S', 'x':
		return text(r.long())
	case 's':
		return r.short()
	case 't', 'b', 'B':
		r.n(1)
	case 'u', 'U':
		r.n(2)
	case 'i', 'I', 'f':
		r.n(4)
	case 'l', 'L', 'd', 'T':
		r.n(8)
	case 'D':
		r.n(5)
	case 'F':
		r.long()
	case 'A':
		r.long()
	case 'V':
	default:
		r.bad = true
	}
	return ""
}

var methodNames = map[[2]int]string{
	{10, 10}: "connection.start", {10, 11}: "connection.start_ok", {10, 20}: "connection.secure",
	{10, 21}: "connection.secure_ok", {10, 30}: "connection.tune", {10, 31}: "connection.tune_ok",
	{10, 40}: "connection.open", {10, 41}: "connection.open_ok", {10, 50}: "connection.close",
	{10, 51}: "connection.close_ok", {10, 60}: "connection.blocked", {10, 61}: "connection.unblocked",
	{20, 10}: "channel.open", {20, 11}: "channel.open_ok", {20, 20}: "channel.flow", {20, 21}: "channel.flow_ok",
	{20, 40}: "channel.close", {20, 41}: "channel.close_ok",
	{40, 10}: "exchange.declare", {40, 11}: "exchange.declare_ok", {40, 20}: "exchange.delete",
	{40, 21}: "exchange.delete_ok", {40, 30}: "exchange.bind", {40, 31}: "exchange.bind_ok",
	{40, 40}: "exchange.unbind", {40, 51}: "exchange.unbind_ok",
	{50, 10}: "queue.declare", {50, 11}: "queue.declare_ok", {50, 20}: "queue.bind", {50, 21}: "queue.bind_ok",
	{50, 30}: "queue.purge", {50, 31}: "queue.purge_ok", {50, 40}: "queue.delete", {50, 41}: "queue.delete_ok",
	{50, 50}: "queue.unbind", {50, 51}: "queue.unbind_ok",
	{60, 10}: "basic.qos", {60, 11}: "basic.qos_ok", {60, 20}: "basic.consume", {60, 21}: "basic.consume_ok",
	{60, 30}: "basic.cancel", {60, 31}: "basic.cancel_ok", {60, 40}: "basic.publish", {60, 50}: "basic.return",
	{60, 60}: "basic.deliver", {60, 70}: "basic.get", {60, 71}: "basic.get_ok", {60, 72}: "basic.get_empty",
	{60, 80}: "basic.ack", {60, 90}: "basic.reject", {60, 100}: "basic.recover_async",
	{60, 110}: "basic.recover", {60, 111}: "basic.recover_ok", {60, 120}: "basic.nack",
	{90, 10}: "tx.select", {90, 11}: "tx.select_ok", {90, 20}: "tx.commit", {90, 21}: "tx.commit_ok",
	{90, 30}: "tx.rollback", {90, 31}: "tx.rollback_ok", {85, 10}: "confirm.select", {85, 11}: "confirm.select_ok",
}

// quiet are frequent methods that produce no event.
var quiet = map[string]bool{"basic.ack": true, "basic.nack": true, "basic.qos": true, "basic.qos_ok": true,
	"channel.open_ok": true, "channel.flow": true, "channel.flow_ok": true, "channel.close_ok": true,
	"connection.tune": true, "connection.tune_ok": true, "connection.close_ok": true, "basic.consume_ok": true,
	"queue.bind_ok": true, "exchange.declare_ok": true, "confirm.select": true, "confirm.select_ok": true,
	"tx.select": true, "tx.select_ok": true, "tx.commit_ok": true, "basic.recover_ok": true}

func (p *Parser) method(c *proto.Context, ch uint16, b []byte, out proto.Emitter) {
	if len(b) < 4 {
		out.Emit(c.Anomaly(Kind, AnomalyBadArgs, "method frame of "+strconv.Itoa(len(b))+" bytes"))
		return
	}
	class, meth := int(binary.BigEndian.Uint16(b)), int(binary.BigEndian.Uint16(b[2:]))
	name, ok := methodNames[[2]int{class, meth}]
	if !ok {
		name = strconv.Itoa(class) + "." + strconv.Itoa(meth)
	}
	if quiet[name] {
		return
	}
	ev := c.NewEvent(Kind, name, 10)
	f := &ev.Fields
	f.SetStr("amqp.method", name)
	f.Set("amqp.channel", proto.Num(float64(ch)))
	r := &rd{b: b[4:]}
	switch name {
	case "connection.start":
		r.n(2)
		r.table(map[string]string{"product": "amqp.server.product", "version": "amqp.server.version"}, f)
		f.SetStr("amqp.mechanisms", text(r.long()))
	case "connection.start_ok":
		r.table(map[string]string{"product": "amqp.client.product", "version": "amqp.client.version",
			"platform": "amqp.client.platform", "connection_name": "amqp.client.connection_name"}, f)
		mech := r.short()
		resp := r.long()
		f.SetStr("amqp.mechanism", mech)
		if mech == "PLAIN" {
			// "\0user\0password": keep the user, never the password.
			if parts := bytes.Split(resp, []byte{0}); len(parts) == 3 {
				f.SetStr("amqp.user", text(parts[1]))
			}
		} else if mech == "AMQPLAIN" {
			t := &rd{b: append(binary.BigEndian.AppendUint32(nil, uint32(len(resp))), resp...)}
			t.table(map[string]string{"LOGIN": "amqp.user"}, f)
		}
	case "connection.open":
		f.SetStr("amqp.vhost", r.short())
	case "connection.close", "channel.close":
		code := r.u16()
		f.Set("amqp.reply_code", proto.Num(float64(code)))
		f.SetStr("amqp.reply_text", r.short())
		if code >= 300 {
			ev.Outcome = vigil.OutcomeFailure
		}
		if code == 403 && name == "connection.close" && c.Dir == proto.ToClient {
			f.Set("amqp.auth_failure", true)
		}
	case "exchange.declare":
		r.n(2)
		f.SetStr("amqp.exchange", r.short())
		f.SetStr("amqp.exchange_type", r.short())
	case "queue.declare", "queue.delete", "queue.purge":
		r.n(2)
		f.SetStr("amqp.queue", r.short())
	case "queue.bind", "queue.unbind":
		r.n(2)
		f.SetStr("amqp.queue", r.short())
		f.SetStr("amqp.exchange", r.short())
		f.SetStr("amqp.routing_key", r.short())
	case "basic.consume":
		r.n(2)
		f.SetStr("amqp.queue", r.short())
		f.SetStr("amqp.consumer_tag", r.short())
	case "basic.publish":
		r.n(2)
		f.SetStr("amqp.exchange", r.short())
		f.SetStr("amqp.routing_key", r.short())
	case "basic.deliver":
		f.SetStr("amqp.consumer_tag", r.short())
		r.n(9)
		f.SetStr("amqp.exchange", r.short())
		f.SetStr("amqp.routing_key", r.short())
	case "basic.return":
		f.Set("amqp.reply_code", proto.Num(float64(r.u16())))
		f.SetStr("amqp.reply_text", r.short())
		f.SetStr("amqp.exchange", r.short())
		f.SetStr("amqp.routing_key", r.short())
	}
	if r.bad {
		out.Emit(c.Anomaly(Kind, AnomalyBadArgs, name+" arguments overrun the frame"))
	}
	if name == "basic.publish" || name == "basic.deliver" {
		// Emitted with the body size from the content header.
		if p.pending == nil {
			p.pending = map[uint16]*proto.Event{}
		}
		if old := p.pending[ch]; old != nil {
			out.Emit(*old)
		}
		if len(p.pending) < 64 {
			// Kept past this call: the fields move out of the
			// sensor's storage (proto.Context.Arena).
			ev.Fields = append(make(proto.Fields, 0, len(ev.Fields)+1), ev.Fields...)
			p.pending[ch] = &ev
			return
		}
	}
	out.Emit(ev)
}
