package weblog

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/vigil-iot/vigil"
)

// Source is the Event.Source of access log events.
const Source = "weblog"

// Kind is their Event.Kind (the Sigma mapping puts it in the logsource
// category webserver).
const Kind = "web"

// Record is one access log line.
type Record struct {
	Time      time.Time
	Client    netip.Addr // %h; invalid when it is a host name
	ClientRaw string     // %h as written
	User      string     // %u, empty for "-"
	Request   string     // the request line, as logged
	Method    string
	Target    string // the request target (URL as sent)
	Protocol  string // HTTP/1.1
	Status    int    // 0 when unknown
	Bytes     int64  // -1 when "-"
	Referer   string
	UserAgent string
	Host      string  // the virtual host (JSON logs with host/http_host/server_name)
	Duration  float64 // seconds (JSON request_time), -1 when unknown
}

// ErrFormat is wrapped by the errors of lines that are no access log line.
var ErrFormat = errors.New("not an access log line")

// Parse reads one line: JSON when it starts with '{', else the common or
// combined format.
func Parse(line []byte) (Record, error) {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) > 0 && line[0] == '{' {
		return parseJSON(line)
	}
	return parseCombined(line)
}

// parseCombined reads `host ident user [time] "request" status bytes`
// and, in the combined format, `"referer" "user agent"` after it.
func parseCombined(b []byte) (Record, error) {
	r := Record{Bytes: -1, Duration: -1}
	s := string(b)
	word := func(what string) (string, error) {
		s = strings.TrimLeft(s, " ")
		i := strings.IndexByte(s, ' ')
		if i <= 0 {
			return "", fmt.Errorf("%w: no %s", ErrFormat, what)
		}
		w := s[:i]
		s = s[i+1:]
		return w, nil
	}
	var err error
	if r.ClientRaw, err = word("client"); err != nil {
		return r, err
	}
	if a, err := netip.ParseAddr(r.ClientRaw); err == nil {
		r.Client = a.Unmap()
	}
	if _, err = word("ident"); err != nil {
		return r, err
	}
	// The user may be quoted by some servers; rarely has spaces.
	if r.User, err = word("user"); err != nil {
		return r, err
	}
	if r.User == "-" {
		r.User = ""
	}
	s = strings.TrimLeft(s, " ")
	if !strings.HasPrefix(s, "[") {
		return r, fmt.Errorf("%w: no [time]", ErrFormat)
	}
	end := strings.IndexByte(s, ']')
	if end < 0 {
		return r, fmt.Errorf("%w: no ] after the time", ErrFormat)
	}
	t, err := time.Parse("02/Jan/2006:15:04:05 -0700", s[1:end])
	if err != nil {
		return r, fmt.Errorf("%w: time %q is not dd/Mon/yyyy:hh:mm:ss zone", ErrFormat, s[1:end])
	}
	if !inRange(t) {
		return r, fmt.Errorf("%w: time %q is out of range", ErrFormat, s[1:end])
	}
	r.Time = t
	s = s[end+1:]
	quoted := func(what string) (string, error) {
		s = strings.TrimLeft(s, " ")
		if !strings.HasPrefix(s, `"`) {
			return "", fmt.Errorf("%w: no quoted %s", ErrFormat, what)
		}
		v, n, ok := unquote(s[1:])
		if !ok {
			return "", fmt.Errorf("%w: no closing quote after the %s", ErrFormat, what)
		}
		s = s[1+n:]
		return v, nil
	}
	if r.Request, err = quoted("request"); err != nil {
		return r, err
	}
	r.Method, r.Target, r.Protocol = splitRequest(r.Request)
	st, err := word("status")
	if err != nil {
		// The status may end the line (no bytes): common format cut.
		st, s = strings.TrimSpace(s), ""
	}
	if r.Status, err = strconv.Atoi(st); err != nil || r.Status < 100 || r.Status > 999 {
		return r, fmt.Errorf("%w: status %q is not a number from 100 to 999", ErrFormat, st)
	}
	s = strings.TrimLeft(s, " ")
	bs := s
	if i := strings.IndexByte(s, ' '); i >= 0 {
		bs, s = s[:i], s[i+1:]
	} else {
		s = ""
	}
	if bs != "-" && bs != "" {
		if r.Bytes, err = strconv.ParseInt(bs, 10, 64); err != nil || r.Bytes < 0 {
			return r, fmt.Errorf("%w: bytes %q is not a number", ErrFormat, bs)
		}
	}
	if strings.TrimSpace(s) == "" {
		return r, nil // the common format
	}
	if r.Referer, err = quoted("referer"); err != nil {
		return r, err
	}
	if r.Referer == "-" {
		r.Referer = ""
	}
	if r.UserAgent, err = quoted("user agent"); err != nil {
		return r, err
	}
	if r.UserAgent == "-" {
		r.UserAgent = ""
	}
	return r, nil
}

