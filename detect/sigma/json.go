package sigma

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// jsonSource is an NDJSON line scanned eagerly into the context's slots:
// only fields that rules reference are kept, strings point into the line
// (or into the arena when they hold escapes), nothing is allocated; c.vals
// holds every scalar of the line.
type jsonSource struct {
	rs   *RuleSet
	line []byte
}

// scalarVal is one scalar value of a scanned line with the slots of its
// key (nil when no rule references the key).
type scalarVal struct {
	s   string
	key int32 // slot of the key in the rule set's key table, -1: none
	// str: a string that keyword searches look at (not one of the
	// envelope fields, see envelopeNames).
	str bool
}

func (j *jsonSource) load(*evalCtx, int, *slot) {} // eager: unset means absent

// strings lists the string values of the event that keyword searches
// look at.
func (j *jsonSource) strings(c *evalCtx, fn func(string) bool) bool {
	for i := range c.vals {
		if c.vals[i].str && !fn(c.vals[i].s) {
			return false
		}
	}
	return true
}

var (
	errJSON  = errors.New("invalid JSON")
	errDepth = errors.New("invalid JSON: nested deeper than 100 levels")
)

// maxDepth bounds the nesting of objects and arrays the scanner descends
// into, so that hostile input cannot exhaust the stack.
const maxDepth = 100

func skipWS(b []byte, i int) int {
	for ; i < len(b); i++ {
		// Most calls find no white space: one test says so.
		if ch := b[i]; ch > ' ' || ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r' {
			return i
		}
	}
	return i
}

// scanString reads a string starting at b[i] == '"'. It returns the span
// of its raw content, whether it holds escapes, and the index after it.
func scanString(b []byte, i int) (start, end int, esc bool, next int, err error) {
	i++
	start = i
	j := quoteOrBackslash(b, i)
	if j < len(b) && b[j] == '"' {
		return start, j, false, j + 1, nil
	}
	for i = j; i < len(b); {
		c := b[i]
		if c == '"' {
			return start, i, esc, i + 1, nil
		}
		if c == '\\' {
			esc = true
			if i+1 >= len(b) {
				break
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := hexVal(b[i+2:]); !ok {
					return 0, 0, false, 0, errJSON
				}
				i += 6
			default:
				return 0, 0, false, 0, errJSON
			}
			continue
		}
		i++
	}
	return 0, 0, false, 0, errJSON
}

// strEnd returns the end of the string whose content starts at b[i] (the
// index of its closing quote) and whether it holds escapes. The common
// case costs one vectorized quote search: c.bs caches the position of the
// next backslash in the line, and a quote before it ends the string.
func (c *evalCtx) strEnd(b []byte, i int) (end int, esc bool, err error) {
	q := nextSet(c.qm, i)
	if q < 0 {
		return 0, false, errJSON
	}
	if q < c.nextBackslash(b, i) {
		return q, false, nil
	}
	_, end, esc, _, err = scanString(b, i-1)
	return end, esc, err
}

// nextBackslash returns the index of the first backslash at or after
// b[i] (len(b) when there is none), cached in c.bs for the strings that
// follow.
func (c *evalCtx) nextBackslash(b []byte, i int) int {
	if c.bs < i {
		c.findBackslash(b, i)
	}
	return c.bs
}

func (c *evalCtx) findBackslash(b []byte, i int) {
	if c.bs = nextSet(c.bm, i); c.bs < 0 {
		c.bs = len(b)
	}
}

const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// quoteOrBackslash returns the index of the first '"' or '\\' at or after
// b[i] (len(b) when there is none). It tests eight bytes at a time: a byte
// equal to c becomes zero in x^c, and (v-0x01..)&^v&0x80.. marks zero
// bytes, the lowest mark being exact.
func quoteOrBackslash(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q := x ^ (lo8 * '"')
		s := x ^ (lo8 * '\\')
		if m := ((q - lo8) &^ q) | ((s - lo8) &^ s); m&hi8 != 0 {
			return i + bits.TrailingZeros64(m&hi8)>>3
		}
	}
	for ; i < len(b); i++ {
		if b[i] == '"' || b[i] == '\\' {
			return i
		}
	}
	return len(b)
}

