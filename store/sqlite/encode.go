package sqlite

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/vigil-iot/vigil"
)

// appendEvent appends e as JSON, the same document encoding/json writes
// for a vigil.Event (up to the order of Fields keys and HTML escaping),
// about five times faster: ingest spends its time here.
func appendEvent(b []byte, e *vigil.Event) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = appendString(b, e.ID)
	var err error
	b = append(b, `,"time":`...)
	if b, err = appendTime(b, e.Time); err != nil {
		return nil, fmt.Errorf("time: %w", err)
	}
	if !e.Received.IsZero() {
		b = append(b, `,"received":`...)
		if b, err = appendTime(b, e.Received); err != nil {
			return nil, fmt.Errorf("received: %w", err)
		}
	}
	b = appendOptString(b, `,"device_id":`, e.DeviceID)
	b = appendOptString(b, `,"source":`, e.Source)
	b = append(b, `,"kind":`...)
	b = appendString(b, e.Kind)
	b = appendOptString(b, `,"category":`, e.Category)
	b = appendOptString(b, `,"action":`, e.Action)
	b = appendOptString(b, `,"outcome":`, e.Outcome)
	if e.Severity != 0 {
		if e.Severity < vigil.SeverityInfo || e.Severity > vigil.SeverityCritical {
			return nil, fmt.Errorf("severity %d is out of range", int(e.Severity))
		}
		b = append(b, `,"severity":`...)
		b = appendString(b, e.Severity.String())
	}
	if n := e.Network; n != nil {
		b = append(b, `,"network":{`...)
		mark := len(b)
		b = appendOptString(b, `,"transport":`, n.Transport)
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
			b = append(b[:mark], b[mark+1:]...) // drop the first field's comma
		}
		b = append(b, '}')
	}
	if len(e.Fields) > 0 {
		b = append(b, `,"fields":{`...)
		first := true
		for k, v := range e.Fields {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendString(b, k)
			b = append(b, ':')
			if b, err = appendValue(b, v); err != nil {
				return nil, fmt.Errorf("field %q: %w", k, err)
			}
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

func appendOptString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, key...)
	return appendString(b, s)
}

func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("year %d is outside [0, 9999]", y)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

var errNotFinite = errors.New("number is not finite")

func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return appendString(b, x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, errNotFinite
		}
		return appendFloat(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case []string:
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
		return nil, err
	}
	return append(b, j...), nil
}

// appendFloat formats f as encoding/json does.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as with encoding/json.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
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
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
