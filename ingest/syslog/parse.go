package syslog

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Formats of a Message.
const (
	RFC5424 = "rfc5424"
	RFC3164 = "rfc3164"
)

// Message is one parsed syslog message.
type Message struct {
	Format   string // RFC5424 or RFC3164
	Facility int    // 0 kern ... 23 local7
	Severity int    // 0 emerg ... 7 debug
	// Time is the message's timestamp, zero when it has none (RFC 5424's
	// "-", or an RFC 3164 message without a header).
	Time     time.Time
	Hostname string
	AppName  string // RFC 5424 APP-NAME, RFC 3164 TAG
	ProcID   string
	MsgID    string // RFC 5424 only
	// StructuredData are the RFC 5424 SD-ELEMENTs, in order.
	StructuredData []SDElement
	Msg            string
}

// SDElement is an RFC 5424 structured data element.
type SDElement struct {
	ID     string
	Params []SDParam
}

// SDParam is one parameter of an SDElement.
type SDParam struct{ Name, Value string }

// Limits of a message's parts (RFC 5424 §6).
const (
	maxHostname = 255
	maxAppName  = 48
	maxProcID   = 128
	maxMsgID    = 32
	maxSDName   = 32
)

var errNoPRI = errors.New("no <PRI> at the start")

// Parse reads one syslog message: RFC 5424 when the priority is followed
// by a version ("<34>1 "), else RFC 3164 (BSD), whose timestamp has no
// year and no zone: it is read in loc (nil: UTC) in the year that puts it
// nearest before now (a message from December read in January is from
// last year). An RFC 3164 message that is not well formed is still
// accepted as RFC 3164 §4.3 tells a relay to: without a valid PRI it is
// priority 13 (user.notice) with the whole text as its message, and
// without a valid timestamp its header is read as part of the message.
// Parse returns an error only for an RFC 5424 message that breaks the
// grammar, saying what and at which byte.
func Parse(b []byte, now time.Time, loc *time.Location) (Message, error) {
	if loc == nil {
		loc = time.UTC
	}
	b = bytes.TrimRight(b, "\r\n\x00")
	pri, rest, err := parsePRI(b)
	if err != nil {
		return Message{Format: RFC3164, Facility: 1, Severity: 5, Msg: validUTF8(b)}, nil
	}
	m := Message{Facility: pri / 8, Severity: pri % 8}
	if len(rest) >= 2 && rest[0] >= '1' && rest[0] <= '9' {
		// A version: "1 " (or more digits, RFC 5424 allows up to 3).
		if i := bytes.IndexByte(rest, ' '); i > 0 && i <= 3 && allDigits(rest[:i]) {
			m.Format = RFC5424
			err := parse5424(&m, rest[i+1:], len(b)-len(rest)+i+1)
			return m, err
		}
	}
	m.Format = RFC3164
	parse3164(&m, rest, now, loc)
	return m, nil
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// parsePRI reads "<PRI>", PRI 0 to 191 without leading zeros.
func parsePRI(b []byte) (int, []byte, error) {
	if len(b) < 3 || b[0] != '<' {
		return 0, nil, errNoPRI
	}
	end := bytes.IndexByte(b[:min(len(b), 5)], '>')
	if end < 2 {
		return 0, nil, errNoPRI
	}
	digits := b[1:end]
	if !allDigits(digits) || (len(digits) > 1 && digits[0] == '0') {
		return 0, nil, errNoPRI
	}
	pri, _ := strconv.Atoi(string(digits))
	if pri > 191 {
		return 0, nil, errNoPRI
	}
	return pri, b[end+1:], nil
}

// parse5424 reads what follows "<PRI>VERSION ". off is the offset of b
// in the message, for errors.
func parse5424(m *Message, b []byte, off int) error {
	pos := 0
	field := func(name string, max int) (string, error) {
		i := bytes.IndexByte(b[pos:], ' ')
		if i < 0 {
			return "", fmt.Errorf("rfc5424: %s at byte %d: no space after it", name, off+pos)
		}
		v := b[pos : pos+i]
		if len(v) == 0 {
			return "", fmt.Errorf("rfc5424: %s at byte %d: empty", name, off+pos)
		}
		if len(v) > max {
			return "", fmt.Errorf("rfc5424: %s at byte %d: longer than %d", name, off+pos, max)
		}
		for _, c := range v {
			if c < 33 || c > 126 {
				return "", fmt.Errorf("rfc5424: %s at byte %d: not printable US-ASCII", name, off+pos)
			}
		}
		pos += i + 1
		if len(v) == 1 && v[0] == '-' {
			return "", nil
		}
		return string(v), nil
	}
	ts, err := field("TIMESTAMP", 64)
	if err != nil {
		return err
	}
	if ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err == nil && !inRange(t) {
			err = errors.New("out of range")
		}
		if err != nil {
			return fmt.Errorf("rfc5424: TIMESTAMP at byte %d: %q is not an RFC 3339 time", off, ts)
		}
		m.Time = t
	}
	if m.Hostname, err = field("HOSTNAME", maxHostname); err != nil {
		return err
	}
	if m.AppName, err = field("APP-NAME", maxAppName); err != nil {
		return err
	}
	if m.ProcID, err = field("PROCID", maxProcID); err != nil {
		return err
	}
	if m.MsgID, err = field("MSGID", maxMsgID); err != nil {
		return err
	}
	// STRUCTURED-DATA: "-" or [ID param="value" ...]...
	switch {
	case pos < len(b) && b[pos] == '-':
		pos++
	case pos < len(b) && b[pos] == '[':
		for pos < len(b) && b[pos] == '[' {
			el, n, err := parseSD(b[pos:], off+pos)
			if err != nil {
				return err
			}
			m.StructuredData = append(m.StructuredData, el)
			pos += n
		}
	default:
		return fmt.Errorf("rfc5424: STRUCTURED-DATA at byte %d: want - or [", off+pos)
	}
	if pos < len(b) {
		if b[pos] != ' ' {
			return fmt.Errorf("rfc5424: byte %d: want a space before MSG", off+pos)
		}
		msg := b[pos+1:]
		msg = bytes.TrimPrefix(msg, []byte("\xef\xbb\xbf")) // BOM: UTF-8
		m.Msg = validUTF8(msg)
	}
	return nil
}