func hexVal(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}

// unescape decodes a JSON string body into the arena.
func (c *evalCtx) unescape(raw []byte) string {
	buf := c.tmp[:0]
	for i := 0; i < len(raw); i++ {
		ch := raw[i]
		if ch != '\\' || i+1 >= len(raw) {
			buf = append(buf, ch)
			continue
		}
		i++
		switch raw[i] {
		case 'n':
			buf = append(buf, '\n')
		case 't':
			buf = append(buf, '\t')
		case 'r':
			buf = append(buf, '\r')
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'u':
			r, ok := hexVal(raw[i+1:])
			if !ok {
				buf = append(buf, '\\', 'u')
				continue
			}
			i += 4
			if utf16.IsSurrogate(r) && i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				if r2, ok := hexVal(raw[i+3:]); ok {
					r = utf16.DecodeRune(r, r2)
					i += 6
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			buf = append(buf, raw[i])
		}
	}
	c.tmp = buf[:0]
	return c.str(buf)
}

func (c *evalCtx) jsonString(b []byte, start, end int, esc bool) string {
	if esc {
		return c.unescape(b[start:end])
	}
	if start == end {
		return ""
	}
	return unsafe.String(&b[start], end-start)
}

// skipValue skips one JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errJSON
	}
	if b[i] == '"' {
		_, _, _, n, err := scanString(b, i)
		return n, err
	}
	j := i
	for j < len(b) && !tokenEnd[b[j]] {
		j++
	}
	if !validToken(b[i:j]) {
		return 0, errJSON
	}
	return j, nil
}

// validToken reports whether tok is a JSON number, true, false or null.
func validToken(tok []byte) bool {
	switch string(tok) {
	case "true", "false", "null":
		return true
	}
	return validNumber(tok)
}

