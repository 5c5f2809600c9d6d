package sigma

import (
	"encoding/binary"
	"unsafe"
)

// valMemo remembers, for one route, what the literal prefilter found in
// values already seen: log values repeat (user agents, paths, process
// images, referers, fleet names), and looking a value up costs less than
// sweeping it again. The result of a sweep depends only on the route, the
// value, the fields of its key and whether keyword literals apply, so a
// remembered result is the sweep's. Keys whose values rarely repeat
// (timestamps, identifiers) stop being remembered after a trial.
//
// A valMemo belongs to one evaluation context (not shared between
// goroutines).
type valMemo struct {
	rt    *route
	slots []memoSlot // open addressing, len a power of two
	used  int
	text  []byte  // the remembered values, back to back
	marks []int32 // the rule clauses each value marks, back to back
	// stats per key (index kidx+1): lookups and hits during the trial.
	stats []memoStat
}

type memoSlot struct {
	h          uint64 // 0: empty
	key        int32  // kidx<<1 | keyword flag
	off, n     uint32 // the value in text
	moff, mlen uint32 // its marks
}

type memoStat struct {
	looks, hits uint32
	off         bool // the key's values are not remembered
}

const (
	memoSlots    = 1 << 13
	memoMinLen   = 6   // shorter values are swept as cheaply as looked up
	memoMaxLen   = 256 // longer values are not kept
	memoMaxMarks = 64
	memoTrial    = 256 // lookups of a key before judging its hit rate
	memoMaxText  = 1 << 20
)

// memoFor returns the context's memo for route rt.
func (c *evalCtx) memoFor(rt *route, nkeys int) *valMemo {
	for _, m := range c.memos {
		if m.rt == rt {
			return m
		}
	}
	m := &valMemo{rt: rt, slots: make([]memoSlot, memoSlots), stats: make([]memoStat, nkeys+1)}
	if len(c.memos) >= 8 {
		c.memos = c.memos[1:]
	}
	c.memos = append(c.memos, m)
	return m
}

// memoHash hashes a value of memoMinLen bytes or more, eight bytes at a
// time, the last word overlapping the previous one (never 0).
func memoHash(s string) uint64 {
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	h := uint64(len(s)) * 0x9e3779b97f4a7c15
	if len(b) < 8 {
		h ^= uint64(binary.LittleEndian.Uint32(b)) | uint64(binary.LittleEndian.Uint32(b[len(b)-4:]))<<32
	} else {
		last := binary.LittleEndian.Uint64(b[len(b)-8:])
		for len(b) > 8 {
			h = (h ^ binary.LittleEndian.Uint64(b)) * 0xff51afd7ed558ccd
			b = b[8:]
		}
		h ^= last
	}
	h *= 0xc4ceb9fe1a85ec53
	return h ^ h>>29 | 1
}

// scan runs the prefilter on value s of key kidx (ids: the key's fields;
// kw: keyword literals apply), from memory when s was seen before.
func (m *valMemo) scan(c *evalCtx, s string, kidx int32, ids []int, kw bool) {
	st := &m.stats[kidx+1]
	if st.off || len(s) < memoMinLen || len(s) > memoMaxLen {
		m.rt.lits.scan(c, s, ids)
		return
	}
	key := kidx << 1
	if kw {
		key |= 1
	}
	h := memoHash(s)
	mask := uint64(len(m.slots) - 1)
	st.looks++
	for j := h & mask; ; j = (j + 1) & mask {
		sl := &m.slots[j]
		if sl.h == 0 {
			break
		}
		if sl.h == h && sl.key == key && string(m.text[sl.off:sl.off+sl.n]) == s {
			st.hits++
			for _, v := range m.marks[sl.moff : sl.moff+sl.mlen] {
				c.mark(v)
			}
			return
		}
	}
	if st.looks >= memoTrial && st.hits < st.looks/2 {
		st.off = true
	}
	// Sweep, recording the marks.
	c.rec, c.recording = c.rec[:0], true
	m.rt.lits.scan(c, s, ids)
	c.recording = false
	if len(c.rec) > memoMaxMarks {
		return
	}
	if m.used >= len(m.slots)*3/4 || len(m.text)+len(s) > memoMaxText {
		clear(m.slots)
		m.used, m.text, m.marks = 0, m.text[:0], m.marks[:0]
	}
	j := h & mask
	for m.slots[j].h != 0 {
		j = (j + 1) & mask
	}
	m.slots[j] = memoSlot{h: h, key: key, off: uint32(len(m.text)), n: uint32(len(s)), moff: uint32(len(m.marks)), mlen: uint32(len(c.rec))}
	m.text = append(m.text, s...)
	m.marks = append(m.marks, c.rec...)
	m.used++
}

// mark records that clause v&7 of rule v>>3 holds for the current event.
func (c *evalCtx) mark(v int32) {
	ri := v >> 3
	if c.stamp[ri] != c.gen {
		c.stamp[ri] = c.gen
		c.mask[ri] = 0
		c.cands = append(c.cands, ri)
	}
	c.mask[ri] |= 1 << (v & 7)
}
