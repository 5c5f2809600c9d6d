package vigil

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends e encoded as JSON: byte for byte what encoding/json
// writes for an Event (HTML characters escaped), without reflection and
// several times faster, which matters on the ingest and sensor paths. With
// sortKeys the keys of Fields are sorted as encoding/json sorts them;
// without, they come in map order (valid JSON, cheaper). Field values of
// types other than the contract's (string, float64, bool, []string) fall
// back to encoding/json. Like encoding/json, it fails on a time whose year
// is outside [0, 9999], on a number that is not finite, and on a severity
// out of range.
func (e *Event) AppendJSON(b []byte, sortKeys bool) ([]byte, error) {
	b, err := e.appendJSONHead(b)
	if err != nil {
		return b, err
	}
	if len(e.Fields) > 0 {
		b = append(b, `,"fields":{`...)
		first := true
		field := func(k string) error {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = AppendJSONString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendJSONValue(b, e.Fields[k]); err != nil {
				return fmt.Errorf("fields[%q]: %w", k, err)
			}
			return nil
		}
		if sortKeys {
			keys := make([]string, 0, len(e.Fields))
			for k := range e.Fields {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				if err := field(k); err != nil {
					return b, err
				}
			}
		} else {
			for k := range e.Fields {
				if err := field(k); err != nil {
					return b, err
				}
			}
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// AppendJSONFields appends e encoded as AppendJSON(b, true) would encode
// it with e.Fields made from fields (stored in order, so that the last
// occurrence of a name counts), byte for byte, without making the map;
// e.Fields itself is ignored.
func (e *Event) AppendJSONFields(b []byte, fields []Field) ([]byte, error) {
	b, err := e.appendJSONHead(b)
	if err != nil {
		return b, err
	}
	if len(fields) > 0 {
		var buf [32]fieldRef
		order := sortFields(fields, buf[:0])
		b = append(b, `,"fields":{`...)
		for j, r := range order {
			f := &fields[r.i]
			if j+1 < len(order) && order[j+1].prefix == r.prefix && fields[order[j+1].i].Key == f.Key {
				continue // a later value of the same name counts
			}
			if b[len(b)-1] != '{' {
				b = append(b, ',')
			}
			b = AppendJSONString(b, f.Key)
			b = append(b, ':')
			if _, ok := f.Value.(unboxedString); ok {
				b = AppendJSONString(b, f.str)
			} else if b, err = appendJSONValue(b, f.Value); err != nil {
				return b, fmt.Errorf("fields[%q]: %w", f.Key, err)
			}
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// fieldRef is a field to sort: its index and the first 8 bytes of its
// name, which order most names without comparing them whole.
type fieldRef struct {
	prefix uint64
	i      int
}

// sortFields returns the fields in the order of their names, stably
// (equal names keep their order), as references appended to order. An
// event has a few dozen fields at most: insertion sort.
func sortFields(fields []Field, order []fieldRef) []fieldRef {
	for i := range fields {
		k := fields[i].Key
		var p uint64
		if len(k) >= 8 {
			p = uint64(k[0])<<56 | uint64(k[1])<<48 | uint64(k[2])<<40 | uint64(k[3])<<32 |
				uint64(k[4])<<24 | uint64(k[5])<<16 | uint64(k[6])<<8 | uint64(k[7])
		} else {
			for j := 0; j < len(k); j++ {
				p |= uint64(k[j]) << (56 - 8*j)
			}
		}
		r := fieldRef{p, i}
		j := len(order)
		order = append(order, r)
		for ; j > 0 && fieldLess(fields, r, order[j-1]); j-- {
			order[j] = order[j-1]
		}
		order[j] = r
	}
	return order
}

// fieldLess reports whether field a sorts before field b (names, then
// positions).
func fieldLess(fields []Field, a, b fieldRef) bool {
	if a.prefix != b.prefix {
		return a.prefix < b.prefix
	}
	ka, kb := fields[a.i].Key, fields[b.i].Key
	if ka != kb {
		return ka < kb
	}
	return a.i < b.i
}

// appendJSONHead appends e encoded as JSON up to its fields, without the
// closing brace.
func (e *Event) appendJSONHead(b []byte) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = AppendJSONString(b, e.ID)
	var err error
	b = append(b, `,"time":`...)
	if b, err = appendJSONTime(b, e.Time); err != nil {
		return b, fmt.Errorf("time: %w", err)
	}
	if !e.Received.IsZero() {
		b = append(b, `,"received":`...)
		if b, err = appendJSONTime(b, e.Received); err != nil {
			return b, fmt.Errorf("received: %w", err)
		}
	}
	b = appendOptJSONString(b, `,"device_id":`, e.DeviceID)
	b = appendOptJSONString(b, `,"source":`, e.Source)
	b = appendOptJSONString(b, `,"provenance":`, e.Provenance)
	b = append(b, `,"kind":`...)
	b = AppendJSONString(b, e.Kind)
	b = appendOptJSONString(b, `,"category":`, e.Category)
	b = appendOptJSONString(b, `,"action":`, e.Action)
	b = appendOptJSONString(b, `,"outcome":`, e.Outcome)
	if e.Severity != 0 {
		if e.Severity < SeverityInfo || e.Severity > SeverityCritical {
			return b, fmt.Errorf("severity %d is out of range", int(e.Severity))
		}
		b = append(b, `,"severity":`...)
		b = AppendJSONString(b, e.Severity.String())
	}
	if n := e.Network; n != nil {
		b = append(b, `,"network":{`...)
		mark := len(b)
		b = appendOptJSONString(b, `,"transport":`, n.Transport)
		if n.SrcIP.IsValid() {
			b = append(b, `,"src_ip":"`...)
			b = n.SrcIP.AppendTo(b)
			b = append(b, '"')
		}
		if n.SrcPort != 0 {
			b = append(b, `,"src_port":`...)
			b = strconv.AppendUint(b, uint64(n.SrcPort), 10)
		}
		if n.DstIP.IsValid() {
			b = append(b, `,"dst_ip":"`...)
			b = n.DstIP.AppendTo(b)
			b = append(b, '"')
		}
		if n.DstPort != 0 {
			b = append(b, `,"dst_port":`...)
			b = strconv.AppendUint(b, uint64(n.DstPort), 10)
		}
		if len(b) > mark {
			// Drop the comma before the first member.
			copy(b[mark:], b[mark+1:])
			b = b[:len(b)-1]
		}
		b = append(b, '}')
	}
	return b, nil
}

func appendOptJSONString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, key...)
	return AppendJSONString(b, s)
}

func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	if fast, ok := appendUTC(b, t); ok {
		return append(fast, '"'), nil
	}
	if y := t.Year(); y < 0 || y > 9999 {
		return b[:len(b)-1], fmt.Errorf("year %d is outside [0, 9999]", y)
	}
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// AppendTime appends t as t.AppendFormat(b, time.RFC3339Nano) does, several
// times faster for UTC times from 1970 on.
func AppendTime(b []byte, t time.Time) []byte {
	if fast, ok := appendUTC(b, t); ok {
		return fast
	}
	return t.AppendFormat(b, time.RFC3339Nano)
}

// appendUTC appends t in RFC 3339 with nanoseconds when it is a UTC time
// of the years 1970 to 9999; else it returns false.
func appendUTC(b []byte, t time.Time) ([]byte, bool) {
	secs := t.Unix()
	if secs < 0 || secs >= 253402300800 || t.Location() != time.UTC {
		return b, false
	}
	// Civil date from days since 1970-01-01 (Howard Hinnant's
	// civil_from_days, for days >= 0), in unsigned arithmetic: divisions
	// by constants become multiplications.
	s := uint64(secs)
	z := s/86400 + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	year := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	day := doy - (153*mp+2)/5 + 1
	month := mp + 3
	if month > 12 {
		month -= 12
		year++
	}
	sod := uint32(s % 86400)
	h, mi, se := sod/3600, sod/60%60, sod%60
	y1, y2 := year/100, year%100
	b = append(b, digits2[2*y1], digits2[2*y1+1], digits2[2*y2], digits2[2*y2+1], '-',
		digits2[2*month], digits2[2*month+1], '-', digits2[2*day], digits2[2*day+1], 'T',
		digits2[2*h], digits2[2*h+1], ':', digits2[2*mi], digits2[2*mi+1], ':', digits2[2*se], digits2[2*se+1])
	if ns := uint32(t.Nanosecond()); ns != 0 {
		r := ns % 1e8
		p1, p2, p3, p4 := r/1e6, r/1e4%100, r/100%100, r%100
		frac := [10]byte{'.', byte('0' + ns/1e8), digits2[2*p1], digits2[2*p1+1], digits2[2*p2], digits2[2*p2+1],
			digits2[2*p3], digits2[2*p3+1], digits2[2*p4], digits2[2*p4+1]}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z'), true
}

// digits2 holds the two-digit renderings of 0 to 99.
const digits2 = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

func appendJSONValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return AppendJSONString(b, x), nil
	case float64:
		return appendJSONFloat(b, x)
	case bool:
		return strconv.AppendBool(b, x), nil
	case []string:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, s := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSONString(b, s)
		}
		return append(b, ']'), nil
	case nil:
		return append(b, "null"...), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}

// appendFloat formats like encoding/json.
func appendJSONFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, &json.UnsupportedValueError{Str: strconv.FormatFloat(f, 'g', -1, 64)}
	}
	abs := math.Abs(f)
	fmt := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		fmt = 'e'
	}
	b = strconv.AppendFloat(b, f, fmt, -1, 64)
	if fmt == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

// jsonSafe marks the ASCII bytes encoding/json writes as they are.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// AppendJSONString appends s quoted as encoding/json does (HTML-safe,
// invalid UTF-8 replaced by U+FFFD).
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	// Fast path: nothing to escape.
	i := 0
	for i < len(s) && jsonSafe[s[i]] {
		i++
	}
	if i == len(s) {
		b = append(b, s...)
		return append(b, '"')
	}
	start := 0
	for i = 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