// parseSD reads one SD-ELEMENT at the start of b and returns its length.
func parseSD(b []byte, off int) (SDElement, int, error) {
	var el SDElement
	pos := 1
	name := func(what string) (string, error) {
		start := pos
		for pos < len(b) {
			c := b[pos]
			if c == ' ' || c == '=' || c == ']' || c == '"' {
				break
			}
			if c < 33 || c > 126 {
				return "", fmt.Errorf("rfc5424: %s at byte %d: not printable US-ASCII", what, off+pos)
			}
			pos++
		}
		if pos == start || pos-start > maxSDName {
			return "", fmt.Errorf("rfc5424: %s at byte %d: want 1 to %d characters", what, off+start, maxSDName)
		}
		return string(b[start:pos]), nil
	}
	var err error
	if el.ID, err = name("SD-ID"); err != nil {
		return el, 0, err
	}
	for {
		if pos >= len(b) {
			return el, 0, fmt.Errorf("rfc5424: SD-ELEMENT at byte %d: no closing ]", off)
		}
		if b[pos] == ']' {
			return el, pos + 1, nil
		}
		if b[pos] != ' ' {
			return el, 0, fmt.Errorf("rfc5424: SD-ELEMENT at byte %d: want a space or ]", off+pos)
		}
		pos++
		pn, err := name("PARAM-NAME")
		if err != nil {
			return el, 0, err
		}
		if pos+1 >= len(b) || b[pos] != '=' || b[pos+1] != '"' {
			return el, 0, fmt.Errorf("rfc5424: PARAM-VALUE at byte %d: want =\"", off+pos)
		}
		pos += 2
		var v []byte
		closed := false
		for pos < len(b) {
			c := b[pos]
			if c == '\\' && pos+1 < len(b) && (b[pos+1] == '"' || b[pos+1] == '\\' || b[pos+1] == ']') {
				v = append(v, b[pos+1])
				pos += 2
				continue
			}
			if c == '"' {
				pos++
				closed = true
				break
			}
			v = append(v, c)
			pos++
		}
		if !closed {
			return el, 0, fmt.Errorf("rfc5424: PARAM-VALUE of %s at byte %d: no closing quote", pn, off+pos)
		}
		el.Params = append(el.Params, SDParam{Name: pn, Value: validUTF8(v)})
	}
}

