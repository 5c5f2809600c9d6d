package sensor

import (
	"github.com/vigil-iot/vigil/proto"
)

// half is one direction of a TCP connection being reassembled.
type half struct {
	init     bool
	next     uint32    // next expected sequence number
	buf      []byte    // bytes delivered but not yet consumed by the parser
	ooo      []segment // segments after a hole, in arrival order
	oooBytes int
}

type segment struct {
	seq  uint32
	data []byte // a copy
}

// Limits of reassembly per direction.
const (
	maxOOOSegments = 64
	maxOOOBytes    = 1 << 18
)

// seqDiff returns a-b in sequence space.
func seqDiff(a, b uint32) int32 { return int32(a - b) }

// tcpSegment feeds one TCP segment of direction d into the flow's
// reassembly and from there to its stream parser.
func (e *engine) tcpSegment(f *flow, d proto.Direction, p *packet) {
	h := &f.half[d]
	seq := p.seq
	if p.flags&tcpSYN != 0 {
		h.init = true
		h.next = seq + 1
		h.buf = h.buf[:0]
		seq++
	}
	data := p.payload
	if len(data) == 0 {
		return
	}
	if !h.init {
		h.init = true
		h.next = seq
	}
	diff := seqDiff(seq, h.next)
	if diff < 0 {
		// Retransmission, whole or partial.
		if int(-diff) >= len(data) {
			e.stats.Retransmissions++
			return
		}
		data = data[-diff:]
		seq = h.next
		diff = 0
	}
	if diff > 0 {
		if len(h.ooo) >= maxOOOSegments || h.oooBytes+len(data) > maxOOOBytes {
			// Give up waiting for the hole: skip it.
			e.flushHoles(f, d)
			e.tcpSegment(f, d, p)
			return
		}
		e.stats.OutOfOrder++
		h.ooo = append(h.ooo, segment{seq: seq, data: append([]byte(nil), data...)})
		h.oooBytes += len(data)
		return
	}
	e.deliver(f, d, data)
	h.next += uint32(len(data))
	e.drainOOO(f, d)
}

// drainOOO delivers kept segments that the stream has caught up with.
func (e *engine) drainOOO(f *flow, d proto.Direction) {
	h := &f.half[d]
	for progress := true; progress && len(h.ooo) > 0; {
		progress = false
		for i := 0; i < len(h.ooo); i++ {
			s := h.ooo[i]
			diff := seqDiff(s.seq, h.next)
			if diff > 0 {
				continue
			}
			h.ooo = append(h.ooo[:i], h.ooo[i+1:]...)
			h.oooBytes -= len(s.data)
			i--
			progress = true
			if int(-diff) >= len(s.data) {
				continue
			}
			data := s.data[-diff:]
			e.deliver(f, d, data)
			h.next += uint32(len(data))
		}
	}
}

// flushHoles skips the first hole of direction d (telling the parser
// about the gap) and delivers what follows it.
func (e *engine) flushHoles(f *flow, d proto.Direction) {
	h := &f.half[d]
	for len(h.ooo) > 0 {
		lo := 0
		for i, s := range h.ooo {
			if seqDiff(s.seq, h.ooo[lo].seq) < 0 {
				lo = i
			}
		}
		gap := seqDiff(h.ooo[lo].seq, h.next)
		if gap > 0 {
			e.stats.Gaps++
			h.buf = h.buf[:0]
			if f.stream != nil {
				e.ctx(f, d)
				f.stream.Gap(&e.c, int(gap), e)
			}
			h.next = h.ooo[lo].seq
		}
		e.drainOOO(f, d)
	}
}

// deliver hands in-order bytes to the stream parser. When nothing is
// buffered the parser reads the packet in place; only what it leaves is
// copied.
func (e *engine) deliver(f *flow, d proto.Direction, data []byte) {
	if f.stream == nil {
		return
	}
	h := &f.half[d]
	e.ctx(f, d)
	if len(h.buf) == 0 {
		n := f.stream.Parse(&e.c, data, e)
		if n < len(data) {
			h.buf = append(h.buf[:0], data[n:]...)
		}
	} else {
		h.buf = append(h.buf, data...)
		n := f.stream.Parse(&e.c, h.buf, e)
		rest := copy(h.buf, h.buf[n:])
		h.buf = h.buf[:rest]
	}
	if len(h.buf) > e.cfg.MaxStreamBuffer {
		// The parser wants more than we keep: drop it as a gap.
		e.stats.Gaps++
		n := len(h.buf)
		h.buf = h.buf[:0]
		f.stream.Gap(&e.c, n, e)
	}
	if cap(h.buf) > 64<<10 && len(h.buf) < 4<<10 {
		h.buf = append([]byte(nil), h.buf...) // give back a large buffer
	}
}
