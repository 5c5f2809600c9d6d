package http

import (
	"bytes"
	"strconv"
	"strings"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

// Kind is the event kind of every HTTP event.
const Kind = "http"

// Anomaly names (anomaly.event).
const (
	AnomalyMalformed       = "malformed_traffic"      // not HTTP/1.x; decoding stops
	AnomalyHeaderTooLong   = "header_too_long"        // request or response head over the limit
	AnomalyInvalidLength   = "invalid_content_length" // unparsable or conflicting Content-Length
	AnomalyInvalidChunk    = "invalid_chunk"          // bad chunk size line
	AnomalyMissingHost     = "missing_host"           // HTTP/1.1 request without Host
	AnomalyUnknownMethod   = "unknown_method"
	AnomalyDuplicateLength = "duplicate_content_length"
)

// maxHead bounds a request or response head (line and headers).
const maxHead = 64 << 10

// Parser decodes one HTTP/1.x connection. Create one per connection.
type Parser struct {
	// Upgrade, when set, is asked for a parser of the connection after a
	// successful WebSocket upgrade (101 Switching Protocols), given the
	// negotiated subprotocol ("mqtt", ...). A nil result skips the rest.
	Upgrade func(subprotocol string) proto.StreamParser

	dir      [2]dirState
	broken   bool
	wsProto  string             // Sec-WebSocket-Protocol seen
	upgraded bool               // after a 101: everything goes to inner
	inner    proto.StreamParser // parser after the upgrade, or nil
	// methods of requests awaiting a response, so that HEAD responses
	// are known to have no body.
	pending []string
}

type dirState struct {
	body    int64 // body bytes still to skip (-1: chunked, -2: until close)
	chunked bool
	trailer bool
}

var _ proto.StreamParser = (*Parser)(nil)

// New returns a parser for one connection.
func New() *Parser { return &Parser{} }

var methods = map[string]bool{"GET": true, "POST": true, "PUT": true, "DELETE": true, "HEAD": true,
	"OPTIONS": true, "PATCH": true, "CONNECT": true, "TRACE": true, "PROPFIND": true,
	"PROPPATCH": true, "MKCOL": true, "COPY": true, "MOVE": true, "LOCK": true, "UNLOCK": true,
	"SUBSCRIBE": true, "NOTIFY": true, "M-SEARCH": true, "UNSUBSCRIBE": true}

// constValues holds the methods and common version strings boxed once,
// so that events carry them without an allocation each.
var constValues = func() map[string]any {
	m := map[string]any{"1.0": "1.0", "1.1": "1.1", "OK": "OK"}
	for k := range methods {
		m[k] = k
	}
	return m
}()

// value returns s as an event field value, boxed once if it is one of
// constValues.
func value(s string) any {
	if v, ok := constValues[s]; ok {
		return v
	}
	return s
}

// Probe reports whether data starts like an HTTP request.
func Probe(data []byte) bool {
	sp := bytes.IndexByte(data, ' ')
	if sp <= 0 || sp > 12 || !methods[string(data[:sp])] {
		return false
	}
	return true
}

// Gap implements proto.StreamParser.
func (p *Parser) Gap(c *proto.Context, n int, out proto.Emitter) {
	if p.upgraded {
		if p.inner != nil {
			p.inner.Gap(c, n, out)
		}
		return
	}
	d := &p.dir[c.Dir&1]
	if d.body > 0 && int64(n) <= d.body {
		d.body -= int64(n) // lost body bytes do not matter
		return
	}
	if d.body == -2 {
		return
	}
	if !p.broken {
		p.broken = true
		out.Emit(c.Anomaly(Kind, AnomalyMalformed, "cannot decode after "+strconv.Itoa(n)+" lost bytes "+c.Dir.String()))
	}
}

// Parse implements proto.StreamParser.
func (p *Parser) Parse(c *proto.Context, data []byte, out proto.Emitter) int {
	if p.broken {
		return len(data)
	}
	d := &p.dir[c.Dir&1]
	n := 0
	for n < len(data) {
		if p.upgraded {
			if p.inner == nil {
				return len(data)
			}
			return n + p.inner.Parse(c, data[n:], out)
		}
		b := data[n:]
		switch {
		case d.body == -2:
			return len(data)
		case d.body > 0:
			k := int(min(d.body, int64(len(b))))
			d.body -= int64(k)
			n += k
			continue
		case d.chunked:
			line := bytes.IndexByte(b, '\n')
			if line < 0 {
				if len(b) > 1024 {
					p.fail(c, out, AnomalyInvalidChunk, "chunk size line over 1024 bytes")
					return len(data)
				}
				return n
			}
			s := strings.TrimSpace(string(b[:line]))
			n += line + 1
			if d.trailer {
				if s == "" {
					d.chunked, d.trailer = false, false
				}
				continue
			}
			if i := strings.IndexByte(s, ';'); i >= 0 {
				s = s[:i]
			}
			size, err := strconv.ParseInt(strings.TrimSpace(s), 16, 64)
			if err != nil || size < 0 {
				p.fail(c, out, AnomalyInvalidChunk, "chunk size "+strconv.Quote(s))
				return len(data)
			}
			if size == 0 {
				d.trailer = true
				continue
			}
			d.body = size + 2 // the data and its CRLF
			continue
		}
		end := bytes.Index(b, []byte("\r\n\r\n"))
		hl := 4
		if end < 0 {
			end = bytes.Index(b, []byte("\n\n"))
			hl = 2
		}
		if end < 0 {
			if len(b) > maxHead {
				p.fail(c, out, AnomalyHeaderTooLong, "head longer than "+strconv.Itoa(maxHead)+" bytes")
				return len(data)
			}
			return n
		}
		if !p.head(c, b[:end], out) {
			return len(data)
		}
		n += end + hl
	}
	return n
}

func (p *Parser) fail(c *proto.Context, out proto.Emitter, name, detail string) {
	p.broken = true
	out.Emit(c.Anomaly(Kind, name, detail))
}

// head decodes a request or response line and its headers, emits the
// event and sets up body skipping. It returns false after giving up.
func (p *Parser) head(c *proto.Context, h []byte, out proto.Emitter) bool {
	d := &p.dir[c.Dir&1]
	eol := bytes.IndexByte(h, '\n')
	if eol < 0 {
		eol = len(h)
	}
	line := string(bytes.TrimRight(h[:eol], "\r"))
	rest := h[min(eol+1, len(h)):]
	var ev proto.Event
	request := c.Dir == proto.ToServer
	var method, version, upgrade string
	status := 0
	if request {
		parts := strings.SplitN(line, " ", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "HTTP/") {
			p.fail(c, out, AnomalyMalformed, "request line "+strconv.Quote(trunc(line, 64)))
			return false
		}
		method = parts[0]
		if !methods[method] {
			out.Emit(c.Anomaly(Kind, AnomalyUnknownMethod, "method "+strconv.Quote(trunc(method, 32))))
		}
		ev = c.NewEvent(Kind, "request", 10)
		ev.Fields.Set("http.method", value(method))
		version = strings.TrimPrefix(parts[2], "HTTP/")
		ev.Fields.Set("http.version", value(version))
		target := parts[1]
		path, query, _ := strings.Cut(target, "?")
		if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
			ev.Fields.SetStr("http.url", trunc(target, 2048))
		}
		ev.Fields.SetStr("http.path", trunc(path, 2048))
		if query != "" {
			ev.Fields.SetStr("http.query", trunc(query, 2048))
		}
		if len(p.pending) < 64 {
			p.pending = append(p.pending, method)
		}
	} else {
		parts := strings.SplitN(line, " ", 3)
		if len(parts) < 2 || !strings.HasPrefix(parts[0], "HTTP/") {
			p.fail(c, out, AnomalyMalformed, "status line "+strconv.Quote(trunc(line, 64)))
			return false
		}
		code, err := strconv.Atoi(parts[1])
		if err != nil || code < 100 || code > 999 {
			p.fail(c, out, AnomalyMalformed, "status code "+strconv.Quote(trunc(parts[1], 16)))
			return false
		}
		status = code
		ev = c.NewEvent(Kind, "response", 8)
		ev.Fields.Set("http.version", value(strings.TrimPrefix(parts[0], "HTTP/")))
		ev.Fields.Set("http.status_code", proto.Num(float64(code)))
		if len(parts) == 3 {
			ev.Fields.Set("http.status", value(trunc(parts[2], 128)))
		}
		if code < 400 {
			ev.Outcome = vigil.OutcomeSuccess
		} else {
			ev.Outcome = vigil.OutcomeFailure
		}
		if len(p.pending) > 0 && code >= 200 {
			method = p.pending[0]
			p.pending = p.pending[1:]
		}
	}
	f := &ev.Fields
	length := int64(-1)
	chunked := false
	hasHost := false
	for len(rest) > 0 {
		eol := bytes.IndexByte(rest, '\n')
		var l []byte
		if eol < 0 {
			l, rest = rest, nil
		} else {
			l, rest = rest[:eol], rest[eol+1:]
		}
		l = bytes.TrimRight(l, "\r")
		k, v, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			continue
		}
		vb := bytes.TrimSpace(v)
		val := func() string { return string(vb) }
		var lk [32]byte // the name in lower case; longer names matter not
		kb := bytes.TrimSpace(k)
		if len(kb) > len(lk) {
			continue
		}
		for i, c := range kb {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			lk[i] = c
		}
		switch string(lk[:len(kb)]) {
		case "host":
			hasHost = true
			f.SetStr("http.host", trunc(val(), 256))
		case "user-agent":
			f.SetStr("http.user_agent", trunc(val(), 512))
		case "content-type":
			f.SetStr("http.content_type", trunc(val(), 128))
		case "server":
			f.SetStr("http.server", trunc(val(), 256))
		case "upgrade":
			upgrade = trunc(val(), 64)
			f.SetStr("http.upgrade", upgrade)
		case "sec-websocket-protocol":
			p.wsProto = trunc(val(), 64)
			f.SetStr("http.websocket_protocol", p.wsProto)
		case "authorization":
			// The credential is never kept, only its scheme.
			scheme, _, _ := strings.Cut(val(), " ")
			f.SetStr("http.authorization_scheme", trunc(scheme, 32))
		case "transfer-encoding":
			chunked = strings.Contains(strings.ToLower(val()), "chunked")
		case "content-length":
			n, err := strconv.ParseInt(val(), 10, 64)
			if err != nil || n < 0 {
				out.Emit(c.Anomaly(Kind, AnomalyInvalidLength, "content-length "+strconv.Quote(trunc(val(), 32))))
				continue
			}
			if length >= 0 && n != length {
				out.Emit(c.Anomaly(Kind, AnomalyDuplicateLength, "two content-length values"))
			}
			length = n
		}
	}
	if length >= 0 {
		f.Set("http.content_length", proto.Num(float64(length)))
	}
	if request && !hasHost && version == "1.1" {
		out.Emit(c.Anomaly(Kind, AnomalyMissingHost, "HTTP/1.1 request without a Host header"))
	}
	out.Emit(ev)
	// Body framing (RFC 9112 section 6).
	d.body, d.chunked, d.trailer = 0, false, false
	if !request {
		code := status
		if code == 101 && strings.EqualFold(upgrade, "websocket") && p.Upgrade != nil {
			p.upgraded = true
			p.inner = p.Upgrade(p.wsProto)
			return true
		}
		if code == 101 || method == "CONNECT" && code >= 200 && code < 300 {
			d.body = -2 // another protocol follows
			p.dir[0].body = -2
			return true
		}
		if method == "HEAD" || code < 200 || code == 204 || code == 304 {
			return true
		}
	}
	switch {
	case chunked:
		d.chunked = true
	case length > 0:
		d.body = length
	case length < 0 && !request:
		d.body = -2 // until the connection closes
	}
	return true
}

func trunc(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
