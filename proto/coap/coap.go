package coap

import (
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

// Kind is the event kind of every CoAP event.
const Kind = "coap"

// Anomaly names (anomaly.event).
const (
	AnomalyMalformed      = "malformed_traffic"       // cannot be parsed
	AnomalyBadVersion     = "invalid_version"         // version is not 1
	AnomalyInvalidCode    = "invalid_code"            // a reserved code class
	AnomalyUnknownOption  = "unknown_critical_option" // an unrecognised critical option
	AnomalyEmptyWithData  = "empty_message_with_data" // code 0.00 with a token, options or payload
	AnomalyPayloadMarker  = "empty_payload_after_marker"
	AnomalyInvalidToken   = "invalid_token_length"
	AnomalyRepeatedOption = "repeated_option"   // a non-repeatable option given twice
	AnomalyMissingCSM     = "missing_csm"       // TCP: the first message of a direction is not a CSM
	AnomalyTruncated      = "truncated_message" // TCP: bytes lost, message boundaries with them
)

// Parser decodes CoAP datagrams.
type Parser struct {
	// PayloadPreview is how many payload bytes coap.payload keeps
	// (default 0: none, only coap.payload_size).
	PayloadPreview int
}

var _ proto.DatagramParser = (*Parser)(nil)

var typeNames = [4]string{"confirmable", "non_confirmable", "acknowledgement", "reset"}

var methodNames = map[uint8]string{1: "GET", 2: "POST", 3: "PUT", 4: "DELETE", 5: "FETCH", 6: "PATCH", 7: "iPATCH"}

var responseNames = map[uint8]string{
	0x41: "created", 0x42: "deleted", 0x43: "valid", 0x44: "changed", 0x45: "content",
	0x5f: "continue", 0x80: "bad_request", 0x81: "unauthorized", 0x82: "bad_option",
	0x83: "forbidden", 0x84: "not_found", 0x85: "method_not_allowed", 0x86: "not_acceptable",
	0x88: "request_entity_incomplete", 0x89: "conflict", 0x8c: "precondition_failed",
	0x8d: "request_entity_too_large", 0x8f: "unsupported_content_format",
	0xa0: "internal_server_error", 0xa1: "not_implemented", 0xa2: "bad_gateway",
	0xa3: "service_unavailable", 0xa4: "gateway_timeout", 0xa5: "proxying_not_supported",
}

// Field values boxed once: the type names, every code as "c.dd", and
// the method and response names by code (nil when unnamed).
var (
	typeValues = func() (t [4]any) {
		for i, n := range typeNames {
			t[i] = n
		}
		return t
	}()
	codeValues = func() (t [256]any) {
		for i := range t {
			t[i] = strconv.Itoa(i>>5) + "." + twoDigits(uint8(i&0x1f))
		}
		return t
	}()
	methodValues = func() (t [32]any) {
		for k, v := range methodNames {
			t[k] = v
		}
		return t
	}()
	responseValues = func() (t [256]any) {
		for k, v := range responseNames {
			t[k] = v
		}
		return t
	}()
)

// Signaling codes (7.xx, RFC 8323 section 5) and their names.
const (
	signalCSM     = 1
	signalPing    = 2
	signalPong    = 3
	signalRelease = 4
	signalAbort   = 5
)

var signalValues = [32]any{signalCSM: "csm", signalPing: "ping", signalPong: "pong", signalRelease: "release", signalAbort: "abort"}

// signalOption decodes option num of signal detail into f.
func signalOption(c *proto.Context, detail uint8, num int, v []byte, f *proto.Fields, out proto.Emitter) {
	switch {
	case detail == signalCSM && num == 2:
		f.Set("coap.max_message_size", optUint(v))
	case detail == signalCSM && num == 4:
		f.Set("coap.block_wise_transfer", true)
	case (detail == signalPing || detail == signalPong) && num == 2:
		f.Set("coap.custody", true)
	case detail == signalRelease && num == 2:
		f.SetStr("coap.alternative_address", strings.ToValidUTF8(string(v), "\uFFFD"))
	case detail == signalRelease && num == 4:
		f.Set("coap.hold_off", optUint(v))
	case detail == signalAbort && num == 2:
		f.Set("coap.bad_csm_option", optUint(v))
	default:
		if num&1 == 1 {
			out.Emit(c.Anomaly(Kind, AnomalyUnknownOption, "critical signaling option "+strconv.Itoa(num)+" of 7."+twoDigits(detail)))
		}
	}
}

// Options.
const (
	optIfMatch       = 1
	optURIHost       = 3
	optETag          = 4
	optIfNoneMatch   = 5
	optObserve       = 6
	optURIPort       = 7
	optLocationPath  = 8
	optURIPath       = 11
	optContentFormat = 12
	optMaxAge        = 14
	optURIQuery      = 15
	optAccept        = 17
	optLocationQuery = 20
	optBlock2        = 23
	optBlock1        = 27
	optSize2         = 28
	optProxyURI      = 35
	optProxyScheme   = 39
	optSize1         = 60
	optEcho          = 252
	optNoResponse    = 258
	optRequestTag    = 292
	optOSCORE        = 9
	optHopLimit      = 16
	optQBlock1       = 19
	optQBlock2       = 31
	optEDHOC         = 21
)

var knownOptions = map[int]bool{optIfMatch: true, optURIHost: true, optETag: true, optIfNoneMatch: true,
	optObserve: true, optURIPort: true, optLocationPath: true, optURIPath: true, optContentFormat: true,
	optMaxAge: true, optURIQuery: true, optAccept: true, optLocationQuery: true, optBlock2: true,
	optBlock1: true, optSize2: true, optProxyURI: true, optProxyScheme: true, optSize1: true,
	optEcho: true, optNoResponse: true, optRequestTag: true, optOSCORE: true, optHopLimit: true,
	optQBlock1: true, optQBlock2: true, optEDHOC: true}

var repeatable = map[int]bool{optIfMatch: true, optETag: true, optLocationPath: true, optURIPath: true,
	optURIQuery: true, optLocationQuery: true}

func optUint(b []byte) float64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return float64(v)
}

