package proto

import (
	"sync"
	"time"

	vigil "github.com/vigil-iot/vigil"
)

// Direction tells which side of a connection sent some bytes.
type Direction uint8

// Directions. The client is the side that opened the connection (sent the
// SYN), or, when the sensor picked the connection up mid-stream, the side
// whose port is not the protocol's well-known port.
const (
	ToServer Direction = iota
	ToClient
)

// String returns "to_server" or "to_client".
func (d Direction) String() string {
	if d == ToClient {
		return "to_client"
	}
	return "to_server"
}

// Context is what a decoder knows about the bytes it is given. The sensor
// fills it before each call; decoders must not keep a pointer to it.
type Context struct {
	// Time is the capture time of the packet that completed the data.
	Time time.Time
	// Flow is the connection's 5-tuple oriented client to server.
	Flow vigil.Network
	// Dir is the direction of the data.
	Dir Direction
	// FlowID identifies the flow; events of one connection share it.
	FlowID string
	// Midstream is true when the sensor did not see the connection open,
	// so that decoders do not report out-of-state traffic they cannot judge.
	Midstream bool
	// Net, when set, is the sender-to-receiver 5-tuple that events share
	// (events are immutable, so one value per flow direction suffices);
	// when nil, Network computes a new one.
	Net *vigil.Network
	// Arena, when set, supplies the field storage of new events. The
	// sensor reuses it once the events emitted are published, so a
	// decoder that keeps an event past the call that made it must copy
	// its Fields first. Nil allocates the storage per event.
	Arena *FieldArena
}

// Event is an event as a decoder builds it: a vigil.Event whose fields
// are a list, Fields, which hides the embedded map (left nil). A list
// costs much less than a map to fill, to encode as JSON and to throw
// away; Vigil makes the map when a consumer wants one.
type Event struct {
	vigil.Event
	Fields Fields
}

// Vigil returns the event with its fields in a new Fields map.
func (ev *Event) Vigil() vigil.Event {
	e := ev.Event
	e.Fields = ev.Fields.Map(nil)
	return e
}

// AppendJSON appends the event encoded as JSON, byte for byte what
// encoding/json writes for Vigil() (vigil.Event.AppendJSONFields).
func (ev *Event) AppendJSON(b []byte) ([]byte, error) {
	return ev.Event.AppendJSONFields(b, ev.Fields)
}

// Fields are the fields of an Event in the order they were set. Set
// appends, so a name set twice is there twice: the last value counts, as
// in a map (Get, Map and the JSON encoding see only it).
type Fields []vigil.Field

// Set sets field k to v.
func (f *Fields) Set(k string, v any) {
	f.next().Set(k, v)
}

// SetStr sets field k to the string s, without the allocation of
// storing s in an interface.
func (f *Fields) SetStr(k, s string) {
	f.next().SetString(k, s)
}

// next appends a field for the caller to set in place (cheaper than
// appending a Field value while the garbage collector runs).
func (f *Fields) next() *vigil.Field {
	s := *f
	if len(s) == cap(s) {
		s = append(s, vigil.Field{})
	} else {
		s = s[:len(s)+1]
	}
	*f = s
	return &s[len(s)-1]
}

// Get returns the value of field k and whether it is set.
func (f Fields) Get(k string) (any, bool) {
	for i := len(f) - 1; i >= 0; i-- {
		if f[i].Key == k {
			return f[i].Val(), true
		}
	}
	return nil, false
}

// Map stores the fields into m, a new map when m is nil, and returns it.
func (f Fields) Map(m map[string]any) map[string]any {
	if m == nil {
		m = make(map[string]any, len(f))
	}
	for i := range f {
		m[f[i].Key] = f[i].Val()
	}
	return m
}

// FieldArena hands out the field storage of events from one buffer,
// reused once their consumer is done with them (Reset). The zero value is
// ready to use; it is not safe for concurrent use.
type FieldArena struct {
	buf  []vigil.Field
	used int // fields handed out since Reset, in all buffers
}

// Bounds of the buffer a FieldArena keeps across Resets, in fields: a
// burst of events (thousands of flows expiring at once) does not pin its
// size for good.
const (
	arenaMin = 4096
	arenaMax = 64 << 10
)

// Get returns empty Fields with room for n fields. Setting more makes
// append move them to a buffer of their own.
func (a *FieldArena) Get(n int) Fields {
	a.used += n
	l := len(a.buf)
	if l+n > cap(a.buf) {
		// A new buffer; the old one stays with the events it holds.
		a.buf = make([]vigil.Field, 0, max(arenaMin, min(2*cap(a.buf), arenaMax), n))
		l = 0
	}
	a.buf = a.buf[:l+n]
	return a.buf[l : l : l+n]
}

