package tls

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	"github.com/vigil-iot/vigil/proto"
)

// Kind is the event kind of every TLS event.
const Kind = "tls"

// Anomaly names (anomaly.event).
const (
	AnomalyMalformed    = "malformed_traffic"   // not a TLS record or a bad handshake
	AnomalyOldVersion   = "deprecated_version"  // SSL 3.0 or older offered as the maximum
	AnomalySNIInvalid   = "invalid_server_name" // a server name that is not a host name
	AnomalyHelloTooLong = "handshake_too_long"  // a hello over 64 KiB
)

// Parser decodes one TLS connection. Create one per connection.
type Parser struct {
	done [2]bool
	buf  [2][]byte // handshake bytes gathered from records
}

var _ proto.StreamParser = (*Parser)(nil)

// New returns a parser for one connection.
func New() *Parser { return &Parser{} }

// Probe reports whether data starts like a TLS handshake record carrying a
// ClientHello.
func Probe(data []byte) bool {
	return len(data) >= 6 && data[0] == 22 && data[1] == 3 && data[2] <= 4 && data[5] == 1
}

// Gap implements proto.StreamParser.
func (p *Parser) Gap(c *proto.Context, n int, out proto.Emitter) {
	p.done[c.Dir&1] = true // nothing more to learn in that direction
}

// Parse implements proto.StreamParser.
func (p *Parser) Parse(c *proto.Context, data []byte, out proto.Emitter) int {
	d := c.Dir & 1
	if p.done[d] {
		return len(data)
	}
	n := 0
	for len(data)-n >= 5 {
		r := data[n:]
		if r[0] < 20 || r[0] > 24 || r[1] != 3 {
			p.done[d] = true
			out.Emit(c.Anomaly(Kind, AnomalyMalformed, "record type "+strconv.Itoa(int(r[0]))+" version "+strconv.Itoa(int(r[1]))+"."+strconv.Itoa(int(r[2]))))
			return len(data)
		}
		l := int(binary.BigEndian.Uint16(r[3:]))
		if l > 18432 {
			p.done[d] = true
			out.Emit(c.Anomaly(Kind, AnomalyMalformed, "record length "+strconv.Itoa(l)))
			return len(data)
		}
		if len(r) < 5+l {
			return n
		}
		n += 5 + l
		if r[0] != 22 {
			p.done[d] = true // change cipher spec or application data: encrypted from here
			return len(data)
		}
		frag := r[5 : 5+l]
		hs := frag
		if len(p.buf[d]) > 0 {
			p.buf[d] = append(p.buf[d], frag...)
			hs = p.buf[d]
		}
		if len(hs) < 4 {
			p.buf[d] = append(p.buf[d][:0], hs...)
			continue
		}
		hl := int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3])
		if hl > 64<<10 {
			p.done[d] = true
			out.Emit(c.Anomaly(Kind, AnomalyHelloTooLong, "handshake of "+strconv.Itoa(hl)+" bytes"))
			return len(data)
		}
		if len(hs) < 4+hl {
			if len(p.buf[d]) == 0 {
				p.buf[d] = append(p.buf[d], frag...)
			}
			continue
		}
		switch hs[0] {
		case 1:
			clientHello(c, hs[4:4+hl], out)
		case 2:
			serverHello(c, hs[4:4+hl], out)
		}
		p.buf[d] = nil
		p.done[d] = true
		return len(data)
	}
	return n
}

func grease(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// versionValues are the named versions, boxed once for event fields.
var versionValues = func() map[uint16]any {
	m := map[uint16]any{}
	for _, v := range []uint16{0x0300, 0x0301, 0x0302, 0x0303, 0x0304, 0x0200, 0x0002} {
		m[v] = versionName(v)
	}
	return m
}()

// versionValue returns versionName(v) as an event field value.
func versionValue(v uint16) any {
	if x, ok := versionValues[v]; ok {
		return x
	}
	return versionName(v)
}

func versionName(v uint16) string {
	switch v {
	case 0x0300:
		return "SSLv3"
	case 0x0301:
		return "1.0"
	case 0x0302:
		return "1.1"
	case 0x0303:
		return "1.2"
	case 0x0304:
		return "1.3"
	case 0x0200, 0x0002:
		return "SSLv2"
	}
	return "0x" + strconv.FormatUint(uint64(v), 16)
}

// ja4Version is JA4's two-character version code.
func ja4Version(v uint16) string {
	switch v {
	case 0x0304:
		return "13"
	case 0x0303:
		return "12"
	case 0x0302:
		return "11"
	case 0x0301:
		return "10"
	case 0x0300:
		return "s3"
	case 0x0002:
		return "s2"
	case 0xfeff:
		return "d1"
	case 0xfefd:
		return "d2"
	case 0xfefc:
		return "d3"
	}
	return "00"
}

type reader struct {
	b   []byte
	bad bool
}

func (r *reader) n(k int) []byte {
	if r.bad || len(r.b) < k {
		r.bad = true
		return nil
	}
	v := r.b[:k]
	r.b = r.b[k:]
	return v
}
func (r *reader) u8() int {
	v := r.n(1)
	if v == nil {
		return 0
	}
	return int(v[0])
}
func (r *reader) u16() int {
	v := r.n(2)
	if v == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(v))
}