// unquote reads a quoted field up to its closing quote: Apache escapes
// `"` and `\` with a backslash and other bytes as \xHH, nginx writes
// \xHH for `"` and for bytes that are not printable. It returns the value,
// the bytes read (the closing quote included) and whether it was closed.
func unquote(s string) (string, int, bool) {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			if b == nil {
				return validUTF8([]byte(s[:i])), i + 1, true
			}
			return validUTF8(b), i + 1, true
		case c == '\\' && i+1 < len(s):
			if b == nil {
				b = append(make([]byte, 0, len(s)), s[:i]...)
			}
			n := s[i+1]
			switch {
			case n == '"' || n == '\\':
				b = append(b, n)
				i++
			case n == 'x' && i+3 < len(s):
				if h, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
					b = append(b, byte(h))
					i += 3
				} else {
					b = append(b, c)
				}
			case n == 'n':
				b = append(b, '\n')
				i++
			case n == 't':
				b = append(b, '\t')
				i++
			default:
				b = append(b, c)
			}
		default:
			if b != nil {
				b = append(b, c)
			}
		}
	}
	return "", 0, false
}

// splitRequest splits "GET /a?b HTTP/1.1"; a line that is not a request
// (garbage, "-") gives no method.
func splitRequest(req string) (method, target, proto string) {
	m, rest, ok := strings.Cut(req, " ")
	if !ok || m == "" || !isToken(m) {
		return "", "", ""
	}
	target, proto = rest, ""
	if i := strings.LastIndexByte(rest, ' '); i >= 0 && strings.HasPrefix(rest[i+1:], "HTTP/") {
		target, proto = rest[:i], rest[i+1:]
	}
	return m, target, proto
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 33 || c > 126 || c == '"' || c == '(' || c == ')' || c == ',' || c == '/' || c == ':' || c == ';' || c == '<' || c == '=' || c == '>' || c == '?' || c == '@' || c == '[' || c == '\\' || c == ']' || c == '{' || c == '}' {
			return false
		}
	}
	return len(s) > 0 && len(s) <= 32
}

// jsonKeys are the names JSON access logs give each part, nginx's
// variable names first.
var jsonKeys = struct {
	time, client, user, request, method, uri, proto, status, bytes, referer, agent, host, duration []string
}{
	time:     []string{"time_iso8601", "time_local", "time", "timestamp", "@timestamp"},
	client:   []string{"remote_addr", "client_ip", "client", "remote_ip"},
	user:     []string{"remote_user", "user"},
	request:  []string{"request"},
	method:   []string{"request_method", "method"},
	uri:      []string{"request_uri", "uri", "url"},
	proto:    []string{"server_protocol", "protocol"},
	status:   []string{"status"},
	bytes:    []string{"body_bytes_sent", "bytes_sent", "bytes"},
	referer:  []string{"http_referer", "referer", "referrer"},
	agent:    []string{"http_user_agent", "user_agent", "agent"},
	host:     []string{"host", "http_host", "server_name", "vhost"},
	duration: []string{"request_time", "duration"},
}