// Reset takes back the storage of every Fields handed out: the caller
// must hold no reference to them any more. The buffer grows to what was
// handed out since the last Reset (up to arenaMax), so that a steady load
// fits in one.
//
// The buffer is not cleared: the values of old fields stay reachable
// until new ones overwrite them, at most one buffer's worth. Clearing it
// cost the sensor 4-5 % of its time (a write barrier for every pointer
// while the collector marks).
func (a *FieldArena) Reset() {
	switch {
	case cap(a.buf) > arenaMax:
		a.buf = nil // Get makes one of arenaMin
	case a.used > cap(a.buf):
		a.buf = make([]vigil.Field, 0, min(a.used, arenaMax))
	default:
		a.buf = a.buf[:0]
	}
	a.used = 0
}

// Network returns the 5-tuple oriented from the sender of the data to its
// receiver, for an event to keep: Net when set, else a new value.
func (c *Context) Network() *vigil.Network {
	if c.Net != nil {
		return c.Net
	}
	n := c.Flow
	if c.Dir == ToClient {
		n.SrcIP, n.DstIP = n.DstIP, n.SrcIP
		n.SrcPort, n.DstPort = n.DstPort, n.SrcPort
	}
	return &n
}

// NewEvent returns an event of the given kind and action for the data
// described by c, with source "sensor", category "network", the sender to
// receiver 5-tuple and room for n fields. When FlowID is set, the event
// carries it as flow.id.
func (c *Context) NewEvent(kind, action string, n int) Event {
	ev := Event{Event: vigil.Event{
		Time:     c.Time,
		Source:   "sensor",
		Kind:     kind,
		Category: "network",
		Action:   action,
		Network:  c.Network(),
	}}
	ev.Fields = c.NewFields(n + 1)
	if c.FlowID != "" {
		ev.Fields.SetStr("flow.id", c.FlowID)
	}
	return ev
}

// NewFields returns empty Fields with room for n fields, from Arena when
// it is set.
func (c *Context) NewFields(n int) Fields {
	if c.Arena != nil {
		return c.Arena.Get(n)
	}
	return make(Fields, 0, n)
}

// Anomaly returns a protocol anomaly event: kind is the protocol, action
// "anomaly", fields anomaly.event (a stable snake_case name such as
// "malformed_traffic"), anomaly.layer "proto_parser" and anomaly.detail
// (free text saying what and where).
func (c *Context) Anomaly(kind, name, detail string) Event {
	ev := c.NewEvent(kind, "anomaly", 4)
	ev.Severity = vigil.SeverityLow
	ev.Outcome = vigil.OutcomeFailure
	f := &ev.Fields
	f.SetStr("anomaly.event", name)
	f.SetStr("anomaly.layer", "proto_parser")
	f.SetStr("anomaly.app_proto", kind)
	if detail != "" {
		f.SetStr("anomaly.detail", detail)
	}
	return ev
}

// Emitter receives the events a decoder produces. Emit may be called many
// times per Parse call; the event, its field storage included, belongs to
// the emitter afterwards.
type Emitter interface {
	Emit(ev Event)
}

// EmitterFunc adapts a function to the Emitter interface.
type EmitterFunc func(ev Event)

// Emit calls f(ev).
func (f EmitterFunc) Emit(ev Event) { f(ev) }

// StreamParser decodes one TCP connection, both directions. It is created
// per connection and called from one goroutine.
type StreamParser interface {
	// Parse decodes as many whole protocol messages as data holds and
	// returns how many bytes it consumed. The sensor keeps the rest and
	// presents it again, followed by newer bytes, on the next call in the
	// same direction. A parser that gives up on a connection (after
	// malformed traffic) returns len(data) from then on.
	Parse(c *Context, data []byte, out Emitter) (consumed int)
	// Gap tells the parser that n bytes in direction c.Dir were lost
	// (never captured); the sensor drops whatever it kept for that
	// direction, so the parser must resynchronise.
	Gap(c *Context, n int, out Emitter)
}

// DatagramParser decodes UDP payloads (or other datagrams), one at a time.
// It is shared by every flow of its protocol and must be safe to call
// from one goroutine at a time.
type DatagramParser interface {
	ParseDatagram(c *Context, data []byte, out Emitter)
}

// smallNums holds 0..1023 already boxed, so that decoders can store
// common numbers in event fields without an allocation each.
var smallNums = func() (t [1024]any) {
	for i := range t {
		t[i] = float64(i)
	}
	return t
}()

// uint16Nums holds 0..65535 boxed, built on first use: message ids,
// transaction ids, ports and lengths are 16-bit numbers, and each would
// otherwise cost an allocation per event.
var uint16Nums = sync.OnceValue(func() []any {
	t := make([]any, 1<<16)
	copy(t, smallNums[:])
	for i := len(smallNums); i < len(t); i++ {
		t[i] = float64(i)
	}
	return t
})

// Num returns v as an event field value, without allocating for the
// integers 0 to 65535.
func Num(v float64) any {
	if v >= 0 && v < 1<<16 && v == float64(int(v)) {
		if v < float64(len(smallNums)) {
			return smallNums[int(v)]
		}
		return uint16Nums()[int(v)]
	}
	return v
}