// ClientHello is what the fingerprints are computed from.
type ClientHello struct {
	Version           uint16
	Ciphers           []uint16 // in order, GREASE included
	Extensions        []uint16 // in order, GREASE included
	Groups            []uint16
	PointFormats      []uint8
	SignatureAlgs     []uint16
	SupportedVersions []uint16
	ALPN              []string
	ServerName        string
	// DTLS is set for a DTLS ClientHello (it has a cookie, and JA4 starts
	// with "d").
	DTLS bool
}

// ParseClientHello parses a ClientHello body (after the 4-byte handshake
// header). It returns false when the hello is malformed.
func ParseClientHello(b []byte) (ClientHello, bool) { return parseHello(b, false) }

// parseHello parses a TLS or (dtls) DTLS ClientHello body.
func parseHello(b []byte, dtls bool) (ClientHello, bool) {
	h := ClientHello{DTLS: dtls}
	r := &reader{b: b}
	h.Version = uint16(r.u16())
	r.n(32)     // random
	r.n(r.u8()) // session id
	if dtls {
		r.n(r.u8()) // cookie
	}
	cs := r.n(r.u16()) // cipher suites
	r.n(r.u8())        // compression
	if r.bad || len(cs)%2 != 0 {
		return h, false
	}
	for i := 0; i+1 < len(cs); i += 2 {
		h.Ciphers = append(h.Ciphers, binary.BigEndian.Uint16(cs[i:]))
	}
	if len(r.b) == 0 {
		return h, true // no extensions
	}
	ext := &reader{b: r.n(r.u16())}
	if r.bad {
		return h, false
	}
	for len(ext.b) > 0 {
		typ := uint16(ext.u16())
		data := ext.n(ext.u16())
		if ext.bad {
			return h, false
		}
		h.Extensions = append(h.Extensions, typ)
		e := &reader{b: data}
		switch typ {
		case 0: // server_name
			list := &reader{b: e.n(e.u16())}
			for len(list.b) > 0 && !list.bad {
				t := list.u8()
				name := list.n(list.u16())
				if t == 0 && h.ServerName == "" {
					h.ServerName = string(name)
				}
			}
		case 10: // supported_groups
			l := e.n(e.u16())
			for i := 0; i+1 < len(l); i += 2 {
				h.Groups = append(h.Groups, binary.BigEndian.Uint16(l[i:]))
			}
		case 11: // ec_point_formats
			h.PointFormats = append(h.PointFormats, e.n(e.u8())...)
		case 13: // signature_algorithms
			l := e.n(e.u16())
			for i := 0; i+1 < len(l); i += 2 {
				h.SignatureAlgs = append(h.SignatureAlgs, binary.BigEndian.Uint16(l[i:]))
			}
		case 16: // ALPN
			list := &reader{b: e.n(e.u16())}
			for len(list.b) > 0 && !list.bad {
				p := list.n(list.u8())
				if !list.bad {
					h.ALPN = append(h.ALPN, string(p))
				}
			}
		case 43: // supported_versions
			l := e.n(e.u8())
			for i := 0; i+1 < len(l); i += 2 {
				h.SupportedVersions = append(h.SupportedVersions, binary.BigEndian.Uint16(l[i:]))
			}
		}
		if e.bad {
			return h, false
		}
	}
	return h, true
}

func joinDec[T uint8 | uint16](vs []T, skipGrease bool) string {
	return string(appendDec(make([]byte, 0, 6*len(vs)), vs, skipGrease))
}

