package sigma

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// Quote and backslash masks of the line being scanned: bit j of qm[k]
// is set when b[64k+j] is '"', of bm[k] when it is '\\'. They are made in
// one vectorized pass (maskBlocks), so that finding where a string ends
// costs a bit scan instead of a search call per string.

// lineMasks computes c.qm and c.bm for line b, without its line end, and
// reports whether that holds a control character (below 0x20): JSON
// allows tabs, carriage returns and newlines only between tokens, so such
// a line is checked by encoding/json as well.
func (c *evalCtx) lineMasks(b []byte) (ctl bool) {
	b = trimLineEnd(b)
	n := (len(b) + 63) / 64
	if cap(c.qm) < n {
		c.qm, c.bm = make([]uint64, n, 2*n), make([]uint64, n, 2*n)
	}
	c.qm, c.bm = c.qm[:n], c.bm[:n]
	full := len(b) / 64
	if full > 0 {
		ctl = maskBlocks(&b[0], full, &c.qm[0], &c.bm[0])
	}
	if full < n {
		// The last partial block, from a copy padded with spaces.
		c.pad = spaces64
		copy(c.pad[:], b[full*64:])
		ctl = maskBlocks(&c.pad[0], 1, &c.qm[full], &c.bm[full]) || ctl
	}
	return ctl
}

var spaces64 = [64]byte{
	' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
	' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
	' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
	' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ',
}

// trimLineEnd returns b without a final "\n" or "\r\n".
func trimLineEnd(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n > 1 && b[n-2] == '\r' {
			b = b[:n-2]
		}
	}
	return b
}

// nextSet returns the index of the first set bit of m at or after p, or
// -1.
func nextSet(m []uint64, p int) int {
	k := p >> 6
	if k >= len(m) {
		return -1
	}
	if w := m[k] >> uint(p&63); w != 0 {
		return p + bits.TrailingZeros64(w)
	}
	for k++; k < len(m); k++ {
		if m[k] != 0 {
			return k<<6 + bits.TrailingZeros64(m[k])
		}
	}
	return -1
}

// maskBlocksGo is maskBlocks in Go, eight bytes at a time.
func maskBlocksGo(p *byte, n int, q, bs *uint64) (ctl bool) {
	b := unsafe.Slice(p, n*64)
	qs, bss := unsafe.Slice(q, n), unsafe.Slice(bs, n)
	var low uint64
	for k := 0; k < n; k++ {
		var mq, mb uint64
		for j := 0; j < 64; j += 8 {
			w := binary.LittleEndian.Uint64(b[k*64+j:])
			mq |= movemask(eqBytes(w, '"')) << j
			mb |= movemask(eqBytes(w, '\\')) << j
			low |= (w - lo8*0x20) &^ w // a byte below 0x20 sets its high bit
		}
		qs[k], bss[k] = mq, mb
	}
	return low&hi8 != 0
}

// eqBytes sets the high bit of each byte of w equal to c (exactly: no
// borrow between bytes).
func eqBytes(w uint64, c byte) uint64 {
	t := w ^ (lo8 * uint64(c))
	return ^((t&0x7f7f7f7f7f7f7f7f + 0x7f7f7f7f7f7f7f7f) | t) & hi8
}

// movemask gathers the high bits of the eight bytes of m into bits 0-7.
func movemask(m uint64) uint64 { return (m >> 7 * 0x0102040810204080) >> 56 }
