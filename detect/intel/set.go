package intel

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/feeds"
)

// Match is one indicator an observed value hit.
type Match struct {
	ID         string
	Feed       string
	Type       feeds.Type
	Value      string // the indicator's value (an address, a prefix, a domain, ...)
	Name       string
	Labels     []string
	Confidence int
	And        []feeds.Cond
}

// entry is the compact form of one indicator in a Set.
type entry struct {
	id    string
	value string
	and   []feeds.Cond
	from  int64 // unix seconds, 0: none
	until int64 // unix seconds, 0: none
	meta  int32 // index in Set.meta (name, labels)
	next  int32 // next entry with the same key, -1: none
	feed  uint16
	conf  uint8
	typ   uint8
}

type meta struct {
	name   string
	labels []string
}

var typeCodes = []feeds.Type{feeds.TypeIP, feeds.TypeDomain, feeds.TypeURL, feeds.TypeMD5, feeds.TypeSHA1, feeds.TypeSHA256, feeds.TypeSHA512}

func typeCode(t feeds.Type) uint8 {
	for i, c := range typeCodes {
		if c == t {
			return uint8(i)
		}
	}
	return 255
}

type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func addr128(a netip.Addr) u128 {
	b := a.As16()
	return u128{
		hi: uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 | uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7]),
		lo: uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 | uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15]),
	}
}

// prefixes is a sorted table of nested-or-disjoint address ranges (CIDR
// IPv6 prefixes). parent[i] is the nearest range that
// contains range i, or -1.
type prefixes struct {
	lo, hi []u128
	parent []int32
	ent    []int32
}

// prefixes4 is prefixes for IPv4, with 32-bit keys (a compact table that
// stays in cache).
type prefixes4 struct {
	lo, hi []uint32
	parent []int32
	ent    []int32
}

// Set is an immutable index of indicators.
type Set struct {
	entries []entry
	meta    []meta
	feeds   []string

	v4 map[uint32]int32
	// v4bits has one bit per /24 holding an exact IPv4 indicator, so most
	// misses cost one access to a 2 MB bitmap instead of a map probe.
	v4bits  []uint64
	v6      map[[16]byte]int32
	nets4   prefixes4 // IPv4 prefixes
	nets    prefixes  // IPv6 prefixes
	domains map[string]int32
	urls    map[string]int32
	hashes  map[string]int32

	skipped int
}

// Len is the number of indicators in the set.
func (s *Set) Len() int { return len(s.entries) }