// ParseDatagram implements proto.DatagramParser.
func (p *Parser) ParseDatagram(c *proto.Context, b []byte, out proto.Emitter) {
	if len(b) < 4 {
		out.Emit(c.Anomaly(Kind, AnomalyMalformed, "datagram of "+strconv.Itoa(len(b))+" bytes is shorter than the 4-byte header"))
		return
	}
	ver := b[0] >> 6
	typ := (b[0] >> 4) & 3
	tkl := int(b[0] & 0x0f)
	code := b[1]
	mid := uint16(b[2])<<8 | uint16(b[3])
	if ver != 1 {
		out.Emit(c.Anomaly(Kind, AnomalyBadVersion, "version "+strconv.Itoa(int(ver))))
		return
	}
	if tkl > 8 {
		out.Emit(c.Anomaly(Kind, AnomalyInvalidToken, "token length "+strconv.Itoa(tkl)))
		return
	}
	if len(b) < 4+tkl {
		out.Emit(c.Anomaly(Kind, AnomalyMalformed, "token truncated"))
		return
	}
	m := message{code: code, token: b[4 : 4+tkl], rest: b[4+tkl:]}
	ev, ok := decode(c, &m, p.PayloadPreview, out)
	if !ok {
		return
	}
	if code == 0 && typ == 3 {
		ev.Action = "reset"
	}
	ev.Fields.Set("coap.type", typeValues[typ])
	ev.Fields.Set("coap.message_id", proto.Num(float64(mid)))
	if code == 0 && (tkl > 0 || len(b) > 4) {
		out.Emit(c.Anomaly(Kind, AnomalyEmptyWithData, "empty message carries a token, options or payload"))
	}
	out.Emit(ev)
}

// message is a CoAP message whose header has been read: over UDP the
// fixed header, over TCP the length, code and token of RFC 8323.
type message struct {
	code  uint8
	token []byte
	rest  []byte // options and payload
}