var months = map[string]time.Month{
	"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6,
	"Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12,
}

// parse3164 reads "Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG" (or an RFC
// 3339 timestamp in its place, as rsyslog forwards) leniently.
func parse3164(m *Message, b []byte, now time.Time, loc *time.Location) {
	rest := b
	if t, n, ok := bsdTime(b, now, loc); ok {
		m.Time = t
		rest = b[n:]
	} else if i := bytes.IndexByte(b, ' '); i > 0 {
		if t, err := time.Parse(time.RFC3339Nano, string(b[:i])); err == nil && inRange(t) {
			m.Time = t
			rest = b[i:]
		}
	}
	if !m.Time.IsZero() {
		rest = bytes.TrimLeft(rest, " ")
		// HOSTNAME, unless the next word is the tag ("tag:" or "tag[").
		if i := bytes.IndexByte(rest, ' '); i > 0 {
			w := rest[:i]
			if w[len(w)-1] != ':' && bytes.IndexByte(w, '[') < 0 && len(w) <= maxHostname {
				m.Hostname = string(w)
				rest = rest[i+1:]
			}
		}
	}
	// TAG: up to 32 alphanumerics (in practice also - _ . /), then
	// [PID] and ":".
	i := 0
	for i < len(rest) && i < maxAppName {
		c := rest[i]
		if c == '[' || c == ':' || c == ' ' || c < 33 || c > 126 {
			break
		}
		i++
	}
	if i > 0 && i < len(rest) && (rest[i] == '[' || rest[i] == ':') {
		tag := string(rest[:i])
		j := i
		pid := ""
		if rest[j] == '[' {
			if k := bytes.IndexByte(rest[j:], ']'); k > 0 && k <= maxProcID+1 {
				pid = string(rest[j+1 : j+k])
				j += k + 1
			} else {
				j = -1
			}
		}
		if j > 0 && j < len(rest) && rest[j] == ':' {
			m.AppName, m.ProcID = tag, pid
			rest = bytes.TrimPrefix(rest[j+1:], []byte(" "))
		} else if j > 0 && j == len(rest) {
			m.AppName, m.ProcID = tag, pid
			rest = nil
		}
	}
	m.Msg = validUTF8(rest)
}

// inRange reports whether t is within the years events can carry (1 to
// 9999 in UTC).
func inRange(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1 && y <= 9999
}

// bsdTime reads "Mmm dd hh:mm:ss" (day padded with a space or a zero).
func bsdTime(b []byte, now time.Time, loc *time.Location) (time.Time, int, bool) {
	if len(b) < 15 || b[3] != ' ' || b[6] != ' ' || b[9] != ':' || b[12] != ':' {
		return time.Time{}, 0, false
	}
	mon, ok := months[string(b[:3])]
	if !ok {
		return time.Time{}, 0, false
	}
	num := func(s []byte) (int, bool) {
		n := 0
		for _, c := range s {
			switch {
			case c == ' ':
			case c >= '0' && c <= '9':
				n = n*10 + int(c-'0')
			default:
				return 0, false
			}
		}
		return n, true
	}
	day, ok1 := num(b[4:6])
	hh, ok2 := num(b[7:9])
	mm, ok3 := num(b[10:12])
	ss, ok4 := num(b[13:15])
	if !ok1 || !ok2 || !ok3 || !ok4 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, 0, false
	}
	n := 15
	ns := 0
	// rsyslog's high precision variant adds ".ffffff".
	if len(b) > 16 && b[15] == '.' {
		k := 16
		for k < len(b) && k < 25 && b[k] >= '0' && b[k] <= '9' {
			k++
		}
		frac := string(b[16:k]) + "000000000"
		ns, _ = strconv.Atoi(frac[:9])
		n = k
	}
	now = now.In(loc)
	y := now.Year()
	t := time.Date(y, mon, day, hh, mm, ss, ns, loc)
	if t.Sub(now) > 24*time.Hour {
		t = time.Date(y-1, mon, day, hh, mm, ss, ns, loc)
	}
	return t, n, true
}

// validUTF8 returns b as a string, invalid UTF-8 replaced.
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}
