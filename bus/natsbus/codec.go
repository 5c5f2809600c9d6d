package natsbus

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/vigil-iot/vigil"
)

// The events codec is a compact binary encoding of []vigil.Event, chosen
// over encoding/json because it is several times faster both ways (see
// BenchmarkCodec) and the bus is on the hot path of every event.
//
// A message is:
//
//	magic 'V', version 1, uvarint count, count × event
//
// and an event is:
//
//	uvarint flags (flagReceived, flagNetwork, flagFields, flagProvenance)
//	string id, time Time, [time Received]
//	string DeviceID, Source, Kind, Category, Action, Outcome
//	[string Provenance]
//	varint Severity
//	[Network: string Transport, addr SrcIP, uvarint SrcPort, addr DstIP, uvarint DstPort]
//	[Fields: uvarint n, n × (string key, byte tag, value)]
//
// where a string is a uvarint length and bytes, a time is a varint of Unix
// seconds, a uvarint of nanoseconds<<1|hasOffset and, when hasOffset, a
// varint zone offset in seconds (times with a zero offset decode as UTC), and
// an addr is a uvarint length and netip.Addr's binary form.
//
// Field values keep their Go type for string, float64, bool and []string.
// Other integer and float types become float64 and any other value goes
// through encoding/json, which is what a JSON encoding would have done.
const (
	codecMagic   = 'V'
	codecVersion = 1

	flagReceived = 1 << 0
	flagNetwork  = 1 << 1
	flagFields   = 1 << 2
	// flagProvenance was added after version 1 shipped: messages without
	// it decode as before.
	flagProvenance = 1 << 3

	tagString  = 's'
	tagFloat   = 'f'
	tagTrue    = 't'
	tagFalse   = 'F'
	tagList    = 'l'
	tagNilList = 'L'
	tagNil     = 'z'
	tagJSON    = 'j'
)

// minEventLen is the smallest encoded event: flags, an empty id, a time
// of two bytes, six empty strings and a severity. It bounds what a corrupt
// count can make the decoder allocate.
const minEventLen = 11

// errCorrupt is returned for a message that is not a valid encoding.
var errCorrupt = errors.New("corrupt events message")

// headerLen is the length of a message header: magic, version and the
// count as a fixed-width 5-byte uvarint, so that the count can be written
// after the events are encoded.
const headerLen = 7

// appendHeader starts a message; putCount fills in its count later.
func appendHeader(b []byte) []byte {
	return append(b, codecMagic, codecVersion, 0x80, 0x80, 0x80, 0x80, 0)
}

// putCount writes count into the header at the start of msg.
func putCount(msg []byte, count int) {
	b := msg[2:headerLen]
	v := uint64(count)
	for i := 0; i < 4; i++ {
		b[i] = byte(v) | 0x80
		v >>= 7
	}
	b[4] = byte(v)
}

// appendEvent appends the encoding of one event.
func appendEvent(b []byte, e *vigil.Event) ([]byte, error) {
	var flags uint64
	if !e.Received.IsZero() {
		flags |= flagReceived
	}
	if e.Network != nil {
		flags |= flagNetwork
	}
	if e.Fields != nil {
		flags |= flagFields
	}
	if e.Provenance != "" {
		flags |= flagProvenance
	}
	b = binary.AppendUvarint(b, flags)
	b = appendString(b, e.ID)
	b = appendTime(b, e.Time)
	if flags&flagReceived != 0 {
		b = appendTime(b, e.Received)
	}
	b = appendString(b, e.DeviceID)
	b = appendString(b, e.Source)
	b = appendString(b, e.Kind)
	b = appendString(b, e.Category)
	b = appendString(b, e.Action)
	b = appendString(b, e.Outcome)
	if flags&flagProvenance != 0 {
		b = appendString(b, e.Provenance)
	}
	b = binary.AppendVarint(b, int64(e.Severity))
	if n := e.Network; n != nil {
		b = appendString(b, n.Transport)
		b = appendAddr(b, n.SrcIP)
		b = binary.AppendUvarint(b, uint64(n.SrcPort))
		b = appendAddr(b, n.DstIP)
		b = binary.AppendUvarint(b, uint64(n.DstPort))
	}
	if flags&flagFields != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Fields)))
		for k, v := range e.Fields {
			b = appendString(b, k)
			var err error
			if b, err = appendValue(b, v); err != nil {
				return b, fmt.Errorf("cannot encode field %q: %w", k, err)
			}
		}
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	_, off := t.Zone()
	b = binary.AppendVarint(b, t.Unix())
	ns := uint64(t.Nanosecond()) << 1
	if off != 0 {
		ns |= 1
	}
	b = binary.AppendUvarint(b, ns)
	if off != 0 {
		b = binary.AppendVarint(b, int64(off))
	}
	return b
}