// decode decodes the code, token, options and payload of m into an event
// (not emitted yet), emitting anomalies as it goes. It returns false
// when the options are malformed (the anomaly is emitted, no event).
func decode(c *proto.Context, m *message, preview int, out proto.Emitter) (proto.Event, bool) {
	code := m.code
	class, detail := code>>5, code&0x1f
	action := "request"
	switch {
	case code == 0:
		action = "empty"
	case class == 0:
	case class == 2 || class == 4 || class == 5:
		action = "response"
	default:
		action = "signaling"
	}
	ev := c.NewEvent(Kind, action, 14)
	f := &ev.Fields
	f.Set("coap.code", codeValues[code])
	if len(m.token) > 0 {
		f.SetStr("coap.token", hex.EncodeToString(m.token))
	}
	switch action {
	case "request":
		if m := methodValues[detail]; m != nil {
			f.Set("coap.method", m)
		}
	case "response":
		if n := responseValues[code]; n != nil {
			f.Set("coap.status", n)
		}
		if class == 2 {
			ev.Outcome = vigil.OutcomeSuccess
		} else {
			ev.Outcome = vigil.OutcomeFailure
		}
	case "signaling":
		if class != 7 {
			out.Emit(c.Anomaly(Kind, AnomalyInvalidCode, "reserved code class "+strconv.Itoa(int(class))))
		} else if s := signalValues[detail]; s != nil {
			f.Set("coap.signal", s)
		}
	}
	signal := class == 7
	rest := m.rest
	var path, query, lpath, lquery []string
	num := 0
	var seen [4]uint64 // options below 256 already given
	for len(rest) > 0 && rest[0] != 0xff {
		delta, l := int(rest[0]>>4), int(rest[0]&0x0f)
		rest = rest[1:]
		var ok bool
		if delta, rest, ok = ext(delta, rest); !ok {
			out.Emit(c.Anomaly(Kind, AnomalyMalformed, "option delta invalid after option "+strconv.Itoa(num)))
			return ev, false
		}
		if l, rest, ok = ext(l, rest); !ok {
			out.Emit(c.Anomaly(Kind, AnomalyMalformed, "option length invalid after option "+strconv.Itoa(num)))
			return ev, false
		}
		num += delta
		if l > len(rest) {
			out.Emit(c.Anomaly(Kind, AnomalyMalformed, "option "+strconv.Itoa(num)+" value truncated"))
			return ev, false
		}
		v := rest[:l]
		rest = rest[l:]
		if signal {
			// Signaling options are numbered per signal (RFC 8323
			// section 5).
			signalOption(c, detail, num, v, f, out)
			continue
		}
		if num < 256 {
			if seen[num>>6]&(1<<(num&63)) != 0 && !repeatable[num] {
				out.Emit(c.Anomaly(Kind, AnomalyRepeatedOption, "option "+strconv.Itoa(num)+" repeated"))
			}
			seen[num>>6] |= 1 << (num & 63)
		}
		switch num {
		case optURIPath:
			path = append(path, string(v))
		case optURIQuery:
			query = append(query, string(v))
		case optLocationPath:
			lpath = append(lpath, string(v))
		case optLocationQuery:
			lquery = append(lquery, string(v))
		case optURIHost:
			f.SetStr("coap.uri_host", string(v))
		case optURIPort:
			f.Set("coap.uri_port", optUint(v))
		case optContentFormat:
			f.Set("coap.content_format", optUint(v))
		case optAccept:
			f.Set("coap.accept", optUint(v))
		case optObserve:
			f.Set("coap.observe", optUint(v))
		case optMaxAge:
			f.Set("coap.max_age", optUint(v))
		case optETag:
			f.SetStr("coap.etag", hex.EncodeToString(v))
		case optBlock1, optBlock2:
			n := optUint(v)
			pre := "coap.block2."
			if num == optBlock1 {
				pre = "coap.block1."
			}
			x := uint64(n)
			f.Set(pre+"num", proto.Num(float64(x>>4)))
			f.Set(pre+"more", x&8 != 0)
			f.Set(pre+"size", proto.Num(float64(uint64(16)<<(x&7))))
		case optSize1:
			f.Set("coap.size1", optUint(v))
		case optSize2:
			f.Set("coap.size2", optUint(v))
		case optProxyURI:
			f.SetStr("coap.proxy_uri", string(v))
		case optProxyScheme:
			f.SetStr("coap.proxy_scheme", string(v))
		case optOSCORE:
			f.Set("coap.oscore", true)
		default:
			if !knownOptions[num] && num&1 == 1 {
				out.Emit(c.Anomaly(Kind, AnomalyUnknownOption, "critical option "+strconv.Itoa(num)))
			}
		}
	}
	if path != nil {
		f.SetStr("coap.uri_path", "/"+strings.Join(path, "/"))
	}
	if query != nil {
		f.SetStr("coap.uri_query", strings.Join(query, "&"))
	}
	if lpath != nil {
		f.SetStr("coap.location_path", "/"+strings.Join(lpath, "/"))
	}
	if lquery != nil {
		f.SetStr("coap.location_query", strings.Join(lquery, "&"))
	}
	size := 0
	if len(rest) > 0 { // payload marker
		if len(rest) == 1 {
			out.Emit(c.Anomaly(Kind, AnomalyPayloadMarker, "payload marker without payload"))
		}
		size = len(rest) - 1
		if preview > 0 && size > 0 {
			f.SetStr("coap.payload", strings.ToValidUTF8(string(rest[1:1+min(size, preview)]), "\uFFFD"))
		}
	}
	f.Set("coap.payload_size", proto.Num(float64(size)))
	return ev, true
}

func twoDigits(n uint8) string {
	if n < 10 {
		return "0" + strconv.Itoa(int(n))
	}
	return strconv.Itoa(int(n))
}

