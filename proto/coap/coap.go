package coap

import (
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
	AnomalyRepeatedOption = "repeated_option" // a non-repeatable option given twice
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
	class, detail := code>>5, code&0x1f
	action := "request"
	switch {
	case code == 0:
		action = "empty"
		if typ == 3 {
			action = "reset"
		}
	case class == 0:
	case class == 2 || class == 4 || class == 5:
		action = "response"
	default:
		action = "signaling"
	}
	ev := c.NewEvent(Kind, action, 14)
	f := ev.Fields
	f["coap.type"] = typeValues[typ]
	f["coap.code"] = codeValues[code]
	f["coap.message_id"] = proto.Num(float64(mid))
	if tkl > 0 {
		f["coap.token"] = hex.EncodeToString(b[4 : 4+tkl])
	}
	switch action {
	case "request":
		if m := methodValues[detail]; m != nil {
			f["coap.method"] = m
		}
	case "response":
		if n := responseValues[code]; n != nil {
			f["coap.status"] = n
		}
		if class == 2 {
			ev.Outcome = vigil.OutcomeSuccess
		} else {
			ev.Outcome = vigil.OutcomeFailure
		}
	case "signaling":
		if class != 7 {
			out.Emit(c.Anomaly(Kind, AnomalyInvalidCode, "reserved code class "+strconv.Itoa(int(class))))
		}
	}
	rest := b[4+tkl:]
	var path, query, lpath, lquery []string
	num := 0
	var seen [4]uint64 // options below 256 already given
	for len(rest) > 0 && rest[0] != 0xff {
		delta, l := int(rest[0]>>4), int(rest[0]&0x0f)
		rest = rest[1:]
		var ok bool
		if delta, rest, ok = ext(delta, rest); !ok {
			out.Emit(c.Anomaly(Kind, AnomalyMalformed, "option delta invalid after option "+strconv.Itoa(num)))
			return
		}
		if l, rest, ok = ext(l, rest); !ok {
			out.Emit(c.Anomaly(Kind, AnomalyMalformed, "option length invalid after option "+strconv.Itoa(num)))
			return
		}
		num += delta
		if l > len(rest) {
			out.Emit(c.Anomaly(Kind, AnomalyMalformed, "option "+strconv.Itoa(num)+" value truncated"))
			return
		}
		v := rest[:l]
		rest = rest[l:]
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
			f["coap.uri_host"] = string(v)
		case optURIPort:
			f["coap.uri_port"] = optUint(v)
		case optContentFormat:
			f["coap.content_format"] = optUint(v)
		case optAccept:
			f["coap.accept"] = optUint(v)
		case optObserve:
			f["coap.observe"] = optUint(v)
		case optMaxAge:
			f["coap.max_age"] = optUint(v)
		case optETag:
			f["coap.etag"] = hex.EncodeToString(v)
		case optBlock1, optBlock2:
			n := optUint(v)
			pre := "coap.block2."
			if num == optBlock1 {
				pre = "coap.block1."
			}
			x := uint64(n)
			f[pre+"num"] = proto.Num(float64(x >> 4))
			f[pre+"more"] = x&8 != 0
			f[pre+"size"] = proto.Num(float64(uint64(16) << (x & 7)))
		case optSize1:
			f["coap.size1"] = optUint(v)
		case optSize2:
			f["coap.size2"] = optUint(v)
		case optProxyURI:
			f["coap.proxy_uri"] = string(v)
		case optProxyScheme:
			f["coap.proxy_scheme"] = string(v)
		case optOSCORE:
			f["coap.oscore"] = true
		default:
			if !knownOptions[num] && num&1 == 1 {
				out.Emit(c.Anomaly(Kind, AnomalyUnknownOption, "critical option "+strconv.Itoa(num)))
			}
		}
	}
	if path != nil {
		f["coap.uri_path"] = "/" + strings.Join(path, "/")
	}
	if query != nil {
		f["coap.uri_query"] = strings.Join(query, "&")
	}
	if lpath != nil {
		f["coap.location_path"] = "/" + strings.Join(lpath, "/")
	}
	if lquery != nil {
		f["coap.location_query"] = strings.Join(lquery, "&")
	}
	size := 0
	if len(rest) > 0 { // payload marker
		if len(rest) == 1 {
			out.Emit(c.Anomaly(Kind, AnomalyPayloadMarker, "payload marker without payload"))
		}
		size = len(rest) - 1
		if p.PayloadPreview > 0 && size > 0 {
			f["coap.payload"] = strings.ToValidUTF8(string(rest[1:1+min(size, p.PayloadPreview)]), "\uFFFD")
		}
	}
	f["coap.payload_size"] = proto.Num(float64(size))
	if code == 0 && (tkl > 0 || len(b) > 4) {
		out.Emit(c.Anomaly(Kind, AnomalyEmptyWithData, "empty message carries a token, options or payload"))
	}
	out.Emit(ev)
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
