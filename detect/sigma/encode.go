package sigma

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/vigil-iot/vigil"
)

// appendAlert appends an alert as one JSON object (the fields of
// vigil.Alert plus the input line and the rule level), without reflection.
// Alerts with Fields fall back to the caller's encoder.
func appendAlert(b []byte, a *vigil.Alert, line int, level string) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, a.ID)
	b = append(b, `,"dedup_key":`...)
	b = appendJSONString(b, a.DedupKey)
	b = append(b, `,"detector":`...)
	b = appendJSONString(b, a.Detector)
	b = append(b, `,"rule_id":`...)
	b = appendJSONString(b, a.RuleID)
	b = append(b, `,"title":`...)
	b = appendJSONString(b, a.Title)
	b = append(b, `,"severity":`...)
	b = appendJSONString(b, a.Severity.String())
	b = appendStrings(b, "tags", a.Tags)
	b = appendStrings(b, "techniques", a.Techniques)
	if a.DeviceID != "" {
		b = append(b, `,"device_id":`...)
		b = appendJSONString(b, a.DeviceID)
	}
	b = appendStrings(b, "entities", a.Entities)
	b = appendStrings(b, "event_ids", a.EventIDs)
	b = append(b, `,"first_event_time":`...)
	b = appendTime(b, a.FirstEventTime)
	b = append(b, `,"last_event_time":`...)
	b = appendTime(b, a.LastEventTime)
	b = append(b, `,"created":`...)
	b = appendTime(b, a.Created)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(a.Count), 10)
	b = append(b, `,"line":`...)
	b = strconv.AppendInt(b, int64(line), 10)
	if level != "" {
		b = append(b, `,"level":`...)
		b = appendJSONString(b, level)
	}
	return append(b, "}\n"...)
}

func appendStrings(b []byte, name string, xs []string) []byte {
	if len(xs) == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':', '[')
	for i, x := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, x)
	}
	return append(b, ']')
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping as encoding/json
// does (quotes, backslashes, control characters, invalid UTF-8).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
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
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