// Build indexes indicators. Indicators of a type that cannot be matched on
// its own (file names, ports) or with a bad value are skipped (see
// Skipped).
func Build(ins []feeds.Indicator) *Set {
	s := &Set{
		v4: map[uint32]int32{}, v6: map[[16]byte]int32{},
		domains: map[string]int32{}, urls: map[string]int32{}, hashes: map[string]int32{},
	}
	s.entries = make([]entry, 0, len(ins))
	feedIdx := map[string]uint16{}
	metaIdx := map[string]int32{}
	type netEnt struct {
		lo, hi u128
		ent    int32
	}
	var nets []netEnt
	type net4 struct {
		lo, hi uint32
		ent    int32
	}
	var nets4 []net4
	link := func(m map[string]int32, k string, e int32) {
		if h, ok := m[k]; ok {
			s.entries[e].next = h
		}
		m[k] = e
	}
	for i := range ins {
		in := &ins[i]
		tc := typeCode(in.Type)
		if tc == 255 {
			s.skipped++
			continue
		}
		fi, ok := feedIdx[in.Feed]
		if !ok {
			fi = uint16(len(s.feeds))
			feedIdx[in.Feed] = fi
			s.feeds = append(s.feeds, in.Feed)
		}
		mk := in.Name + "\x00" + strings.Join(in.Labels, "\x00")
		mi, ok := metaIdx[mk]
		if !ok {
			mi = int32(len(s.meta))
			metaIdx[mk] = mi
			s.meta = append(s.meta, meta{name: in.Name, labels: in.Labels})
		}
		conf := in.Confidence
		conf = max(0, min(conf, 100))
		e := entry{id: in.ID, value: in.Value, and: in.And, meta: mi, next: -1, feed: fi, conf: uint8(conf), typ: tc}
		if !in.ValidFrom.IsZero() {
			e.from = in.ValidFrom.Unix()
		}
		if !in.ValidUntil.IsZero() {
			e.until = in.ValidUntil.Unix()
		}
		ei := int32(len(s.entries))
		switch in.Type {
		case feeds.TypeIP:
			if a, err := netip.ParseAddr(in.Value); err == nil {
				a = a.Unmap()
				s.entries = append(s.entries, e)
				if a.Is4() {
					b := a.As4()
					k := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
					if h, ok := s.v4[k]; ok {
						s.entries[ei].next = h
					}
					s.v4[k] = ei
					if s.v4bits == nil {
						s.v4bits = make([]uint64, 1<<24/64)
					}
					s.v4bits[k>>14] |= 1 << ((k >> 8) & 63)
				} else {
					k := a.As16()
					if h, ok := s.v6[k]; ok {
						s.entries[ei].next = h
					}
					s.v6[k] = ei
				}
				continue
			}
			p, err := netip.ParsePrefix(in.Value)
			if err != nil {
				s.skipped++
				continue
			}
			p = p.Masked()
			bits := p.Bits()
			a := p.Addr()
			if a.Is4() {
				b := a.As4()
				lo := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
				hi := lo | uint32(uint64(1)<<(32-bits)-1)
				s.entries = append(s.entries, e)
				nets4 = append(nets4, net4{lo, hi, ei})
				continue
			}
			lo := addr128(a)
			var hi u128
			switch {
			case bits == 0:
				hi = u128{^uint64(0), ^uint64(0)}
			case bits <= 64:
				hi = u128{lo.hi | (^uint64(0) >> bits), ^uint64(0)}
			default:
				hi = u128{lo.hi, lo.lo | (^uint64(0) >> (bits - 64))}
			}
			s.entries = append(s.entries, e)
			nets = append(nets, netEnt{lo, hi, ei})
		case feeds.TypeDomain:
			s.entries = append(s.entries, e)
			link(s.domains, in.Value, ei)
		case feeds.TypeURL:
			s.entries = append(s.entries, e)
			link(s.urls, in.Value, ei)
		default:
			s.entries = append(s.entries, e)
			link(s.hashes, in.Value, ei)
		}
	}
	// Prefixes: sort by start, widest first; merge duplicates; find parents.
	slices.SortFunc(nets, func(a, b netEnt) int {
		switch {
		case a.lo.less(b.lo):
			return -1
		case b.lo.less(a.lo):
			return 1
		case b.hi.less(a.hi):
			return -1
		case a.hi.less(b.hi):
			return 1
		}
		return 0
	})
	var stack []int32
	for _, n := range nets {
		last := len(s.nets.lo) - 1
		if last >= 0 && s.nets.lo[last] == n.lo && s.nets.hi[last] == n.hi {
			s.entries[n.ent].next = s.nets.ent[last]
			s.nets.ent[last] = n.ent
			continue
		}
		for len(stack) > 0 && s.nets.hi[stack[len(stack)-1]].less(n.lo) {
			stack = stack[:len(stack)-1]
		}
		parent := int32(-1)
		if len(stack) > 0 {
			parent = stack[len(stack)-1]
		}
		idx := int32(len(s.nets.lo))
		s.nets.lo = append(s.nets.lo, n.lo)
		s.nets.hi = append(s.nets.hi, n.hi)
		s.nets.parent = append(s.nets.parent, parent)
		s.nets.ent = append(s.nets.ent, n.ent)
		stack = append(stack, idx)
	}
	slices.SortFunc(nets4, func(a, b net4) int {
		switch {
		case a.lo != b.lo:
			return cmp.Compare(a.lo, b.lo)
		default:
			return cmp.Compare(b.hi, a.hi)
		}
	})
	stack = stack[:0]
	t4 := &s.nets4
	for _, n := range nets4 {
		last := len(t4.lo) - 1
		if last >= 0 && t4.lo[last] == n.lo && t4.hi[last] == n.hi {
			s.entries[n.ent].next = t4.ent[last]
			t4.ent[last] = n.ent
			continue
		}
		for len(stack) > 0 && t4.hi[stack[len(stack)-1]] < n.lo {
			stack = stack[:len(stack)-1]
		}
		parent := int32(-1)
		if len(stack) > 0 {
			parent = stack[len(stack)-1]
		}
		idx := int32(len(t4.lo))
		t4.lo = append(t4.lo, n.lo)
		t4.hi = append(t4.hi, n.hi)
		t4.parent = append(t4.parent, parent)
		t4.ent = append(t4.ent, n.ent)
		stack = append(stack, idx)
	}
	return s
}

// Skipped is how many indicators Build could not index.
func (s *Set) Skipped() int { return s.skipped }

// match returns the entry as a Match.
func (s *Set) match(i int32) Match {
	e := &s.entries[i]
	m := s.meta[e.meta]
	return Match{ID: e.id, Feed: s.feeds[e.feed], Type: typeCodes[e.typ], Value: e.value, Name: m.name, Labels: m.labels, Confidence: int(e.conf), And: e.and}
}

// valid reports whether entry i is in force at unix time t (0: ignore).
func (s *Set) valid(i int32, t int64) bool {
	e := &s.entries[i]
	if t == 0 {
		return true
	}
	return (e.from == 0 || t >= e.from) && (e.until == 0 || t < e.until)
}

// hits collects entry indexes without allocating for the first few.
type hits struct {
	n   int
	buf [8]int32
	ext []int32
}

