package hunt

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
	"unsafe"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// A segment holds a run of stored events column by column: the sequence
// numbers and times, and per field a dictionary of the distinct values
// (with their kind) and, per event, the index of its value in it (0: the
// event has no such field). A predicate is evaluated once per dictionary
// entry, then per event by index.
type segment struct {
	seqs  []int64
	times []int64
	cols  map[string]*column
	names []string // every field of the segment (raw rows read them all)
	// inexact lists the rows (indexes, ascending) from which the event
	// cannot be rebuilt exactly as stored (see builder.inexactRow); nil
	// with exact false when the segment does not say (version 1).
	inexact []int
	exact   bool
}

type column struct {
	kinds []byte   // per dictionary entry; entry 0 is "absent"
	dict  []string // per dictionary entry
	ids   []uint32 // per event
}

// fixedFields are the event's own members, named as vigil.Event.Field
// names them; aliases map to them.
var fixedFields = []string{"event.id", "device.id", "event.source", "event.provenance", "event.kind",
	"event.category", "event.action", "event.outcome", "event.severity", "network.transport",
	"source.ip", "source.port", "destination.ip", "destination.port"}

var aliases = map[string]string{"source": "event.source", "kind": "event.kind", "category": "event.category",
	"action": "event.action", "outcome": "event.outcome", "severity": "event.severity"}

// canonical returns the name a field is stored under.
func canonical(f string) string {
	if c, ok := aliases[f]; ok {
		return c
	}
	return f
}

// builder makes a segment from events.
type builder struct {
	seg  segment
	idx  map[string]map[string]uint32 // per field: kind+text → id
	rows int
	// lossy is set while adding a row that cannot be rebuilt exactly.
	lossy bool
}

func newBuilder() *builder {
	return &builder{seg: segment{cols: map[string]*column{}}, idx: map[string]map[string]uint32{}}
}

func valueOf(v any) (byte, string) {
	switch x := v.(type) {
	case string:
		return kString, x
	case float64, int, int64:
		return kNumber, vigil.ValueString(x)
	case bool:
		return kBool, vigil.ValueString(x)
	case []string:
		b, _ := json.Marshal(x)
		return kList, string(b)
	case []any:
		l := make([]string, len(x))
		for i, e := range x {
			l[i] = vigil.ValueString(e)
		}
		b, _ := json.Marshal(l)
		return kList, string(b)
	}
	return kString, vigil.ValueString(v)
}

func (b *builder) set(name string, v any) {
	kind, text := valueOf(v)
	b.setText(name, kind, text)
}

// setText sets the field name of the current row to a value of kind.
func (b *builder) setText(name string, kind byte, text string) {
	col := b.seg.cols[name]
	if col == nil {
		col = &column{kinds: []byte{0}, dict: []string{""}, ids: make([]uint32, b.rows, b.rows+64)}
		b.seg.cols[name] = col
		b.idx[name] = map[string]uint32{}
	}
	key := string(kind) + text
	id, ok := b.idx[name][key]
	if !ok {
		id = uint32(len(col.dict))
		col.dict = append(col.dict, text)
		col.kinds = append(col.kinds, kind)
		b.idx[name][key] = id
	}
	if len(col.ids) == b.rows {
		col.ids = append(col.ids, id)
	} else {
		col.ids[b.rows] = id
	}
}

// add appends one event.
func (b *builder) add(seq int64, e *vigil.Event) {
	b.seg.seqs = append(b.seg.seqs, seq)
	b.seg.times = append(b.seg.times, e.Time.UnixNano())
	if e.Time.Location() != time.UTC || (e.Network != nil && *e.Network == (vigil.Network{})) {
		b.lossy = true
	}
	for _, f := range fixedFields {
		if v, ok := e.Field(f); ok {
			b.set(f, v)
		}
	}
	for k, v := range e.Fields {
		if isFixed(k) {
			b.lossy = true
			continue // read above, as vigil.Event.Field reads it
		}
		if !exactValue(v) {
			b.lossy = true
		}
		b.set(canonical(k), v)
	}
	b.endRow()
}