// ext reads an option delta or length's extended bytes.
func ext(v int, b []byte) (int, []byte, bool) {
	switch v {
	case 13:
		if len(b) < 1 {
			return 0, b, false
		}
		return int(b[0]) + 13, b[1:], true
	case 14:
		if len(b) < 2 {
			return 0, b, false
		}
		return (int(b[0])<<8 | int(b[1])) + 269, b[2:], true
	case 15:
		return 0, b, false
	}
	return v, b, true
}

// Probe reports whether a UDP datagram is a CoAP request, to recognise
// CoAP on ports other than 5683. A CoAP header is only four bytes, so
// the test is strict: version 1, a confirmable or non-confirmable request
// with a method code, a token of at most 8 bytes, then options that are
// all known, well encoded, within their lengths and that end exactly at
// the end of the datagram or at a payload marker followed by a payload;
// and more than the bare header.
func Probe(b []byte) bool {
	if len(b) <= 4 || b[0]>>6 != 1 || (b[0]>>4)&3 > 1 {
		return false
	}
	tkl := int(b[0] & 0x0f)
	if tkl > 8 || len(b) < 4+tkl || b[1] < 1 || b[1] > 7 {
		return false
	}
	return optionsPlausible(b[4+tkl:])
}

// optionLimits are the value lengths RFC 7252 (and the Observe, Block,
// Size, Echo, Request-Tag, OSCORE, Hop-Limit and No-Response RFCs) allow.
var optionLimits = map[int][2]int{optIfMatch: {0, 8}, optURIHost: {1, 255}, optETag: {1, 8}, optIfNoneMatch: {0, 0},
	optObserve: {0, 3}, optURIPort: {0, 2}, optLocationPath: {0, 255}, optURIPath: {0, 255}, optContentFormat: {0, 2},
	optMaxAge: {0, 4}, optURIQuery: {0, 255}, optAccept: {0, 2}, optLocationQuery: {0, 255}, optBlock2: {0, 3},
	optBlock1: {0, 3}, optSize2: {0, 4}, optProxyURI: {1, 1034}, optProxyScheme: {1, 255}, optSize1: {0, 4},
	optEcho: {1, 40}, optNoResponse: {0, 1}, optRequestTag: {0, 8}, optOSCORE: {0, 255}, optHopLimit: {1, 1},
	optQBlock1: {0, 3}, optQBlock2: {0, 3}, optEDHOC: {0, 0}}

// optionsPlausible reports whether b is a well-formed list of known
// options, optionally followed by a payload marker and a payload.
func optionsPlausible(b []byte) bool {
	num := 0
	for len(b) > 0 && b[0] != 0xff {
		delta, l := int(b[0]>>4), int(b[0]&0x0f)
		b = b[1:]
		var ok bool
		if delta, b, ok = ext(delta, b); !ok {
			return false
		}
		if l, b, ok = ext(l, b); !ok {
			return false
		}
		if delta == 0 && num > 0 && !repeatable[num] {
			return false // a non-repeatable option twice
		}
		num += delta
		lim, known := optionLimits[num]
		if !known || l < lim[0] || l > lim[1] || l > len(b) {
			return false
		}
		b = b[l:]
	}
	return len(b) != 1 // a marker needs a payload
}

// MaxMessage is the longest CoAP over TCP message the Stream decodes.
const MaxMessage = 1 << 20

// Stream decodes CoAP over TCP (RFC 8323), both directions of one
// connection: each message is length, code, token, options and payload;
// there is no type and no message id. Each side must send a
// Capabilities and Settings Message (CSM, 7.01) first: a connection seen
// from its start whose first message in a direction is something else
// raises missing_csm. Framing it cannot follow (a token longer than 8
// bytes, a message longer than MaxMessage, lost bytes) ends the decoding
// of the connection. On a connection picked up mid-stream, a direction
// whose first bytes do not decode cleanly as a message is taken to start
// inside one: the connection is given up without an anomaly.
type Stream struct {
	// PayloadPreview is how many payload bytes coap.payload keeps.
	PayloadPreview int
	started        [2]bool
	broken         bool
}

var _ proto.StreamParser = (*Stream)(nil)