func (h *hits) add(i int32) {
	if h.n < len(h.buf) {
		h.buf[h.n] = i
	} else {
		h.ext = append(h.ext, i)
	}
	h.n++
}

func (h *hits) at(k int) int32 {
	if k < len(h.buf) {
		return h.buf[k]
	}
	return h.ext[k-len(h.buf)]
}

// lookupAddr adds the entries matching an address: exact, then every
// enclosing prefix (most specific first).
func (s *Set) lookupAddr(a netip.Addr, t int64, h *hits) {
	if a.Is4In6() {
		a = a.Unmap()
	}
	if a.Is4() {
		b := a.As4()
		k := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		if s.v4bits != nil && s.v4bits[k>>14]&(1<<((k>>8)&63)) != 0 {
			if i, ok := s.v4[k]; ok {
				s.chain(i, t, h)
			}
		}
		t4 := &s.nets4
		lo, hi := 0, len(t4.lo)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if k < t4.lo[m] {
				hi = m
			} else {
				lo = m + 1
			}
		}
		for i := int32(lo - 1); i >= 0; i = t4.parent[i] {
			if t4.hi[i] >= k {
				s.chain(t4.ent[i], t, h)
			}
		}
		return
	}
	if len(s.v6) > 0 {
		if i, ok := s.v6[a.As16()]; ok {
			s.chain(i, t, h)
		}
	}
	n := len(s.nets.lo)
	if n == 0 {
		return
	}
	x := addr128(a)
	// Last range starting at or before x.
	lo, hi := 0, n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if x.less(s.nets.lo[m]) {
			hi = m
		} else {
			lo = m + 1
		}
	}
	for i := int32(lo - 1); i >= 0; i = s.nets.parent[i] {
		if !s.nets.hi[i].less(x) {
			s.chain(s.nets.ent[i], t, h)
		}
	}
}

func (s *Set) chain(i int32, t int64, h *hits) {
	for ; i >= 0; i = s.entries[i].next {
		if s.valid(i, t) {
			h.add(i)
		}
	}
}

// lower returns s lower-cased without a trailing dot, using buf when a copy
// is needed.
func lower(s string, buf []byte) string {
	s = strings.TrimSuffix(s, ".")
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			if len(s) > len(buf) {
				return strings.ToLower(s)
			}
			b := buf[:len(s)]
			for j := 0; j < len(s); j++ {
				c := s[j]
				if c >= 'A' && c <= 'Z' {
					c += 'a' - 'A'
				}
				b[j] = c
			}
			return unsafeString(b)
		}
	}
	return s
}

// lookupDomain adds the entries matching a name or any parent domain.
func (s *Set) lookupDomain(name string, t int64, h *hits) {
	if len(s.domains) == 0 || name == "" {
		return
	}
	var buf [256]byte
	name = lower(name, buf[:])
	for {
		if i, ok := s.domains[name]; ok {
			s.chain(i, t, h)
		}
		dot := strings.IndexByte(name, '.')
		if dot < 0 {
			return
		}
		name = name[dot+1:]
	}
}

func (s *Set) lookupHash(v string, t int64, h *hits) {
	if len(s.hashes) == 0 || v == "" {
		return
	}
	var buf [128]byte
	if i, ok := s.hashes[lower(v, buf[:])]; ok {
		s.chain(i, t, h)
	}
}

func (s *Set) lookupURL(v string, t int64, h *hits) {
	if len(s.urls) == 0 || v == "" {
		return
	}
	if i, ok := s.urls[v]; ok {
		s.chain(i, t, h)
		return
	}
	if n, err := feeds.NormalizeURL(v); err == nil && n != v {
		if i, ok := s.urls[n]; ok {
			s.chain(i, t, h)
		}
	}
}

// LookupAddr returns the indicators matching an address at time t (zero:
// ignore validity).
func (s *Set) LookupAddr(a netip.Addr, t time.Time) []Match {
	var h hits
	s.lookupAddr(a, unix(t), &h)
	return s.matches(&h)
}

// LookupDomain returns the indicators matching a name or a parent domain.
func (s *Set) LookupDomain(name string, t time.Time) []Match {
	var h hits
	s.lookupDomain(name, unix(t), &h)
	return s.matches(&h)
}

// CountAddr returns how many indicators match an address, without
// allocating; it is the line-rate path the benchmark measures.
func (s *Set) CountAddr(a netip.Addr, t time.Time) int {
	var h hits
	s.lookupAddr(a, unix(t), &h)
	return h.n
}

// CountDomain is CountAddr for names.
func (s *Set) CountDomain(name string, t time.Time) int {
	var h hits
	s.lookupDomain(name, unix(t), &h)
	return h.n
}

func (s *Set) matches(h *hits) []Match {
	if h.n == 0 {
		return nil
	}
	out := make([]Match, h.n)
	for k := range h.n {
		out[k] = s.match(h.at(k))
	}
	return out
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