// appendDec appends vs in decimal, joined by '-'.
func appendDec[T uint8 | uint16](b []byte, vs []T, skipGrease bool) []byte {
	first := true
	for _, v := range vs {
		if skipGrease && grease(uint16(v)) {
			continue
		}
		if !first {
			b = append(b, '-')
		}
		first = false
		b = strconv.AppendUint(b, uint64(v), 10)
	}
	return b
}

// JA3 returns the JA3 string and its MD5 (GREASE values removed).
func (h *ClientHello) JA3() (string, string) {
	b := make([]byte, 0, 16+6*(len(h.Ciphers)+len(h.Extensions)+len(h.Groups))+4*len(h.PointFormats))
	b = strconv.AppendUint(b, uint64(h.Version), 10)
	b = append(b, ',')
	b = appendDec(b, h.Ciphers, true)
	b = append(b, ',')
	b = appendDec(b, h.Extensions, true)
	b = append(b, ',')
	b = appendDec(b, h.Groups, true)
	b = append(b, ',')
	b = appendDec(b, h.PointFormats, false)
	sum := md5.Sum(b)
	return string(b), hex.EncodeToString(sum[:])
}

// hex4 renders vs as 4-digit lower-case hex, joined by ','.
func hex4(vs []uint16) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 0, 5*len(vs))
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, digits[v>>12], digits[v>>8&15], digits[v>>4&15], digits[v&15])
	}
	return string(b)
}