// Parse implements proto.StreamParser.
func (s *Stream) Parse(c *proto.Context, data []byte, out proto.Emitter) int {
	if s.broken {
		return len(data)
	}
	d := c.Dir & 1
	// Picked up mid-stream, a direction may start in the middle of a
	// message: until one message decodes cleanly, what does not is
	// dropped silently (the connection is given up) rather than
	// reported.
	unsure := c.Midstream && !s.started[d]
	n := 0
	for n < len(data) {
		b := data[n:]
		l, hl, ok := tcpLength(b)
		if !ok {
			return n // the extended length is not all there yet
		}
		tkl := int(b[0] & 0x0f)
		if tkl > 8 || l < 0 || l > MaxMessage {
			if unsure {
				s.broken = true
			} else if tkl > 8 {
				s.fail(c, out, AnomalyInvalidToken, "token length "+strconv.Itoa(tkl))
			} else {
				s.fail(c, out, AnomalyMalformed, "message of "+strconv.Itoa(l)+" bytes is longer than "+strconv.Itoa(MaxMessage))
			}
			return len(data)
		}
		total := hl + 1 + tkl + l
		if len(b) < total {
			return n
		}
		code := b[hl]
		m := message{code: code, token: b[hl+1 : hl+1+tkl], rest: b[hl+1+tkl : total]}
		if !s.started[d] {
			s.started[d] = true
			if code != 7<<5|signalCSM && !c.Midstream {
				out.Emit(c.Anomaly(Kind, AnomalyMissingCSM, "first message code "+strconv.Itoa(int(code>>5))+"."+twoDigits(code&0x1f)+" is not a CSM"))
			}
		}
		if unsure {
			var trial collector
			ev, ok := decode(c, &m, s.PayloadPreview, &trial)
			if !ok || len(trial) > 0 {
				s.broken = true
				return len(data)
			}
			unsure = false
			out.Emit(ev)
			n += total
			continue
		}
		if ev, ok := decode(c, &m, s.PayloadPreview, out); ok {
			if code == 0 && (tkl > 0 || l > 0) {
				out.Emit(c.Anomaly(Kind, AnomalyEmptyWithData, "empty message carries a token, options or payload"))
			}
			out.Emit(ev)
		}
		n += total
	}
	return n
}

// Gap implements proto.StreamParser: message boundaries are lost, the
// connection is no longer decoded.
func (s *Stream) Gap(c *proto.Context, n int, out proto.Emitter) {
	if !s.broken {
		s.fail(c, out, AnomalyTruncated, strconv.Itoa(n)+" bytes lost")
	}
}

// collector keeps the events of a trial decode.
type collector []proto.Event

func (c *collector) Emit(ev proto.Event) { *c = append(*c, ev) }

// fail gives up on the connection after an anomaly.
func (s *Stream) fail(c *proto.Context, out proto.Emitter, name, detail string) {
	s.broken = true
	out.Emit(c.Anomaly(Kind, name, detail))
}

// tcpLength reads the length of the options and payload of a CoAP over
// TCP message at the start of b, and the length of that length field
// (with the first byte). ok is false when b does not hold it all yet.
func tcpLength(b []byte) (l, hl int, ok bool) {
	if len(b) < 1 {
		return 0, 0, false
	}
	switch n := int(b[0] >> 4); n {
	case 13:
		if len(b) < 2 {
			return 0, 0, false
		}
		return int(b[1]) + 13, 2, true
	case 14:
		if len(b) < 3 {
			return 0, 0, false
		}
		return int(binary.BigEndian.Uint16(b[1:])) + 269, 3, true
	case 15:
		if len(b) < 5 {
			return 0, 0, false
		}
		return int(binary.BigEndian.Uint32(b[1:])) + 65805, 5, true
	default:
		return n, 1, true
	}
}

// ProbeTCP reports whether a client's first bytes on a TCP connection
// are a CoAP over TCP CSM message (RFC 8323: the first message each side
// sends), to recognise CoAP over TCP on ports other than 5683: a token of
// at most 8 bytes, code 7.01, and, when the message is all there,
// options that parse and end where the message ends.
func ProbeTCP(b []byte) bool {
	l, hl, ok := tcpLength(b)
	if !ok || b[0]&0x0f > 8 || len(b) < hl+1 || b[hl] != 7<<5|signalCSM || l > 1024 {
		return false
	}
	tkl := int(b[0] & 0x0f)
	end := hl + 1 + tkl + l
	if len(b) < end {
		return true // the rest is yet to come
	}
	rest := b[hl+1+tkl : end]
	for len(rest) > 0 && rest[0] != 0xff {
		ol := int(rest[0] & 0x0f)
		delta := int(rest[0] >> 4)
		rest = rest[1:]
		if _, rest, ok = ext(delta, rest); !ok {
			return false
		}
		if ol, rest, ok = ext(ol, rest); !ok || ol > len(rest) {
			return false
		}
		rest = rest[ol:]
	}
	return len(rest) == 0
}
