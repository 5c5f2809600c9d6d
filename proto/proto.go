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
	// FlowIDValue, when set, is FlowID boxed once as an event field
	// value, which the flow's events share instead of boxing it each.
	FlowIDValue any
	// Maps, when set, supplies the Fields maps of new events: maps of
	// events that their consumer is done with, recycled. Nil makes new
	// maps.
	Maps *FieldMaps
}

// FieldMaps recycles the Fields maps of events. The zero value is ready
// to use; it is not safe for concurrent use.
type FieldMaps struct {
	free []map[string]any
}

// Limits of FieldMaps: how many maps it keeps, and the largest map (in
// fields) it takes back, so that one huge event does not pin memory.
const (
	maxFreeMaps   = 4096
	maxMapRecycle = 64
)

// Get returns an empty map: a recycled one when there is one, else a new
// one with room for n fields.
func (p *FieldMaps) Get(n int) map[string]any {
	if k := len(p.free); k > 0 {
		m := p.free[k-1]
		p.free[k-1] = nil
		p.free = p.free[:k-1]
		return m
	}
	return make(map[string]any, n)
}

// Put empties m and keeps it for a later Get. The caller must hold no
// other reference to m: whoever Gets it next writes into it.
func (p *FieldMaps) Put(m map[string]any) {
	if m == nil || len(m) > maxMapRecycle || len(p.free) >= maxFreeMaps {
		return
	}
	clear(m)
	p.free = append(p.free, m)
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
func (c *Context) NewEvent(kind, action string, n int) vigil.Event {
	var m map[string]any
	if c.Maps != nil {
		m = c.Maps.Get(n + 1)
	} else {
		m = make(map[string]any, n+1)
	}
	ev := vigil.Event{
		Time:     c.Time,
		Source:   "sensor",
		Kind:     kind,
		Category: "network",
		Action:   action,
		Network:  c.Network(),
		Fields:   m,
	}
	if c.FlowID != "" {
		if c.FlowIDValue != nil {
			m["flow.id"] = c.FlowIDValue
		} else {
			m["flow.id"] = c.FlowID
		}
	}
	return ev
}

// Anomaly returns a protocol anomaly event: kind is the protocol, action
// "anomaly", fields anomaly.event (a stable snake_case name such as
// "malformed_traffic"), anomaly.layer "proto_parser" and anomaly.detail
// (free text saying what and where).
func (c *Context) Anomaly(kind, name, detail string) vigil.Event {
	ev := c.NewEvent(kind, "anomaly", 4)
	ev.Severity = vigil.SeverityLow
	ev.Outcome = vigil.OutcomeFailure
	ev.Fields["anomaly.event"] = name
	ev.Fields["anomaly.layer"] = "proto_parser"
	ev.Fields["anomaly.app_proto"] = kind
	if detail != "" {
		ev.Fields["anomaly.detail"] = detail
	}
	return ev
}

// Emitter receives the events a decoder produces. Emit may be called many
// times per Parse call; the event belongs to the emitter afterwards.
type Emitter interface {
	Emit(ev vigil.Event)
}

// EmitterFunc adapts a function to the Emitter interface.
type EmitterFunc func(ev vigil.Event)

// Emit calls f(ev).
func (f EmitterFunc) Emit(ev vigil.Event) { f(ev) }

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
