package sensor

import (
	"bytes"
	"strconv"
	"time"
)

// IP fragment reassembly: fragments of one datagram (same source,
// destination, protocol and identification) are kept until the datagram
// is whole, then it goes on as one packet. Reassembly is bounded: at most
// MaxIPDatagrams datagrams and maxFragBytes bytes in flight (the oldest
// datagram is dropped to make room), FragmentTimeout of capture time per
// datagram, maxFragsPerDatagram fragments and maxDatagram bytes each.
//
// Overlapping fragments that carry the same bytes (duplicates) are
// accepted. Overlapping fragments that carry different bytes are an
// evasion technique (the monitor and the target host may keep different
// versions): the datagram is dropped, as current Linux and Windows stacks
// and RFC 5722 (IPv6) drop it, and reported as a fragment_overlap anomaly.

// Limits of reassembly.
const (
	maxDatagram         = 65535   // bytes of IP payload
	maxFragsPerDatagram = 256     // fragments of one datagram
	maxFragBytes        = 8 << 20 // bytes held over all datagrams
)

// IP-layer anomaly names (kind "ip", anomaly.layer "decoder").
const (
	AnomalyFragOverlap  = "fragment_overlap"   // overlapping fragments with different data
	AnomalyFragTooLarge = "fragment_too_large" // a datagram longer than 65,535 bytes
	AnomalyFragTooMany  = "too_many_fragments" // more than 256 fragments for one datagram
)

// fragKey identifies the datagram a fragment belongs to.
type fragKey struct {
	src, dst [16]byte
	id       uint32
	proto    uint8
	v6       bool
}

// span is a received byte range [lo, hi) of a datagram.
type span struct{ lo, hi int }

// datagram is one datagram being reassembled.
type datagram struct {
	key     fragKey
	first   time.Time // capture time of its first fragment
	data    []byte    // the payload so far; holes are zeros
	have    []span    // received ranges, sorted and merged
	total   int       // payload length, -1 until the last fragment came
	frags   int       // fragments received
	ipLen   int       // their bytes on the wire from the IP header on
	dropped bool      // given up on: later fragments are swallowed
	// In order of arrival of their first fragment.
	prev, next *datagram
}

// defrag holds the datagrams being reassembled.
type defrag struct {
	m           map[fragKey]*datagram
	head, tail  *datagram // oldest first
	bytes       int       // held in data buffers
	max         int
	timeout     time.Duration
	reassembled uint64
	dropped     uint64 // fragments of datagrams given up on
}

func newDefrag(max int, timeout time.Duration) *defrag {
	return &defrag{m: map[fragKey]*datagram{}, max: max, timeout: timeout}
}

// fragResult tells what add did with a fragment.
type fragResult struct {
	// done is true when the fragment completed its datagram: payload
	// is the whole IP payload (valid until the next add), frags and
	// ipLen count its fragments and their bytes.
	done         bool
	payload      []byte
	frags, ipLen int
	// anomaly, when set, names what was wrong (and detail says it);
	// the datagram was dropped.
	anomaly, detail string
}