func sha12(s string) string {
	if s == "" {
		return "000000000000"
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}

// JA4 returns the JA4 fingerprint for a hello seen over TCP (FoxIO JA4
// specification: protocol, version, SNI, counts, ALPN, then truncated
// SHA-256 of the sorted ciphers and of the sorted extensions with the
// signature algorithms).
func (h *ClientHello) JA4() string {
	ver := h.Version
	var best uint16
	for _, v := range h.SupportedVersions {
		if !grease(v) && v > best {
			best = v
		}
	}
	if best != 0 {
		ver = best
	}
	sni := "i"
	if h.ServerName != "" {
		sni = "d"
	}
	var ciphers, exts []uint16
	for _, c := range h.Ciphers {
		if !grease(c) {
			ciphers = append(ciphers, c)
		}
	}
	nExt := 0
	for _, e := range h.Extensions {
		if grease(e) {
			continue
		}
		nExt++
		if e != 0 && e != 16 {
			exts = append(exts, e)
		}
	}
	alpn := "00"
	if len(h.ALPN) > 0 && h.ALPN[0] != "" {
		a := h.ALPN[0]
		first, last := a[0], a[len(a)-1]
		if isAlnum(first) && isAlnum(last) {
			alpn = string([]byte{first, last})
		} else {
			x := hex.EncodeToString([]byte(a))
			alpn = string([]byte{x[0], x[len(x)-1]})
		}
	}
	slices.Sort(ciphers)
	slices.Sort(exts)
	extStr := hex4(exts)
	var sigs []uint16
	for _, s := range h.SignatureAlgs {
		if !grease(s) {
			sigs = append(sigs, s)
		}
	}
	if len(sigs) > 0 {
		extStr += "_" + hex4(sigs)
	}
	b := sha12(hex4(ciphers))
	c := sha12(extStr)
	if len(exts) == 0 {
		c = "000000000000"
	}
	proto := "t"
	if h.DTLS {
		proto = "d"
	}
	return proto + ja4Version(ver) + sni + twoDigits(min(len(ciphers), 99)) + twoDigits(min(nExt, 99)) + alpn + "_" + b + "_" + c
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func twoDigits(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

func validHost(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

func clientHello(c *proto.Context, b []byte, out proto.Emitter) { helloEvent(c, b, false, out) }

func helloEvent(c *proto.Context, b []byte, dtls bool, out proto.Emitter) {
	h, ok := parseHello(b, dtls)
	if !ok {
		out.Emit(c.Anomaly(Kind, AnomalyMalformed, "client hello of "+strconv.Itoa(len(b))+" bytes cannot be parsed"))
		return
	}
	ev := c.NewEvent(Kind, "client_hello", 12)
	f := &ev.Fields
	f.Set("tls.client.version", versionValue(h.Version))
	if h.ServerName != "" {
		if !validHost(h.ServerName) {
			out.Emit(c.Anomaly(Kind, AnomalySNIInvalid, "server name "+strconv.Quote(h.ServerName[:min(len(h.ServerName), 64)])))
		}
		f.SetStr("tls.client.server_name", strings.ToValidUTF8(h.ServerName, "\uFFFD"))
	}
	var vs []string
	max := h.Version
	for _, v := range h.SupportedVersions {
		if !grease(v) {
			vs = append(vs, versionName(v))
			if v > max {
				max = v
			}
		}
	}
	if vs != nil {
		f.Set("tls.client.supported_versions", vs)
	}
	if max <= 0x0300 {
		out.Emit(c.Anomaly(Kind, AnomalyOldVersion, "highest offered version "+versionName(max)))
	}
	if h.ALPN != nil {
		f.Set("tls.client.alpn", h.ALPN)
	}
	f.Set("tls.client.ciphers_count", proto.Num(float64(len(h.Ciphers))))
	s, sum := h.JA3()
	f.SetStr("tls.client.ja3", sum)
	f.SetStr("tls.client.ja3_string", s)
	f.SetStr("tls.client.ja4", h.JA4())
	out.Emit(ev)
}

func serverHello(c *proto.Context, b []byte, out proto.Emitter) {
	r := &reader{b: b}
	ver := uint16(r.u16())
	r.n(32)
	r.n(r.u8())
	cipher := r.u16()
	r.u8()
	var exts []uint16
	chosen := ver
	if len(r.b) > 0 {
		e := &reader{b: r.n(r.u16())}
		for len(e.b) > 0 && !e.bad {
			t := uint16(e.u16())
			d := e.n(e.u16())
			exts = append(exts, t)
			if t == 43 && len(d) == 2 {
				chosen = binary.BigEndian.Uint16(d)
			}
		}
		if e.bad {
			r.bad = true
		}
	}
	if r.bad {
		out.Emit(c.Anomaly(Kind, AnomalyMalformed, "server hello of "+strconv.Itoa(len(b))+" bytes cannot be parsed"))
		return
	}
	ev := c.NewEvent(Kind, "server_hello", 5)
	f := &ev.Fields
	f.Set("tls.version", versionValue(chosen))
	f.SetStr("tls.cipher", "0x"+hex4([]uint16{uint16(cipher)}))
	s := strconv.Itoa(int(ver)) + "," + strconv.Itoa(cipher) + "," + joinDec(exts, false)
	sum := md5.Sum([]byte(s))
	f.SetStr("tls.server.ja3s", hex.EncodeToString(sum[:]))
	f.SetStr("tls.server.ja3s_string", s)
	out.Emit(ev)
}

// DTLS decodes DTLS ClientHellos (CoAP over DTLS, LwM2M) from UDP
// datagrams: the same tls.client.* fields, JA4 starting with "d". Other
// records are skipped.
type DTLS struct{}

var _ proto.DatagramParser = DTLS{}

// ProbeDTLS reports whether a datagram starts with a DTLS handshake record.
func ProbeDTLS(b []byte) bool {
	return len(b) >= 25 && b[0] == 22 && b[1] == 0xfe && b[13] == 1
}

// ParseDatagram implements proto.DatagramParser.
func (DTLS) ParseDatagram(c *proto.Context, b []byte, out proto.Emitter) {
	for len(b) >= 13 {
		typ := b[0]
		l := int(binary.BigEndian.Uint16(b[11:]))
		if b[1] != 0xfe || 13+l > len(b) {
			out.Emit(c.Anomaly(Kind, AnomalyMalformed, "dtls record of "+strconv.Itoa(l)+" bytes in a datagram of "+strconv.Itoa(len(b))))
			return
		}
		rec := b[13 : 13+l]
		b = b[13+l:]
		if typ != 22 || len(rec) < 12 || rec[0] != 1 {
			continue
		}
		// Handshake header: type, length(3), message seq(2), fragment
		// offset(3), fragment length(3). Only whole hellos are decoded.
		hl := int(rec[1])<<16 | int(rec[2])<<8 | int(rec[3])
		off := int(rec[6])<<16 | int(rec[7])<<8 | int(rec[8])
		fl := int(rec[9])<<16 | int(rec[10])<<8 | int(rec[11])
		if off != 0 || fl != hl || 12+fl > len(rec) {
			continue
		}
		helloEvent(c, rec[12:12+fl], true, out)
	}
}
