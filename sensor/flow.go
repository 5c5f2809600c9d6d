package sensor

import (
	"bytes"
	"strconv"
	"time"
	"unsafe"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

// flowKey identifies a flow whatever its direction: the lower endpoint
// first (in netip.Addr order). Addresses are kept as 16 bytes and v6
// tells IPv6 from IPv4 (and IPv4-mapped IPv6), so that the key is plain
// memory without padding, which the map hashes and compares fast.
type flowKey struct {
	a, b   [16]byte
	pa, pb uint16
	proto  uint8
	v6     bool
}

func keyOf(p *packet) (k flowKey, forward bool) {
	// Both addresses are of one family, so comparing their 16-byte forms
	// orders them as netip.Addr.Compare does.
	src, dst := p.src.As16(), p.dst.As16()
	c := bytes.Compare(src[:], dst[:])
	forward = c < 0 || c == 0 && p.sport <= p.dport
	if forward {
		return flowKey{a: src, b: dst, pa: p.sport, pb: p.dport, proto: p.proto, v6: p.src.Is6()}, true
	}
	return flowKey{a: dst, b: src, pa: p.dport, pb: p.sport, proto: p.proto, v6: p.src.Is6()}, false
}

// flow is one connection or UDP conversation. Side 0 is the client.
type flow struct {
	key        flowKey
	id         string
	net        vigil.Network // client to server
	clientIsA  bool          // the client is key.a/key.pa
	start, end time.Time
	lastReport time.Time
	pkts       [2]uint64
	bytes      [2]uint64
	flags      [2]uint8
	midstream  bool
	finSeen    [2]bool
	rst        bool
	closing    bool
	app        string
	appBox     any  // app boxed for event fields
	decided    bool // app protocol decided (TCP: on first payload)
	stream     proto.StreamParser
	dgram      proto.DatagramParser
	half       [2]half
	nets       [2]*vigil.Network // per direction, shared by the flow's events
	prev, next *flow             // LRU list, most recent first
}

// dir returns the direction of a packet in this flow.
func (f *flow) dir(forward bool) proto.Direction {
	if forward == f.clientIsA {
		return proto.ToServer
	}
	return proto.ToClient
}

// flowTable is a bounded map of flows with an LRU list, so that idle
// flows expire and the least recent one is evicted when the table is full.
type flowTable struct {
	m          map[flowKey]*flow
	head, tail *flow
	max        int
	free       []*flow // ended flows, for reuse
	last       *flow   // the flow lookup found last, nil after its removal

	// Slabs the strings and 5-tuples of flow events are cut from, a few
	// allocations instead of three per flow. A slab is never written
	// again where it was handed out: events may be kept. Flow ids live as
	// long as their flows, record times as long as the records: apart,
	// so that the ones do not keep the others' slabs.
	ids, times []byte
	nets       [][2]vigil.Network
}

// Sizes of a flowTable's slabs.
const (
	strSlab = 4 << 10
	netSlab = 64
)

// str returns b as a string cut from slab.
func str(slab *[]byte, b []byte) string {
	if len(b) > cap(*slab)-len(*slab) {
		*slab = make([]byte, 0, max(strSlab, len(b)))
	}
	off := len(*slab)
	*slab = append(*slab, b...)
	return unsafe.String(&(*slab)[off], len(b))
}

// lookup returns the flow of k, or nil. Packets of one flow often come
// one after the other: the last flow found is checked before the map.
func (t *flowTable) lookup(k flowKey) *flow {
	if t.last != nil && t.last.key == k {
		return t.last
	}
	f := t.m[k]
	if f != nil {
		t.last = f
	}
	return f
}

func newFlowTable(max int) *flowTable {
	return &flowTable{m: make(map[flowKey]*flow, min(max, 1024)), max: max}
}

func (t *flowTable) unlink(f *flow) {
	if f.prev != nil {
		f.prev.next = f.next
	} else {
		t.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else {
		t.tail = f.prev
	}
	f.prev, f.next = nil, nil
}

func (t *flowTable) pushFront(f *flow) {
	f.next = t.head
	f.prev = nil
	if t.head != nil {
		t.head.prev = f
	}
	t.head = f
	if t.tail == nil {
		t.tail = f
	}
}

// touch moves f to the front of the LRU list.
func (t *flowTable) touch(f *flow) {
	if t.head == f {
		return
	}
	t.unlink(f)
	t.pushFront(f)
}

// remove takes f out of the table and keeps it for a later flow. The
// caller may still read f until the next newFlow, not keep it.
func (t *flowTable) remove(f *flow) {
	t.unlink(f)
	delete(t.m, f.key)
	if t.last == f {
		t.last = nil
	}
	if len(t.free) < maxFreeFlows {
		t.free = append(t.free, f)
	}
}

// maxFreeFlows bounds the ended flows kept for reuse.
const maxFreeFlows = 1024

// alloc returns a zero flow: an ended one when there is one (its stream
// buffers kept when small), else a new one. Events never point into a
// flow (they share its nets, allocated apart, and its id string), so reusing it is
// safe.
func (t *flowTable) alloc() *flow {
	n := len(t.free)
	if n == 0 {
		return &flow{}
	}
	f := t.free[n-1]
	t.free[n-1] = nil
	t.free = t.free[:n-1]
	var bufs [2][]byte
	for d := range f.half {
		if b := f.half[d].buf; cap(b) <= 4<<10 {
			bufs[d] = b[:0]
		}
	}
	*f = flow{}
	f.half[0].buf, f.half[1].buf = bufs[0], bufs[1]
	return f
}

// newFlow creates a flow for the first packet p seen of it. The caller
// must make room first when the table is full.
func (t *flowTable) newFlow(k flowKey, forward bool, p *packet, ts time.Time, wellKnown func(proto uint8, port uint16) bool) *flow {
	f := t.alloc()
	f.key, f.start, f.end, f.lastReport = k, ts, ts, ts
	id := flowID(k, ts)
	f.id = str(&t.ids, id[:])
	// Decide who is the client: the sender of a SYN without ACK, else
	// the side whose port is not a known service port, else the side
	// with the higher port.
	senderIsClient := true
	switch {
	case p.proto == ipTCP && p.flags&(tcpSYN|tcpACK) == tcpSYN:
	case p.proto == ipTCP && p.flags&(tcpSYN|tcpACK) == tcpSYN|tcpACK:
		senderIsClient = false
	case wellKnown(p.proto, p.dport):
	case wellKnown(p.proto, p.sport):
		senderIsClient = false
	case p.sport < p.dport && p.sport < 1024:
		senderIsClient = false
	}
	if p.proto == ipTCP && p.flags&tcpSYN == 0 {
		f.midstream = true
	}
	f.clientIsA = senderIsClient == forward
	f.net = vigil.Network{Transport: transportName(p.proto), SrcIP: p.src, SrcPort: p.sport, DstIP: p.dst, DstPort: p.dport}
	if !senderIsClient {
		f.net.SrcIP, f.net.DstIP = p.dst, p.src
		f.net.SrcPort, f.net.DstPort = p.dport, p.sport
	}
	t.m[k] = f
	t.pushFront(f)
	return f
}

// flowID derives a flow's id from its 5-tuple and start time, so that the
// same capture gives the same ids on every run: 16 hex digits of FNV-1a.
func flowID(k flowKey, start time.Time) [16]byte {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, b := range k.a {
		h = (h ^ uint64(b)) * prime
	}
	for _, b := range k.b {
		h = (h ^ uint64(b)) * prime
	}
	ns := uint64(start.UnixNano())
	tail := [13]byte{byte(k.pa >> 8), byte(k.pa), byte(k.pb >> 8), byte(k.pb), k.proto,
		byte(ns >> 56), byte(ns >> 48), byte(ns >> 40), byte(ns >> 32), byte(ns >> 24), byte(ns >> 16), byte(ns >> 8), byte(ns)}
	for _, b := range tail {
		h = (h ^ uint64(b)) * prime
	}
	var out [16]byte
	const digits = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		out[i] = digits[h&15]
		h >>= 4
	}
	return out
}

// sub returns t.Sub(u) from the wall-clock readings of t and u (capture
// times have no monotonic reading), several times faster than t.Sub,
// whose overflow checks two calls per packet notice. Times outside the
// years 1970 to 2199 (less than 292 years apart: no overflow) take t.Sub.
func sub(t, u time.Time) time.Duration {
	const lo, hi = 0, 7258118400 // 1970-01-01, 2200-01-01
	a, b := t.Unix(), u.Unix()
	if a < lo || a >= hi || b < lo || b >= hi {
		return t.Sub(u)
	}
	return time.Duration((a-b)*1e9 + int64(t.Nanosecond()-u.Nanosecond()))
}

func transportName(p uint8) string {
	switch p {
	case ipTCP:
		return "tcp"
	case ipUDP:
		return "udp"
	case 1:
		return "icmp"
	case 58:
		return "ipv6-icmp"
	}
	return strconv.Itoa(int(p))
}

// shared makes what the events of f share: its 5-tuple each way, on
// first use only, so that a flow that never has an event (a scan's SYN)
// costs less.
func (t *flowTable) shared(f *flow) {
	if f.nets[0] == nil {
		if len(t.nets) == 0 {
			t.nets = make([][2]vigil.Network, netSlab)
		}
		nets := &t.nets[0]
		t.nets = t.nets[1:]
		nets[proto.ToServer] = f.net
		nets[proto.ToClient] = vigil.Network{Transport: f.net.Transport, SrcIP: f.net.DstIP, SrcPort: f.net.DstPort, DstIP: f.net.SrcIP, DstPort: f.net.SrcPort}
		f.nets = [2]*vigil.Network{&nets[0], &nets[1]}
	}
}

// flagNames holds the rendering of every TCP flag combination, boxed
// for event fields: flagNames[f] is flagString(f).
var flagNames = func() (t [256]any) {
	for i := range t {
		t[i] = flagString(uint8(i))
	}
	return t
}()

// Flow end reasons, boxed once for event fields.
var (
	reasonEnd      any = "end"
	reasonTimeout  any = "timeout"
	reasonEvicted  any = "evicted"
	reasonPeriodic any = "periodic"
	reasonCapture  any = "capture_end"
)

// reasonValue returns reason boxed, without allocating for the known ones.
func reasonValue(reason string) any {
	switch reason {
	case "end":
		return reasonEnd
	case "timeout":
		return reasonTimeout
	case "evicted":
		return reasonEvicted
	case "periodic":
		return reasonPeriodic
	case "capture_end":
		return reasonCapture
	}
	return reason
}

// record returns the flow record event of f, its fields stored in arena.
func (t *flowTable) record(f *flow, reason string, ts time.Time, arena *proto.FieldArena) proto.Event {
	m := arena.Get(18)
	t.shared(f)
	m.SetStr("flow.id", f.id)
	m.Set("flow.reason", reasonValue(reason))
	// Both times in one string, one allocation.
	var buf [72]byte
	tb := vigil.AppendTime(buf[:0], f.start.UTC())
	n := len(tb)
	times := str(&t.times, vigil.AppendTime(tb, f.end.UTC()))
	m.SetStr("flow.start", times[:n])
	m.SetStr("flow.end", times[n:])
	m.Set("flow.duration", sub(f.end, f.start).Seconds())
	m.Set("flow.pkts_toserver", proto.Num(float64(f.pkts[0])))
	m.Set("flow.pkts_toclient", proto.Num(float64(f.pkts[1])))
	m.Set("flow.bytes_toserver", proto.Num(float64(f.bytes[0])))
	m.Set("flow.bytes_toclient", proto.Num(float64(f.bytes[1])))
	m.Set("flow.midstream", f.midstream)
	ev := vigil.Event{
		Time:     f.end,
		Source:   "sensor",
		Kind:     "flow",
		Category: "network",
		Action:   "flow",
		Network:  f.nets[proto.ToServer],
	}
	if reason == "periodic" {
		ev.Time = ts
	}
	if f.app != "" {
		m.Set("flow.app_proto", f.appBox)
	}
	if f.key.proto == ipTCP {
		m.Set("flow.tcp_flags_toserver", flagNames[f.flags[0]])
		m.Set("flow.tcp_flags_toclient", flagNames[f.flags[1]])
		m.Set("flow.tcp_flags", flagNames[f.flags[0]|f.flags[1]])
		var state any = "established"
		switch {
		case f.rst:
			state = "reset"
		case f.finSeen[0] && f.finSeen[1]:
			state = "closed"
		case f.finSeen[0] || f.finSeen[1]:
			state = "closing"
		case f.flags[1]&tcpSYN == 0 && f.flags[0]&tcpSYN != 0:
			state = "syn_sent"
		}
		m.Set("flow.state", state)
	}
	return proto.Event{Event: ev, Fields: m}
}