// exactValue says whether a field value is rebuilt as it is from its
// column: strings, numbers, booleans and lists of strings.
func exactValue(v any) bool {
	switch x := v.(type) {
	case string, float64, bool, []string:
		return true
	case []any:
		for _, e := range x {
			if _, ok := e.(string); !ok {
				return false
			}
		}
		return true
	}
	return false
}

// endRow ends the current row: the columns it has no value in get 0.
func (b *builder) endRow() {
	if b.lossy {
		b.seg.inexact = append(b.seg.inexact, b.rows)
		b.lossy = false
	}
	b.rows++
	for _, col := range b.seg.cols {
		if len(col.ids) < b.rows {
			col.ids = append(col.ids, 0)
		}
	}
}

func isFixed(k string) bool {
	for _, f := range fixedFields {
		if f == k {
			return true
		}
	}
	_, ok := aliases[k]
	return ok
}

func (b *builder) finish() *segment {
	s := &b.seg
	s.names = make([]string, 0, len(s.cols))
	for n := range s.cols {
		s.names = append(s.names, n)
	}
	sort.Strings(s.names)
	return s
}

// encode turns a segment into what the store keeps.
func (s *segment) encode() store.Segment {
	out := store.Segment{Columns: make(map[string][]byte, len(s.cols))}
	n := len(s.seqs)
	out.First, out.Last, out.Rows = s.seqs[0], s.seqs[n-1], n
	lo, hi := s.times[0], s.times[0]
	var meta []byte
	meta = append(meta, 1) // version
	meta = binary.AppendUvarint(meta, uint64(n))
	prevS, prevT := int64(0), int64(0)
	for i := range n {
		meta = binary.AppendVarint(meta, s.seqs[i]-prevS)
		meta = binary.AppendVarint(meta, s.times[i]-prevT)
		prevS, prevT = s.seqs[i], s.times[i]
		lo, hi = min(lo, s.times[i]), max(hi, s.times[i])
	}
	// Version 2: then the rows that cannot be rebuilt exactly.
	meta[0] = 2
	meta = binary.AppendUvarint(meta, uint64(len(s.inexact)))
	prev := 0
	for _, r := range s.inexact {
		meta = binary.AppendUvarint(meta, uint64(r-prev))
		prev = r
	}
	out.Meta = meta
	out.MinTime, out.MaxTime = time.Unix(0, lo).UTC(), time.Unix(0, hi).UTC()
	for name, col := range s.cols {
		out.Columns[name] = col.encode()
	}
	return out
}

func (c *column) encode() []byte {
	var b []byte
	b = append(b, 1) // version
	b = binary.AppendUvarint(b, uint64(len(c.dict)))
	for i := 1; i < len(c.dict); i++ {
		b = append(b, c.kinds[i])
		b = binary.AppendUvarint(b, uint64(len(c.dict[i])))
		b = append(b, c.dict[i]...)
	}
	w := width(len(c.dict))
	b = append(b, byte(w))
	b = binary.AppendUvarint(b, uint64(len(c.ids)))
	for _, id := range c.ids {
		switch w {
		case 1:
			b = append(b, byte(id))
		case 2:
			b = binary.LittleEndian.AppendUint16(b, uint16(id))
		default:
			b = binary.LittleEndian.AppendUint32(b, id)
		}
	}
	return b
}

func width(n int) int {
	switch {
	case n <= 1<<8:
		return 1
	case n <= 1<<16:
		return 2
	}
	return 4
}

var errCorrupt = errors.New("corrupt segment")

// decodeMeta reads a segment's sequence numbers and times.
func decodeMeta(meta []byte) (seqs, times []int64, err error) {
	seqs, times, _, _, err = decodeMetaRows(meta)
	return seqs, times, err
}

