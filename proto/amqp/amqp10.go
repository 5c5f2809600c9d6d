package amqp

import (
	"bytes"
	"encoding/binary"
	"strconv"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

// AMQP 1.0 performatives and SASL frames Vigil reports.
var performatives = map[uint64]string{
	0x40: "sasl.mechanisms", 0x41: "sasl.init", 0x44: "sasl.outcome",
	0x10: "open", 0x11: "begin", 0x12: "attach", 0x14: "transfer", 0x16: "detach", 0x17: "end", 0x18: "close",
}

var saslCodes = [5]string{"ok", "auth", "sys", "sys_perm", "sys_temp"}

// linkKey names a link by its direction and handle.
type linkKey struct {
	dir    proto.Direction
	handle uint64
}

// parse10 decodes AMQP 1.0 protocol headers and frames.
func (p *Parser) parse10(c *proto.Context, data []byte, out proto.Emitter) int {
	n := 0
	for len(data)-n >= 8 {
		b := data[n:]
		if string(b[:4]) == "AMQP" {
			n += 8
			continue
		}
		size := int(binary.BigEndian.Uint32(b))
		doff := int(b[4]) * 4
		if size < 8 || size > maxFrame || doff < 8 || doff > size {
			p.broken = true
			out.Emit(c.Anomaly(Kind, AnomalyMalformed, "amqp 1.0 frame size "+strconv.Itoa(size)+" data offset "+strconv.Itoa(doff)))
			return len(data)
		}
		if len(b) < size {
			return n
		}
		n += size
		if size == doff {
			continue // empty frame (heartbeat)
		}
		p.frame10(c, b[doff:size], out)
	}
	return n
}

// val10 reads AMQP 1.0 encoded values.
type val10 struct {
	b   []byte
	bad bool
}

func (v *val10) take(k int) []byte {
	if v.bad || k < 0 || len(v.b) < k {
		v.bad = true
		return nil
	}
	x := v.b[:k]
	v.b = v.b[k:]
	return x
}

func (v *val10) u8() int {
	if x := v.take(1); x != nil {
		return int(x[0])
	}
	return 0
}

func (v *val10) u32() int {
	if x := v.take(4); x != nil {
		return int(binary.BigEndian.Uint32(x))
	}
	return 0
}

// next reads one value: its constructor, and for strings, symbols and
// binaries their bytes, for unsigned numbers their value, for lists the
// list body (count items) and for described values the descriptor code.
type item struct {
	code  byte
	bytes []byte // str, sym, bin; list and map bodies
	num   uint64
	count int
	desc  uint64 // descriptor of a described value
	inner *item  // the value of a described value
}

func (v *val10) next() item { return v.nextDepth(0) }

func (v *val10) nextDepth(depth int) item {
	code := byte(v.u8())
	if v.bad {
		return item{code: 0x40}
	}
	it := item{code: code}
	switch code {
	case 0x00: // described
		if depth > 8 {
			v.bad = true
			return it
		}
		d := v.nextDepth(depth + 1)
		it.desc = d.num
		in := v.nextDepth(depth + 1)
		it.inner = &in
	case 0x40, 0x41, 0x42, 0x43, 0x44, 0x45:
	case 0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56:
		it.num = uint64(v.u8())
	case 0x60, 0x61:
		if x := v.take(2); x != nil {
			it.num = uint64(binary.BigEndian.Uint16(x))
		}
	case 0x70, 0x71, 0x72, 0x73, 0x74:
		it.num = uint64(v.u32())
	case 0x80, 0x81, 0x82, 0x83, 0x84:
		if x := v.take(8); x != nil {
			it.num = binary.BigEndian.Uint64(x)
		}
	case 0x94, 0x98:
		v.take(16)
	case 0xa0, 0xa1, 0xa3:
		it.bytes = v.take(v.u8())
	case 0xb0, 0xb1, 0xb3:
		it.bytes = v.take(v.u32())
	case 0xc0, 0xc1:
		size := v.u8()
		body := v.take(size)
		if len(body) >= 1 {
			it.count, it.bytes = int(body[0]), body[1:]
		}
	case 0xd0, 0xd1:
		size := v.u32()
		body := v.take(size)
		if len(body) >= 4 {
			it.count, it.bytes = int(binary.BigEndian.Uint32(body)), body[4:]
		}
	case 0xe0:
		v.take(v.u8())
	case 0xf0:
		v.take(v.u32())
	default:
		v.bad = true
	}
	return it
}

// fields returns the items of a list value.
func (it item) fields() []item {
	if it.code != 0xc0 && it.code != 0xd0 {
		return nil
	}
	v := &val10{b: it.bytes}
	out := make([]item, 0, it.count)
	for i := 0; i < it.count && !v.bad && len(v.b) > 0; i++ {
		out = append(out, v.next())
	}
	return out
}

func (it item) str() string {
	switch it.code {
	case 0xa1, 0xb1, 0xa3, 0xb3:
		return string(bytes.ToValidUTF8(it.bytes, []byte("\uFFFD")))
	}
	return ""
}

func (p *Parser) frame10(c *proto.Context, body []byte, out proto.Emitter) {
	v := &val10{b: body}
	it := v.next()
	if v.bad || it.code != 0x00 || it.inner == nil {
		out.Emit(c.Anomaly(Kind, AnomalyBadArgs, "amqp 1.0 frame body is not a described performative"))
		return
	}
	name, ok := performatives[it.desc]
	if !ok {
		return // flow, transfer, disposition, sasl challenge/response: no event
	}
	fs := it.inner.fields()
	get := func(i int) item {
		if i < len(fs) {
			return fs[i]
		}
		return item{code: 0x40}
	}
	ev := c.NewEvent(Kind, name, 6)
	f := &ev.Fields
	f.SetStr("amqp.version", "1.0")
	f.SetStr("amqp.method", name)
	switch name {
	case "sasl.mechanisms":
		// An array of symbols (or one symbol): keep the raw list text.
		if s := get(0).str(); s != "" {
			f.SetStr("amqp.mechanisms", s)
		}
	case "sasl.init":
		mech := get(0).str()
		f.SetStr("amqp.mechanism", mech)
		if mech == "PLAIN" {
			if parts := bytes.Split(get(1).bytes, []byte{0}); len(parts) == 3 {
				f.SetStr("amqp.user", text(parts[1])) // never the password
			}
		}
		if h := get(2).str(); h != "" {
			f.SetStr("amqp.hostname", h)
		}
	case "sasl.outcome":
		code := get(0).num
		f.Set("amqp.sasl_code", float64(code))
		if code < uint64(len(saslCodes)) {
			f.SetStr("amqp.sasl_outcome", saslCodes[code])
		}
		if code == 0 {
			ev.Outcome = vigil.OutcomeSuccess
		} else {
			ev.Outcome = vigil.OutcomeFailure
			if code == 1 {
				f.Set("amqp.auth_failure", true)
			}
		}
	case "open":
		f.SetStr("amqp.container_id", get(0).str())
		if h := get(1).str(); h != "" {
			f.SetStr("amqp.hostname", h)
			f.SetStr("amqp.vhost", h)
		}
	case "attach":
		f.SetStr("amqp.link_name", get(0).str())
		receiver := get(2).code == 0x41
		role := "sender"
		term := get(6) // target
		if receiver {
			role, term = "receiver", get(5) // source
		}
		f.SetStr("amqp.role", role)
		addr := ""
		if term.inner != nil {
			if a := term.inner.fields(); len(a) > 0 && a[0].str() != "" {
				addr = a[0].str()
				f.SetStr("amqp.address", addr)
			}
		}
		// Remember the sender's link address by handle, for its transfers.
		if !receiver {
			if p.links == nil {
				p.links = map[linkKey]string{}
			}
			if len(p.links) < 256 {
				p.links[linkKey{c.Dir, get(1).num}] = addr
			}
		}
	case "transfer":
		// A message on a sending link: its address and size (the frame
		// bytes after the performative: header, properties, body).
		if a, ok := p.links[linkKey{c.Dir, get(0).num}]; ok && a != "" {
			f.SetStr("amqp.address", a)
		}
		f.Set("amqp.body_size", proto.Num(float64(len(v.b))))
	case "detach", "close", "end":
		idx := map[string]int{"detach": 2, "close": 0, "end": 0}[name]
		if e := get(idx); e.inner != nil {
			if ef := e.inner.fields(); len(ef) > 0 {
				f.SetStr("amqp.error_condition", ef[0].str())
				if len(ef) > 1 {
					f.SetStr("amqp.error_description", ef[1].str())
				}
				ev.Outcome = vigil.OutcomeFailure
				if ef[0].str() == "amqp:unauthorized-access" {
					f.Set("amqp.auth_failure", true)
				}
			}
		}
	}
	if v.bad {
		out.Emit(c.Anomaly(Kind, AnomalyBadArgs, name+" overruns its frame"))
	}
	out.Emit(ev)
}