// add takes one fragment of p (its data at byte offset off, more
// fragments to come when more). It returns the whole datagram when this
// fragment completes it.
func (d *defrag) add(p *packet, ts time.Time) fragResult {
	d.expire(ts)
	k := fragKey{src: p.src.As16(), dst: p.dst.As16(), id: p.fragID, proto: p.fragNext, v6: p.src.Is6()}
	g := d.m[k]
	if g == nil {
		for len(d.m) >= d.max || d.bytes > maxFragBytes && d.head != nil {
			d.drop(d.head)
		}
		g = &datagram{key: k, first: ts, total: -1}
		d.m[k] = g
		g.prev = d.tail
		if d.tail != nil {
			d.tail.next = g
		} else {
			d.head = g
		}
		d.tail = g
	}
	if g.dropped {
		d.dropped++
		return fragResult{}
	}
	g.frags++
	g.ipLen += p.ipLen
	data := p.fragData
	lo, hi := p.fragOff, p.fragOff+len(data)
	switch {
	case hi > maxDatagram:
		return d.fail(g, AnomalyFragTooLarge, "fragment at offset "+strconv.Itoa(lo)+" ends at byte "+strconv.Itoa(hi)+" of the datagram")
	case g.frags > maxFragsPerDatagram:
		return d.fail(g, AnomalyFragTooMany, strconv.Itoa(g.frags)+" fragments")
	case !p.fragMore:
		if g.total >= 0 && g.total != hi || hi < g.end() {
			return d.fail(g, AnomalyFragOverlap, "two different ends of the datagram, at bytes "+strconv.Itoa(max(g.total, g.end()))+" and "+strconv.Itoa(hi))
		}
		g.total = hi
	case g.total >= 0 && hi > g.total:
		return d.fail(g, AnomalyFragOverlap, "fragment at offset "+strconv.Itoa(lo)+" goes past the end of the datagram at byte "+strconv.Itoa(g.total))
	}
	if hi > len(g.data) {
		grow := hi - len(g.data)
		g.data = append(g.data, make([]byte, grow)...)
		d.bytes += grow
	}
	// Overlaps with what came before must carry the same bytes.
	for _, s := range g.have {
		a, b := max(lo, s.lo), min(hi, s.hi)
		if a < b && !bytes.Equal(g.data[a:b], data[a-lo:b-lo]) {
			return d.fail(g, AnomalyFragOverlap, "fragment at offset "+strconv.Itoa(lo)+" rewrites bytes "+strconv.Itoa(a)+" to "+strconv.Itoa(b)+" with different data")
		}
	}
	copy(g.data[lo:hi], data)
	g.have = addSpan(g.have, span{lo, hi})
	if g.total < 0 || len(g.have) != 1 || g.have[0].lo != 0 || g.have[0].hi != g.total {
		return fragResult{}
	}
	d.reassembled++
	d.remove(g)
	return fragResult{done: true, payload: g.data[:g.total], frags: g.frags, ipLen: g.ipLen}
}

// end returns the end of the bytes received so far.
func (g *datagram) end() int {
	if len(g.have) == 0 {
		return 0
	}
	return g.have[len(g.have)-1].hi
}

// addSpan inserts s into sorted, merged spans, merging it with those it
// touches or overlaps.
func addSpan(have []span, s span) []span {
	out := have[:0:0]
	placed := false
	for _, h := range have {
		switch {
		case h.hi < s.lo:
			out = append(out, h)
		case s.hi < h.lo:
			if !placed {
				out = append(out, s)
				placed = true
			}
			out = append(out, h)
		default:
			s = span{min(s.lo, h.lo), max(s.hi, h.hi)}
		}
	}
	if !placed {
		out = append(out, s)
	}
	return out
}

// fail gives up on g: its buffer is freed, later fragments of it are
// swallowed until it times out.
func (d *defrag) fail(g *datagram, anomaly, detail string) fragResult {
	d.dropped += uint64(g.frags)
	d.bytes -= len(g.data)
	g.data, g.have, g.dropped = nil, nil, true
	return fragResult{anomaly: anomaly, detail: detail}
}

// drop removes g, counting its fragments as dropped.
func (d *defrag) drop(g *datagram) {
	if !g.dropped {
		d.dropped += uint64(g.frags)
	}
	d.remove(g)
}

// remove takes g out of the table and the arrival list.
func (d *defrag) remove(g *datagram) {
	delete(d.m, g.key)
	d.bytes -= len(g.data)
	if g.prev != nil {
		g.prev.next = g.next
	} else {
		d.head = g.next
	}
	if g.next != nil {
		g.next.prev = g.prev
	} else {
		d.tail = g.prev
	}
	g.prev, g.next = nil, nil
}

// expire drops the datagrams that started more than the timeout before
// now.
func (d *defrag) expire(now time.Time) {
	for d.head != nil && now.Sub(d.head.first) > d.timeout {
		d.drop(d.head)
	}
}

// clear drops every datagram in flight (at the end of a capture).
func (d *defrag) clear() {
	for d.head != nil {
		d.drop(d.head)
	}
}
