package sensor

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	vigil "github.com/vigil-iot/vigil"
)

// appendEvent appends the JSON of ev, byte for byte what encoding/json
// writes for a vigil.Event (keys of Fields sorted, HTML characters
// escaped), without reflection. Field values of types other than the
// contract's (string, float64, bool, []string) fall back to
// encoding/json.
func appendEvent(b []byte, ev *vigil.Event, keys []string) ([]byte, []string, error) {
	b = append(b, `{"id":`...)
	b = appendString(b, ev.ID)
	b = append(b, `,"time":"`...)
	b = ev.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if !ev.Received.IsZero() {
		b = append(b, `,"received":"`...)
		b = ev.Received.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if ev.DeviceID != "" {
		b = append(b, `,"device_id":`...)
		b = appendString(b, ev.DeviceID)
	}
	if ev.Source != "" {
		b = append(b, `,"source":`...)
		b = appendString(b, ev.Source)
	}
	b = append(b, `,"kind":`...)
	b = appendString(b, ev.Kind)
	for _, kv := range [...]struct{ k, v string }{{"category", ev.Category}, {"action", ev.Action}, {"outcome", ev.Outcome}} {
		if kv.v != "" {
			b = append(b, `,"`...)
			b = append(b, kv.k...)
			b = append(b, `":`...)
			b = appendString(b, kv.v)
		}
	}
	if ev.Severity != 0 {
		b = append(b, `,"severity":`...)
		b = appendString(b, ev.Severity.String())
	}
	if n := ev.Network; n != nil {
		b = append(b, `,"network":{`...)
		first := true
		sep := func() {
			if !first {
				b = append(b, ',')
			}
			first = false
		}
		if n.Transport != "" {
			sep()
			b = append(b, `"transport":`...)
			b = appendString(b, n.Transport)
		}
		if n.SrcIP.IsValid() {
			sep()
			b = append(b, `"src_ip":"`...)
			b = n.SrcIP.AppendTo(b)
			b = append(b, '"')
		}
		if n.SrcPort != 0 {
			sep()
			b = append(b, `"src_port":`...)
			b = strconv.AppendUint(b, uint64(n.SrcPort), 10)
		}
		if n.DstIP.IsValid() {
			sep()
			b = append(b, `"dst_ip":"`...)
			b = n.DstIP.AppendTo(b)
			b = append(b, '"')
		}
		if n.DstPort != 0 {
			sep()
			b = append(b, `"dst_port":`...)
			b = strconv.AppendUint(b, uint64(n.DstPort), 10)
		}
		b = append(b, '}')
	}
	if len(ev.Fields) > 0 {
		keys = keys[:0]
		for k := range ev.Fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, `,"fields":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendValue(b, ev.Fields[k]); err != nil {
				return b, keys, err
			}
		}
		b = append(b, '}')
	}
	return append(b, '}'), keys, nil
}

func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return appendString(b, x), nil
	case float64:
		return appendFloat(b, x)
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
			b = appendString(b, s)
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
func appendFloat(b []byte, f float64) ([]byte, error) {
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

// appendString quotes s as encoding/json does (HTML-safe, invalid UTF-8
// replaced by U+FFFD).
func appendString(b []byte, s string) []byte {
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
