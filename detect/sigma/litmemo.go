package sigma

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"unsafe"
)

// litMemo remembers which prefilter literals a value contains, so that a
// value seen again (a user agent, an image path, a referer: most fields of
// device and web logs take few distinct values) costs a hash and a
// compare instead of a trigram sweep. Entries are keyed by route, key and
// value. A value is remembered the second time it is seen within the
// recent past (a doorkeeper bitmap), so values that never repeat — times,
// ids, unique URLs — neither evict useful entries nor cost more than a
// hash. Memory is fixed: when the value or entry stores fill, the memo
// starts over. A litMemo belongs to one evalCtx (one goroutine).
type litMemo struct {
	seed   uint64
	ents   [memoEnts]memoEnt
	seen   [memoSeen / 64]uint64
	vals   []byte
	marks  []int32
	misses int
}

type memoEnt struct {
	h                      uint64 // 0: empty
	voff, vlen, moff, mlen uint32
}

const (
	memoEnts     = 1 << 12 // entries (direct mapped): 96 KiB, with the stores within L2
	memoSeen     = 1 << 16 // doorkeeper bits
	memoValBytes = 1 << 18 // bytes of remembered values before starting over
	memoMarks    = 1 << 16 // remembered entries before starting over
	memoMinLen   = 8       // shorter values are swept: cheaper than a hash and a compare
	memoMaxLen   = 1 << 10 // longer values are swept: rarely repeated
	memoMaxHits  = 255     // values with more prefilter entries are swept
)

func newLitMemo() *litMemo {
	return &litMemo{seed: rand.Uint64() | 1, vals: make([]byte, 0, memoValBytes), marks: make([]int32, 0, memoMarks)}
}

// scanLits marks the rules of rt whose literals occur in s, the value of
// key (a key id of the line scanner, or -1) whose fields are ids.
func (c *evalCtx) scanLits(rt *route, key int32, s string, ids []int) {
	if len(s) < memoMinLen || len(s) > memoMaxLen {
		rt.lits.scan(c, s, ids)
		return
	}
	m := c.memo
	if m == nil {
		m = newLitMemo()
		c.memo = m
	}
	h := memoHash(m.seed^(uint64(rt.id)<<32|uint64(uint32(key))), s)
	h |= 1
	e := &m.ents[h&(memoEnts-1)]
	if e.h == h && int(e.vlen) == len(s) && string(m.vals[e.voff:e.voff+e.vlen]) == s {
		if e.mlen > 0 {
			c.markAll(m.marks[e.moff : e.moff+e.mlen])
		}
		return
	}
	c.rec = rt.lits.collect(s, ids, c.rec[:0])
	c.markAll(c.rec)
	// Remember the value only when it was seen recently.
	bit := (h >> 32) & (memoSeen - 1)
	if m.seen[bit>>6]&(1<<(bit&63)) == 0 {
		m.seen[bit>>6] |= 1 << (bit & 63)
		if m.misses++; m.misses > memoSeen/4 {
			m.seen = [memoSeen / 64]uint64{}
			m.misses = 0
		}
		return
	}
	if len(c.rec) > memoMaxHits {
		return
	}
	if len(m.vals)+len(s) > cap(m.vals) || len(m.marks)+len(c.rec) > cap(m.marks) {
		m.ents = [memoEnts]memoEnt{}
		m.vals, m.marks = m.vals[:0], m.marks[:0]
	}
	*e = memoEnt{h: h, voff: uint32(len(m.vals)), vlen: uint32(len(s)), moff: uint32(len(m.marks)), mlen: uint32(len(c.rec))}
	m.vals = append(m.vals, s...)
	m.marks = append(m.marks, c.rec...)
}

// memoHash hashes s with a seeded multiply-mix over 8-byte words (the
// memo compares values on a hit, so the hash only spreads them; its seed
// is random per process so inputs cannot be chosen to collide).
func memoHash(seed uint64, s string) uint64 {
	const m1, m2 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db
	h := seed ^ uint64(len(s))*m1
	p := unsafe.StringData(s)
	n := len(s)
	b := unsafe.Slice(p, n)
	for len(b) > 8 {
		hi, lo := bits.Mul64(h^binary.LittleEndian.Uint64(b), m2)
		h = hi ^ lo
		b = b[8:]
	}
	var w uint64
	if n >= 8 {
		w = binary.LittleEndian.Uint64(unsafe.Slice(p, n)[n-8:])
	} else {
		for i := len(b) - 1; i >= 0; i-- {
			w = w<<8 | uint64(b[i])
		}
	}
	hi, lo := bits.Mul64(h^w, m1)
	return hi ^ lo
}