func appendAddr(b []byte, a netip.Addr) []byte {
	switch {
	case !a.IsValid():
		return append(b, 0)
	case a.Is4():
		b = append(b, 4)
		v := a.As4()
		return append(b, v[:]...)
	}
	n := 16 + len(a.Zone())
	b = binary.AppendUvarint(b, uint64(n))
	v := a.As16()
	b = append(b, v[:]...)
	return append(b, a.Zone()...)
}

func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		b = append(b, tagString)
		return appendString(b, x), nil
	case float64:
		return appendFloat(b, x), nil
	case bool:
		if x {
			return append(b, tagTrue), nil
		}
		return append(b, tagFalse), nil
	case []string:
		if x == nil {
			return append(b, tagNilList), nil
		}
		b = append(b, tagList)
		b = binary.AppendUvarint(b, uint64(len(x)))
		for _, s := range x {
			b = appendString(b, s)
		}
		return b, nil
	case nil:
		return append(b, tagNil), nil
	case int:
		return appendFloat(b, float64(x)), nil
	case int64:
		return appendFloat(b, float64(x)), nil
	case int32:
		return appendFloat(b, float64(x)), nil
	case uint:
		return appendFloat(b, float64(x)), nil
	case uint64:
		return appendFloat(b, float64(x)), nil
	case uint32:
		return appendFloat(b, float64(x)), nil
	case uint16:
		return appendFloat(b, float64(x)), nil
	case float32:
		return appendFloat(b, float64(x)), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	b = append(b, tagJSON)
	return appendString(b, string(j)), nil
}

func appendFloat(b []byte, f float64) []byte {
	b = append(b, tagFloat)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// decoder reads events messages. It interns the short strings that repeat
// across events (kinds, field names, device ids) so that decoding allocates
// mostly for values that are unique to one event. A decoder is not safe for
// concurrent use; each partition worker has its own.
type decoder struct {
	intern map[string]string
	zones  map[int64]*time.Location
	nets   []vigil.Network // slab for the events' Network structs
}

// network returns a zeroed Network from a slab, saving an allocation per
// event: events of one batch share the slab's lifetime.
func (d *decoder) network() *vigil.Network {
	if len(d.nets) == cap(d.nets) {
		d.nets = make([]vigil.Network, 0, 128)
	}
	d.nets = d.nets[:len(d.nets)+1]
	return &d.nets[len(d.nets)-1]
}

// maxIntern bounds the intern table; it is cleared when full.
const maxIntern = 1 << 14

func newDecoder() *decoder {
	return &decoder{intern: make(map[string]string, 256), zones: map[int64]*time.Location{}}
}

// messageCount returns the number of events in a message without decoding it.
func messageCount(data []byte) (int, error) {
	if len(data) < 3 || data[0] != codecMagic {
		return 0, errCorrupt
	}
	if data[1] != codecVersion {
		return 0, fmt.Errorf("unknown events message version %d", data[1])
	}
	n, k := binary.Uvarint(data[2:])
	if k <= 0 || n > uint64(len(data)/minEventLen) {
		return 0, errCorrupt
	}
	return int(n), nil
}

// decode appends the events of one message to dst.
func (d *decoder) decode(dst []vigil.Event, data []byte) ([]vigil.Event, error) {
	n, err := messageCount(data)
	if err != nil {
		return dst, err
	}
	_, k := binary.Uvarint(data[2:])
	r := reader{b: data, i: 2 + k}
	start := len(dst)
	dst = append(dst, make([]vigil.Event, n)...)
	for i := 0; i < n; i++ {
		d.readEvent(&r, &dst[start+i])
		if r.err != nil {
			return dst[:start], fmt.Errorf("cannot decode event %d of %d: %w", i, n, r.err)
		}
	}
	if r.i != len(r.b) {
		return dst[:start], fmt.Errorf("cannot decode events: %d trailing bytes", len(r.b)-r.i)
	}
	return dst, nil
}

func (d *decoder) readEvent(r *reader, e *vigil.Event) {
	flags := r.uvarint()
	e.ID = r.string()
	e.Time = d.time(r)
	if flags&flagReceived != 0 {
		e.Received = d.time(r)
	}
	e.DeviceID = d.interned(r)
	e.Source = d.interned(r)
	e.Kind = d.interned(r)
	e.Category = d.interned(r)
	e.Action = d.interned(r)
	e.Outcome = d.interned(r)
	if flags&flagProvenance != 0 {
		e.Provenance = d.interned(r)
	}
	e.Severity = vigil.Severity(r.varint())
	if flags&flagNetwork != 0 {
		n := d.network()
		n.Transport = d.interned(r)
		n.SrcIP = r.addr()
		n.SrcPort = r.port()
		n.DstIP = r.addr()
		n.DstPort = r.port()
		e.Network = n
	}
	if flags&flagFields != 0 {
		cnt := r.uvarint()
		if cnt > uint64(r.remaining()/2) { // a key length and a tag at least
			r.fail()
			return
		}
		m := make(map[string]any, cnt)
		for j := uint64(0); j < cnt && r.err == nil; j++ {
			k := d.interned(r)
			m[k] = r.value(d)
		}
		e.Fields = m
	}
}

// interned reads a string, returning a shared copy for strings already seen.
func (d *decoder) interned(r *reader) string {
	b := r.bytes()
	if len(b) == 0 {
		return ""
	}
	if len(b) > 32 {
		return string(b)
	}
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	if len(d.intern) >= maxIntern {
		clear(d.intern)
	}
	s := string(b)
	d.intern[s] = s
	return s
}

// reader reads the primitives of the codec; the first error sticks.
type reader struct {
	b   []byte
	i   int
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errCorrupt
	}
	r.i = len(r.b)
}