// decodeMetaRows reads a segment's sequence numbers and times and, from
// version 2 on (exact true), the rows that cannot be rebuilt exactly.
func decodeMetaRows(meta []byte) (seqs, times []int64, inexact []int, exact bool, err error) {
	if len(meta) < 1 || (meta[0] != 1 && meta[0] != 2) {
		return nil, nil, nil, false, errCorrupt
	}
	b := meta[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, nil, nil, false, errCorrupt
	}
	b = b[k:]
	seqs, times = make([]int64, n), make([]int64, n)
	var s, t int64
	for i := range n {
		ds, k1 := binary.Varint(b)
		if k1 <= 0 {
			return nil, nil, nil, false, errCorrupt
		}
		b = b[k1:]
		dt, k2 := binary.Varint(b)
		if k2 <= 0 {
			return nil, nil, nil, false, errCorrupt
		}
		b = b[k2:]
		s, t = s+ds, t+dt
		seqs[i], times[i] = s, t
	}
	if meta[0] == 1 {
		return seqs, times, nil, false, nil
	}
	m, k := binary.Uvarint(b)
	if k <= 0 || m > n {
		return nil, nil, nil, false, errCorrupt
	}
	b = b[k:]
	inexact = make([]int, m)
	r := uint64(0)
	for i := range inexact {
		d, k := binary.Uvarint(b)
		if k <= 0 || (i > 0 && d == 0) || r+d >= n {
			return nil, nil, nil, false, errCorrupt
		}
		b = b[k:]
		r += d
		inexact[i] = int(r)
	}
	return seqs, times, inexact, true, nil
}

// decodeColumn reads a column of rows events.
func decodeColumn(b []byte, rows int) (*column, error) {
	if len(b) < 1 || b[0] != 1 {
		return nil, errCorrupt
	}
	b = b[1:]
	nd, k := binary.Uvarint(b)
	if k <= 0 || nd == 0 || nd > uint64(len(b))+1 {
		return nil, errCorrupt
	}
	b = b[k:]
	c := &column{kinds: make([]byte, nd), dict: make([]string, nd)}
	for i := 1; i < int(nd); i++ {
		if len(b) < 1 {
			return nil, errCorrupt
		}
		c.kinds[i] = b[0]
		l, k := binary.Uvarint(b[1:])
		if k <= 0 || l > uint64(len(b)-1-k) {
			return nil, errCorrupt
		}
		// The blob is the segment's own and never changes: its
		// dictionary strings point into it.
		if l > 0 {
			c.dict[i] = unsafe.String(&b[1+k], int(l))
		}
		b = b[1+k+int(l):]
	}
	if len(b) < 1 {
		return nil, errCorrupt
	}
	w := int(b[0])
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || int(n) != rows || (w != 1 && w != 2 && w != 4) || uint64(len(b)-1-k) != n*uint64(w) {
		return nil, errCorrupt
	}
	b = b[1+k:]
	c.ids = make([]uint32, n)
	for i := range c.ids {
		var id uint32
		switch w {
		case 1:
			id = uint32(b[i])
		case 2:
			id = uint32(binary.LittleEndian.Uint16(b[2*i:]))
		default:
			id = binary.LittleEndian.Uint32(b[4*i:])
		}
		if id >= uint32(nd) {
			return nil, errCorrupt
		}
		c.ids[i] = id
	}
	return c, nil
}

// decodeSegment makes a segment from its stored form (with the columns
// asked for).
func decodeSegment(info store.SegmentInfo, cols map[string][]byte) (*segment, error) {
	seqs, times, inexact, exact, err := decodeMetaRows(info.Meta)
	if err != nil {
		return nil, fmt.Errorf("cannot read segment %d: %w", info.First, err)
	}
	s := &segment{seqs: seqs, times: times, cols: make(map[string]*column, len(cols)), inexact: inexact, exact: exact}
	for name, b := range cols {
		c, err := decodeColumn(b, len(seqs))
		if err != nil {
			return nil, fmt.Errorf("cannot read column %q of segment %d: %w", name, info.First, err)
		}
		s.cols[name] = c
		s.names = append(s.names, name)
	}
	sort.Strings(s.names)
	return s, nil
}

// value returns the typed value of row i in c (nil when absent).
func (c *column) value(i int) any {
	id := c.ids[i]
	if id == 0 {
		return nil
	}
	text := c.dict[id]
	switch c.kinds[id] {
	case kNumber:
		var f float64
		if json.Unmarshal([]byte(text), &f) == nil {
			return f
		}
	case kBool:
		return text == "true"
	case kList:
		return elems(kList, text)
	}
	return text
}

// display returns the text of dictionary entry id as vigil.ValueString
// gives it (lists joined with commas).
func (c *column) display(id uint32) string {
	if c.kinds[id] == kList {
		return vigil.ValueString(elems(kList, c.dict[id]))
	}
	return c.dict[id]
}