func parseJSON(b []byte) (Record, error) {
	r := Record{Bytes: -1, Duration: -1}
	var p fastjson.Parser
	v, err := p.ParseBytes(b)
	if err != nil {
		return r, fmt.Errorf("%w: not a JSON object: %v", ErrFormat, err)
	}
	get := func(keys []string) (string, bool) {
		for _, k := range keys {
			x := v.Get(k)
			if x == nil {
				continue
			}
			switch x.Type() {
			case fastjson.TypeString:
				s := string(x.GetStringBytes())
				return s, s != "" && s != "-"
			case fastjson.TypeNumber:
				return string(x.MarshalTo(nil)), true
			}
		}
		return "", false
	}
	ts, ok := get(jsonKeys.time)
	if !ok {
		return r, fmt.Errorf("%w: no time (%s)", ErrFormat, strings.Join(jsonKeys.time, ", "))
	}
	for _, layout := range []string{time.RFC3339Nano, "02/Jan/2006:15:04:05 -0700"} {
		if t, err := time.Parse(layout, ts); err == nil && inRange(t) {
			r.Time = t
			break
		}
	}
	if r.Time.IsZero() {
		return r, fmt.Errorf("%w: time %q is neither ISO 8601 nor dd/Mon/yyyy:hh:mm:ss zone", ErrFormat, ts)
	}
	r.ClientRaw, _ = get(jsonKeys.client)
	if a, err := netip.ParseAddr(r.ClientRaw); err == nil {
		r.Client = a.Unmap()
	}
	r.User, _ = get(jsonKeys.user)
	r.Request, _ = get(jsonKeys.request)
	r.Method, r.Target, r.Protocol = splitRequest(r.Request)
	if m, ok := get(jsonKeys.method); ok {
		r.Method = m
	}
	if u, ok := get(jsonKeys.uri); ok {
		r.Target = u
	}
	if pr, ok := get(jsonKeys.proto); ok {
		r.Protocol = pr
	}
	if st, ok := get(jsonKeys.status); ok {
		if r.Status, err = strconv.Atoi(st); err != nil || r.Status < 100 || r.Status > 999 {
			return r, fmt.Errorf("%w: status %q is not a number from 100 to 999", ErrFormat, st)
		}
	}
	if bs, ok := get(jsonKeys.bytes); ok {
		if r.Bytes, err = strconv.ParseInt(bs, 10, 64); err != nil || r.Bytes < 0 {
			return r, fmt.Errorf("%w: bytes %q is not a number", ErrFormat, bs)
		}
	}
	r.Referer, _ = get(jsonKeys.referer)
	r.UserAgent, _ = get(jsonKeys.agent)
	r.Host, _ = get(jsonKeys.host)
	if d, ok := get(jsonKeys.duration); ok {
		if f, err := strconv.ParseFloat(d, 64); err == nil && f >= 0 && f < 1e9 {
			r.Duration = f
		}
	}
	if r.Method == "" && r.Target == "" && r.Status == 0 {
		return r, fmt.Errorf("%w: no request, uri or status", ErrFormat)
	}
	return r, nil
}

// Event returns the event of r: kind web, action "access", the client
// in the 5-tuple's source, ECS fields (docs/sources.md). server names the
// web server (a host name or address) when known.
func Event(r *Record, server string) vigil.Event {
	f := map[string]any{}
	if r.Method != "" {
		f["http.request.method"] = r.Method
	}
	if r.Target != "" {
		f["url.original"] = r.Target
		path, query, hasQ := strings.Cut(r.Target, "?")
		if i := strings.Index(path, "://"); i >= 0 {
			// An absolute form (proxies): its path.
			if j := strings.IndexByte(path[i+3:], '/'); j >= 0 {
				if r.Host == "" {
					r.Host = path[i+3 : i+3+j]
				}
				path = path[i+3+j:]
			} else {
				path = "/"
			}
		}
		f["url.path"] = path
		if hasQ {
			f["url.query"] = query
		}
		if dot := strings.LastIndexByte(path, '.'); dot >= 0 && dot > strings.LastIndexByte(path, '/') {
			f["url.extension"] = path[dot+1:]
		}
	}
	if r.Request != "" && r.Method == "" {
		f["http.request.line"] = r.Request // not a request: a scan or garbage
	}
	if v, ok := strings.CutPrefix(r.Protocol, "HTTP/"); ok {
		f["http.version"] = v
	}
	if r.Status != 0 {
		f["http.response.status_code"] = float64(r.Status)
	}
	if r.Bytes >= 0 {
		f["http.response.bytes"] = float64(r.Bytes)
	}
	if r.Referer != "" {
		f["http.request.referrer"] = r.Referer
	}
	if r.UserAgent != "" {
		f["user_agent.original"] = r.UserAgent
	}
	if r.User != "" {
		f["user.name"] = r.User
	}
	if r.Host != "" {
		f["url.domain"] = r.Host
	}
	if r.Duration >= 0 {
		f["event.duration"] = r.Duration * 1e9 // ECS: nanoseconds
	}
	if !r.Client.IsValid() && r.ClientRaw != "" && r.ClientRaw != "-" {
		f["source.address"] = r.ClientRaw
	}
	if server != "" {
		f["observer.hostname"] = server
	}
	ev := vigil.Event{
		Time:     r.Time.UTC(),
		Source:   Source,
		Kind:     Kind,
		Category: "web",
		Action:   "access",
		Fields:   f,
	}
	if r.Client.IsValid() {
		ev.Network = &vigil.Network{Transport: "tcp", SrcIP: r.Client}
	}
	switch {
	case r.Status >= 400:
		ev.Outcome = vigil.OutcomeFailure
	case r.Status > 0:
		ev.Outcome = vigil.OutcomeSuccess
	}
	return ev
}

func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}

// inRange reports whether t is within the years events carry (1 to 9999
// in UTC).
func inRange(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1 && y <= 9999
}