func (r *reader) remaining() int { return len(r.b) - r.i }

func (r *reader) uvarint() uint64 {
	v, k := binary.Uvarint(r.b[r.i:])
	if k <= 0 {
		r.fail()
		return 0
	}
	r.i += k
	return v
}

func (r *reader) varint() int64 {
	v, k := binary.Varint(r.b[r.i:])
	if k <= 0 {
		r.fail()
		return 0
	}
	r.i += k
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(r.remaining()) {
		r.fail()
		return nil
	}
	b := r.b[r.i : r.i+int(n)]
	r.i += int(n)
	return b
}

func (r *reader) string() string { return string(r.bytes()) }

func (r *reader) byte() byte {
	if r.i >= len(r.b) {
		r.fail()
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

// time reads a time; zones of non-zero offsets are cached by the decoder.
func (d *decoder) time(r *reader) time.Time {
	sec := r.varint()
	ns := r.uvarint()
	if ns>>1 >= 1e9 {
		r.fail()
		return time.Time{}
	}
	t := time.Unix(sec, int64(ns>>1))
	if ns&1 == 0 {
		return t.UTC()
	}
	off := r.varint()
	if off < -86400 || off > 86400 {
		r.fail()
		return time.Time{}
	}
	loc, ok := d.zones[off]
	if !ok {
		loc = time.FixedZone("", int(off))
		if len(d.zones) < 64 {
			d.zones[off] = loc
		}
	}
	return t.In(loc)
}

func (r *reader) addr() netip.Addr {
	b := r.bytes()
	if len(b) == 0 {
		return netip.Addr{}
	}
	var a netip.Addr
	if err := a.UnmarshalBinary(b); err != nil {
		r.fail()
	}
	return a
}

func (r *reader) port() uint16 {
	v := r.uvarint()
	if v > math.MaxUint16 {
		r.fail()
	}
	return uint16(v)
}

func (r *reader) value(d *decoder) any {
	switch r.byte() {
	case tagString:
		if d != nil {
			return d.interned(r)
		}
		return r.string()
	case tagFloat:
		if r.remaining() < 8 {
			r.fail()
			return nil
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(r.b[r.i:]))
		r.i += 8
		return f
	case tagTrue:
		return true
	case tagFalse:
		return false
	case tagList:
		n := r.uvarint()
		if n > uint64(r.remaining()) {
			r.fail()
			return nil
		}
		l := make([]string, n)
		for i := range l {
			l[i] = r.string()
		}
		return l
	case tagNilList:
		return []string(nil)
	case tagNil:
		return nil
	case tagJSON:
		var v any
		if err := json.Unmarshal(r.bytes(), &v); err != nil {
			r.fail()
		}
		return v
	}
	r.fail()
	return nil
}