// validNumber reports whether tok is a JSON number: an optional minus, an
// integer part without leading zeros, an optional fraction and exponent.
func validNumber(tok []byte) bool {
	i := 0
	if i < len(tok) && tok[i] == '-' {
		i++
	}
	j := digits(tok, i)
	if j == i || tok[i] == '0' && j > i+1 {
		return false
	}
	i = j
	if i < len(tok) && tok[i] == '.' {
		j = digits(tok, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(tok) && (tok[i] == 'e' || tok[i] == 'E') {
		i++
		if i < len(tok) && (tok[i] == '+' || tok[i] == '-') {
			i++
		}
		j = digits(tok, i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(tok)
}

// digits returns the index of the first byte of b at or after i that is
// not a decimal digit.
func digits(b []byte, i int) int {
	for i < len(b) && isDigit[b[i]] {
		i++
	}
	return i
}

// nextElem reads what follows an element of a container at b[i]: a comma
// and the next element (its index), or the container's closer (done, and
// the index after it). Anything else, a comma before the closer included,
// is invalid.
func nextElem(b []byte, i int, closer byte) (next int, done bool, err error) {
	i = skipWS(b, i)
	if i < len(b) {
		switch b[i] {
		case ',':
			if j := skipWS(b, i+1); j < len(b) && b[j] != closer {
				return j, false, nil
			}
		case closer:
			return i + 1, true, nil
		}
	}
	return 0, false, errJSON
}

// isDigit marks the decimal digits.
var isDigit = [256]bool{'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true, '8': true, '9': true}

// tokenEnd marks the bytes that end a number or a literal.
var tokenEnd = [256]bool{',': true, '}': true, ']': true, ' ': true, '\n': true, '\r': true, '\t': true}

// scanEvent fills c's slots from one JSON object.
func (rs *RuleSet) scanEvent(c *evalCtx, line []byte) error {
	i := skipWS(line, 0)
	if i >= len(line) || line[i] != '{' {
		return fmt.Errorf("%w: not an object", errJSON)
	}
	c.tmp = c.tmp[:0]
	c.vals = c.vals[:0]
	c.bs = -1
	ctl := c.lineMasks(line)
	if rs.keys == nil {
		rs.buildKeys()
	}
	if c.kt != rs.keys {
		c.kt = rs.keys
		c.kpred = make([]predSet, len(rs.keys.slots)+1)
		c.kpat = make([]keyPat, len(rs.keys.slots)+1)
		for i := range c.kpred {
			c.kpred[i] = noPred
			if i < len(rs.keys.slots) && rs.keys.slots[i].plain {
				c.kpat[i] = makeKeyPat(rs.keys.slots[i].name)
			}
		}
		c.lkeys, c.lidx = c.lkeys[:0], map[string]int32{}
	}
	c.kprev = int32(len(rs.keys.slots)) // the start of the line
	n, err := rs.scanObject(c, line, i, 0, c.name[:0])
	if err != nil {
		return err
	}
	if skipWS(line, n) != len(line) {
		return fmt.Errorf("%w: more after the object", errJSON)
	}
	if ctl && !json.Valid(line) {
		// Rare: the scanner reads a control character inside a string
		// as it is; only tabs, carriage returns and newlines between
		// tokens are JSON.
		return fmt.Errorf("%w: a control character inside a string", errJSON)
	}
	return nil
}

// fastMembers scans, from b[i], the members of the usual shape: the key
// is a predicted one directly followed by its colon, and the value a
// string without escapes or a number. It consumes each such member and
// the comma that directly follows it, and stops at the first member of
// another shape (after is false: j is where that member starts, j == i
// when it read nothing) or after a value not directly followed by a comma
// (after is true: j is just after that value).
func (rs *RuleSet) fastMembers(c *evalCtx, b []byte, i int) (j int, after bool) {
	kprev, kpred, kpat := c.kprev, c.kpred, c.kpat
	slots := rs.keys.slots
	vals := c.vals
scan:
	for i < len(b) && b[i] == '"' {
		ps := &kpred[kprev]
		p, v := ps[0], 0 // the key's id, and where its value starts
		if p < 0 {
			break scan
		}
		// The first prediction's short form is tested inline (the common
		// case); a long key, or one near the end of the line, by keyAt.
		if kp := &kpat[p]; kp.n > 0 && i+1+keyPatLen <= len(b) {
			if kp.at(b[i+1 : i+1+keyPatLen]) {
				v = i + 1 + int(kp.n)
			}
		} else {
			v = c.keyAt(b, i, p)
		}
		if v == 0 {
			if p, v = c.otherKey(b, i, ps); p < 0 {
				break scan
			}
		}
		if v >= len(b) {
			break scan
		}
		var val string
		var next int
		isStr := false
		switch ch := b[v]; {
		case ch == '"':
			e := nextSet(c.qm, v+1)
			if e < 0 || e > c.nextBackslash(b, v+1) {
				break scan // unterminated, or escapes
			}
			if e > v+1 {
				val = unsafe.String(&b[v+1], e-v-1)
			}
			isStr, next = true, e+1
		case '0' <= ch && ch <= '9' || ch == '-':
			// The usual number, an integer. Anything else (a fraction,
			// an exponent, a leading zero, a lone minus) takes the
			// general path, which validates it.
			e := digits(b, v+1)
			if e < len(b) && !tokenEnd[b[e]] || ch == '0' && e > v+1 || ch == '-' && (e == v+1 || b[v+1] == '0' && e > v+2) {
				break scan
			}
			val, next = unsafe.String(&b[v], e-v), e
		default:
			break scan
		}
		kprev = p
		kidx := int32(-1)
		if int(p) < len(slots) {
			ks := &slots[p]
			kidx = ks.index
			for _, id := range ks.ids {
				c.set(id, val, false)
			}
			isStr = isStr && !ks.envelope
		}
		vals = append(vals, scalarVal{s: val, key: kidx, str: isStr})
		if next >= len(b) || b[next] != ',' {
			j, after = next, true
			break
		}
		i = next + 1
	}
	if !after {
		j = i
	}
	c.kprev, c.vals = kprev, vals
	return j, after
}

// scanObject scans the object at b[i] == '{'; names of its members are
// prefix + key (prefix holds plen bytes of the dotted path). At the top
// level (plen 0), members of the usual shape — a predicted key followed
// directly by its colon, then a string without escapes or a number — take
// a short path (fastMembers); others go through scanMember, which takes any
// JSON.
func (rs *RuleSet) scanObject(c *evalCtx, b []byte, i int, plen int, name []byte) (int, error) {
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		// A member follows '{' or a comma.
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, errJSON
		}
		n := -1
		if plen == 0 {
			j, after := rs.fastMembers(c, b, i)
			if after {
				n = j
			} else if j != i {
				i = j
				continue
			}
		}
		if n < 0 {
			var err error
			if n, err = rs.scanMember(c, b, i, plen, name); err != nil {
				return 0, err
			}
		}
		if n < len(b) && b[n] == ',' { // the usual case: no white space
			i = n + 1
			continue
		}
		i = skipWS(b, n)
		if i >= len(b) {
			return 0, errJSON
		}
		if b[i] == ',' {
			i++
			continue
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		return 0, errJSON
	}
}

// scanMember scans the object member at b[i] (its key's quote) and returns
// the index after its value; names of members are prefix + key (prefix
// holds plen bytes of the dotted path, none at the top level).
func (rs *RuleSet) scanMember(c *evalCtx, b []byte, i int, plen int, name []byte) (int, error) {
	if b[i] != '"' {
		return 0, errJSON
	}
	ks := i + 1
	var ks2 *keySlot
	n := 0
	id := int32(-1) // the key's id for prediction
	if plen == 0 {
		// Lines of one source repeat their keys in one order: try
		// the key that followed the previous one last time.
		if p := c.kpred[c.kprev][0]; p >= 0 {
			if v := c.keyAt(b, i, p); v > 0 {
				n, id = v-1, p // at the colon
				if int(p) < len(rs.keys.slots) {
					ks2 = &rs.keys.slots[p]
				}
			}
		}
	}
	if id < 0 {
		// The key (unescaped only when it has escapes).
		j, kesc, err := c.strEnd(b, ks)
		if err != nil {
			return 0, err
		}
		key := b[ks:j]
		n = j + 1
		if kesc {
			key = []byte(c.unescape(key))
		}
		full := key
		if plen > 0 {
			name = append(append(name[:plen], '.'), key...)
			full = name
		}
		ks2 = rs.keys.lookup(full)
		if plen == 0 {
			switch {
			case ks2 != nil && ks2.plain:
				id = ks2.index
			case ks2 == nil && !kesc:
				id = c.localKey(key)
			}
			if id >= 0 {
				c.kpred[c.kprev].add(id)
			}
		}
	}
	if plen == 0 {
		if id < 0 {
			id = int32(len(rs.keys.slots)) // unpredictable: start over
		}
		c.kprev = id
	}
	i = skipWS(b, n)
	if i >= len(b) || b[i] != ':' {
		return 0, errJSON
	}
	i = skipWS(b, i+1)
	if i >= len(b) {
		return 0, errJSON
	}
	var ids []int
	kidx := int32(-1)
	if ks2 != nil {
		ids = ks2.ids
		kidx = ks2.index
	}
	switch ch := b[i]; {
	case ch == '"':
		e, esc, err := c.strEnd(b, i+1)
		if err != nil {
			return 0, err
		}
		v := c.jsonString(b, i+1, e, esc)
		for _, id := range ids {
			c.set(id, v, false)
		}
		c.vals = append(c.vals, scalarVal{s: v, key: kidx, str: ks2 == nil || !ks2.envelope})
		i = e + 1
	case ch == '{':
		if ks2 != nil && ks2.prefix {
			name = append(name[:0], ks2.name...)
			n, err := rs.scanObject(c, b, i, len(name), name)
			if err != nil {
				return 0, err
			}
			i = n
		} else {
			n, _, err := collect(c, b, i, 0)
			if err != nil {
				return 0, err
			}
			i = n
		}
	case ch == '[' && len(ids) == 0:
		n, _, err := collect(c, b, i, 0)
		if err != nil {
			return 0, err
		}
		i = n
	case ch == '[':
		n, err := rs.scanArray(c, b, i, ids, kidx)
		if err != nil {
			return 0, err
		}
		i = n
	default:
		n, err := skipValue(b, i)
		if err != nil {
			return 0, err
		}
		tok := b[i:n]
		null := len(tok) == 4 && string(tok) == "null"
		v := unsafe.String(&b[i], n-i)
		if null {
			v = ""
		} else {
			c.vals = append(c.vals, scalarVal{s: v, key: kidx})
		}
		for _, id := range ids {
			c.set(id, v, null)
		}
		i = n
	}
	return i, nil
}

// predSet holds the keys seen to follow a key, most recent first (-1:
// none): lines of a few sources interleave, and after their common first
// keys each source goes its own way.
type predSet [4]int32

var noPred = predSet{-1, -1, -1, -1}

// front moves entry j to the front.
func (ps *predSet) front(j int) {
	x := ps[j]
	for ; j > 0; j-- { // at most three moves: no memmove call
		ps[j] = ps[j-1]
	}
	ps[0] = x
}

// add puts id at the front, dropping the oldest entry if id is new.
func (ps *predSet) add(id int32) {
	j := len(ps) - 1
	for k, x := range ps {
		if x == id {
			j = k
			break
		}
	}
	ps[j] = id
	ps.front(j)
}

// otherKey finds the key at b[i] among the predictions ps after the first
// (which did not match), and moves it to the front. p is -1 when none is
// there.
func (c *evalCtx) otherKey(b []byte, i int, ps *predSet) (p int32, v int) {
	for j := 1; j < len(ps); j++ {
		q := ps[j]
		if q < 0 {
			break
		}
		if v = c.keyAt(b, i, q); v > 0 {
			ps.front(j)
			return q, v
		}
	}
	return -1, 0
}

// keyAt returns where the value starts when b[i:] is key id's quoted
// name directly followed by a colon, else 0.
func (c *evalCtx) keyAt(b []byte, i int, id int32) int {
	if kp := &c.kpat[id]; kp.n > 0 && i+1+keyPatLen <= len(b) {
		if !kp.at(b[i+1 : i+1+keyPatLen]) {
			return 0
		}
		return i + 1 + int(kp.n)
	}
	nm := c.keyName(id)
	e := i + 1 + len(nm)
	if e+1 >= len(b) || b[e] != '"' || b[e+1] != ':' || string(b[i+1:e]) != nm {
		return 0
	}
	return e + 2
}

// keyName is the name of top-level key id (see evalCtx.kpred).
func (c *evalCtx) keyName(id int32) string {
	n := int32(len(c.kt.slots))
	if id < n {
		return c.kt.slots[id].name
	}
	return c.lkeys[id-n-1]
}

// maxLocalKeys bounds the keys no rule reads that a context learns for
// key prediction (hostile input could send endless new keys).
const maxLocalKeys = 1024

// localKey returns the id of a top-level key no rule reads, learning it
// on first sight (-1 when the context knows too many).
func (c *evalCtx) localKey(key []byte) int32 {
	if k, ok := c.lidx[string(key)]; ok {
		return k
	}
	if len(c.lkeys) >= maxLocalKeys {
		return -1
	}
	c.lkeys = append(c.lkeys, string(key))
	id := int32(len(c.kt.slots) + len(c.lkeys))
	c.lidx[c.lkeys[len(c.lkeys)-1]] = id
	c.kpred = append(c.kpred, noPred)
	c.kpat = append(c.kpat, makeKeyPat(c.lkeys[len(c.lkeys)-1]))
	return id
}

// keyPat is a top-level key as it appears in a compact line, `name":`,
// as three masked little-endian words (n: its length, 0 when it is longer
// than keyPatLen bytes).
type keyPat struct {
	w, m [3]uint64
	n    int32
}

// keyPatLen is the longest key pattern (a name of up to 22 bytes).
const keyPatLen = 24

// at reports whether b (keyPatLen bytes) starts with the pattern.
func (kp *keyPat) at(b []byte) bool {
	_ = b[keyPatLen-1]
	return (binary.LittleEndian.Uint64(b)^kp.w[0])&kp.m[0]|
		(binary.LittleEndian.Uint64(b[8:])^kp.w[1])&kp.m[1]|
		(binary.LittleEndian.Uint64(b[16:])^kp.w[2])&kp.m[2] == 0
}

func makeKeyPat(name string) keyPat {
	p := name + "\":"
	if len(p) > keyPatLen {
		return keyPat{}
	}
	var buf [keyPatLen]byte
	copy(buf[:], p)
	kp := keyPat{n: int32(len(p))}
	for w := range kp.w {
		kp.w[w] = binary.LittleEndian.Uint64(buf[8*w:])
	}
	for i := 0; i < len(p); i++ {
		kp.m[i/8] |= 0xff << (8 * (i % 8))
	}
	return kp
}

// scanArray keeps the scalar elements of an array as a list value.
func (rs *RuleSet) scanArray(c *evalCtx, b []byte, i int, ids []int, kidx int32) (int, error) {
	i++
	for _, id := range ids {
		c.appendList(id, "")
		c.slots[id].list = c.slots[id].list[:0]
	}
	i = skipWS(b, i)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		if i >= len(b) {
			return 0, errJSON
		}
		var v string
		if b[i] == '"' {
			s, e, esc, n, err := scanString(b, i)
			if err != nil {
				return 0, err
			}
			v = c.jsonString(b, s, e, esc)
			c.vals = append(c.vals, scalarVal{s: v, key: kidx, str: kidx < 0 || !rs.keys.slots[kidx].envelope})
			i = n
		} else if b[i] == '{' || b[i] == '[' {
			n, _, err := collect(c, b, i, 0)
			if err != nil {
				return 0, err
			}
			i = n
		} else {
			n, err := skipValue(b, i)
			if err != nil {
				return 0, err
			}
			v = unsafe.String(&b[i], n-i)
			c.vals = append(c.vals, scalarVal{s: v, key: kidx})
			i = n
		}
		for _, id := range ids {
			c.slots[id].list = append(c.slots[id].list, v)
		}
		var done bool
		var err error
		if i, done, err = nextElem(b, i, ']'); err != nil || done {
			return i, err
		}
	}
}

// collect appends every scalar under b[i] to c.vals (keys unreferenced).
func collect(c *evalCtx, b []byte, i int, depth int) (int, bool, error) {
	if depth > maxDepth {
		return 0, false, errDepth
	}
	if i >= len(b) {
		return 0, false, errJSON
	}
	switch b[i] {
	case '"':
		s, e, esc, n, err := scanString(b, i)
		if err != nil {
			return 0, false, err
		}
		c.vals = append(c.vals, scalarVal{s: c.jsonString(b, s, e, esc), key: -1, str: true})
		return n, true, nil
	case '{', '[':
		obj, closer := b[i] == '{', byte(']')
		if obj {
			closer = '}'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, true, nil
		}
		for {
			if i >= len(b) {
				return 0, false, errJSON
			}
			if obj {
				if b[i] != '"' {
					return 0, false, errJSON
				}
				_, _, _, n, err := scanString(b, i)
				if err != nil {
					return 0, false, err
				}
				i = skipWS(b, n)
				if i >= len(b) || b[i] != ':' {
					return 0, false, errJSON
				}
				i = skipWS(b, i+1)
			}
			n, _, err := collect(c, b, i, depth+1)
			if err != nil {
				return 0, false, err
			}
			var done bool
			if i, done, err = nextElem(b, n, closer); err != nil || done {
				return i, done, err
			}
		}
	default:
		n, err := skipValue(b, i)
		if err != nil {
			return 0, false, err
		}
		if tok := b[i:n]; string(tok) != "null" {
			c.vals = append(c.vals, scalarVal{s: unsafe.String(&b[i], n-i), key: -1})
		}
		return n, true, nil
	}
}

// keyTable maps the dotted names rules read (and their prefixes) to slots:
// an open-addressing table on the FNV-1a hash the scanner computes while
// it reads a key.
type keyTable struct {
	mask  uint32
	hash  []uint32 // probed first: 4 bytes a slot, 0 marks an empty slot
	slots []keySlot
}

type keySlot struct {
	index  int32 // position in the table
	used   bool
	prefix bool // some referenced name continues with "."
	// envelope: the name is one of envelopeNames, which keyword searches
	// skip.
	envelope bool
	plain    bool // the name has no quote or backslash (its JSON form is itself)
	h        uint32
	name     string
	ids      []int
}

// keyHash hashes a name by its length and three of its bytes: cheap to
// compute on every key of every event, and collisions are resolved by
// comparing names.
func keyHash[T string | []byte](name T) uint32 {
	n := len(name)
	if n == 0 {
		return 0
	}
	h := uint32(n)*0x9e3779b1 ^ uint32(name[0])<<16 ^ uint32(name[n-1])<<8 ^ uint32(name[n/2]) ^ uint32(name[n/3])<<24
	h *= 0x85ebca6b
	return h ^ h>>15
}

func (t *keyTable) slot(name string) *keySlot {
	h := keyHash(name) | 1
	for j := h & t.mask; ; j = (j + 1) & t.mask {
		s := &t.slots[j]
		if t.hash[j] == 0 {
			t.hash[j] = h
			s.used, s.h, s.name, s.index = true, h, name, int32(j)
			return s
		}
		if t.hash[j] == h && s.name == name {
			return s
		}
	}
}

// lookup finds a name.
func (t *keyTable) lookup(name []byte) *keySlot {
	h := keyHash(name) | 1
	for j := h & t.mask; ; j = (j + 1) & t.mask {
		x := t.hash[j]
		if x == 0 {
			return nil
		}
		if x == h && t.slots[j].name == string(name) {
			return &t.slots[j]
		}
	}
}

// buildKeys fills the key table from the registered field names.
func (rs *RuleSet) buildKeys() {
	// Collect the names first, to size the table at a load of one half.
	type entry struct {
		ids    []int
		prefix bool
	}
	all := map[string]*entry{}
	get := func(name string) *entry {
		e := all[name]
		if e == nil {
			e = &entry{}
			all[name] = e
		}
		return e
	}
	add := func(name string, ids []int) {
		e := get(name)
		for _, id := range ids {
			if !hasID(e.ids, id) {
				e.ids = append(e.ids, id)
			}
		}
		for i := 0; i < len(name); i++ {
			if name[i] == '.' {
				get(name[:i]).prefix = true
			}
		}
	}
	for name, ids := range rs.byName {
		add(name, ids)
		// The JSON shape of vigil.Event: attributes under "fields", the
		// 5-tuple under "network", fixed fields under their JSON names.
		add("fields."+name, ids)
		for _, alt := range eventJSONNames[name] {
			add(alt, ids)
		}
	}
	size := 16
	for size < 2*len(all) {
		size *= 2
	}
	t := &keyTable{mask: uint32(size - 1), hash: make([]uint32, size), slots: make([]keySlot, size)}
	for name, e := range all {
		s := t.slot(name)
		s.ids, s.prefix = e.ids, e.prefix
		s.envelope = envelopeNames[name]
		s.plain = !strings.ContainsAny(name, "\"\\") && !strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == utf8.RuneError })
	}
	rs.keys = t
}

// envelopeNames are the fields a collector adds around an event's
// content: where it came from (device, logsource), its id and its time.
// Keyword searches look at the content only, so that a keyword never
// matches a device id, a timestamp or a routing field.
var envelopeNames = func() map[string]bool {
	m := map[string]bool{}
	for _, slot := range []int{slotProduct, slotCategory, slotService, slotKind, slotDevice, slotEventID, slotTime} {
		for _, n := range reservedNames[slot] {
			m[n] = true
			m["fields."+n] = true
			for _, alt := range eventJSONNames[n] {
				m[alt] = true
			}
		}
	}
	return m
}()

// eventJSONNames are the paths at which a marshaled vigil.Event holds the
// fields its Field method answers by name.
var eventJSONNames = map[string][]string{
	"event.id":         {"id"},
	"device.id":        {"device_id"},
	"event.kind":       {"kind"},
	"event.category":   {"category"},
	"event.action":     {"action"},
	"event.outcome":    {"outcome"},
	"event.source":     {"source"},
	"event.severity":   {"severity"},
	"source.ip":        {"network.src_ip"},
	"source.port":      {"network.src_port"},
	"destination.ip":   {"network.dst_ip"},
	"destination.port": {"network.dst_port"},
	"@timestamp":       {"time"},
	"timestamp":        {"time"},
}
