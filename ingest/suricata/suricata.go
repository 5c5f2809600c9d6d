package suricata

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/ingest/nsm"
	"github.com/vigil-iot/vigil/proto"
	"github.com/vigil-iot/vigil/proto/twin"
)

// Product is the observer.product of events converted from EVE.
const Product = "suricata"

// PayloadPreview is how many bytes of an MQTT payload events keep, as the
// sensor's default.
const PayloadPreview = 256

// RecordError is an error in one record (a line) of the input: what and
// where. The reader goes on with the next line.
type RecordError struct {
	Name string // the input
	Line int    // from 1
	Msg  string
}

func (e *RecordError) Error() string { return e.Name + ":" + strconv.Itoa(e.Line) + ": " + e.Msg }

// MaxLine is the longest EVE record a Reader accepts, in bytes.
const MaxLine = 4 << 20

// EventTypes lists the EVE event types Vigil converts; records of other
// types (stats, fileinfo, netflow, ...) are skipped and counted.
func EventTypes() []string {
	return []string{"alert", "flow", "dns", "http", "tls", "mqtt", "modbus", "anomaly"}
}

// Options configure a Reader.
type Options struct {
	// Name names the input in errors (a file name).
	Name string
	// Arena, when set, supplies the field storage of events (the caller
	// resets it once it is done with them). Nil allocates per event.
	Arena *proto.FieldArena
}

// Stats count what a Reader did.
type Stats struct {
	Records int // records read
	Events  int // events made
	Skipped int // records of an event type that is not converted
}

// Reader reads EVE JSON, one record a line. Not safe for concurrent use.
type Reader struct {
	opt   Options
	lines *nsm.Lines
	line  int
	stats Stats
	jp    fastjson.Parser
}

// NewReader returns a reader of the EVE records in r.
func NewReader(r io.Reader, opt Options) *Reader {
	return &Reader{opt: opt, lines: nsm.NewLines(r, MaxLine)}
}

// Stats returns what the reader did so far.
func (r *Reader) Stats() Stats { return r.stats }

func (r *Reader) readLine() ([]byte, error) {
	l, err := r.lines.Next()
	r.line = r.lines.Line
	switch {
	case err == nsm.ErrLongLine:
		return nil, &RecordError{r.opt.Name, r.line, fmt.Sprintf("line longer than %d bytes", MaxLine)}
	case err == io.EOF:
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("cannot read %s: %w", r.opt.Name, err)
	}
	return l, nil
}

// Next appends to dst the events of the next record that makes any and
// returns it; io.EOF at the end of the input. An error names the input,
// its line and the field at fault; the reader may go on after it with the
// next record, except after an I/O error.
func (r *Reader) Next(dst []proto.Event) ([]proto.Event, error) {
	for {
		l, err := r.readLine()
		if err != nil {
			return dst, err
		}
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		r.stats.Records++
		n := len(dst)
		dst, err = r.record(dst, l)
		if err != nil {
			return dst[:n], &RecordError{r.opt.Name, r.line, err.Error()}
		}
		r.stats.Events += len(dst) - n
		if len(dst) > n {
			return dst, nil
		}
	}
}

// rec is one EVE record being converted.
type rec struct {
	v     *fastjson.Value
	arena *proto.FieldArena
	t     time.Time
	flow  string
	net   *vigil.Network // as the record gives it
	err   error
}

func (c *rec) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, args...)
	}
}

// str returns the string at the path keys.
func (c *rec) str(keys ...string) (string, bool) {
	v := c.v.Get(keys...)
	if v == nil || v.Type() == fastjson.TypeNull {
		return "", false
	}
	if v.Type() != fastjson.TypeString {
		c.fail("%s: not a string", strings.Join(keys, "."))
		return "", false
	}
	b, _ := v.StringBytes()
	return string(b), true
}

// num returns the number at the path keys.
func (c *rec) num(keys ...string) (float64, bool) {
	v := c.v.Get(keys...)
	if v == nil || v.Type() == fastjson.TypeNull {
		return 0, false
	}
	f, err := v.Float64()
	if err != nil {
		c.fail("%s: not a number", strings.Join(keys, "."))
		return 0, false
	}
	return f, true
}

// boolean returns the bool at the path keys.
func (c *rec) boolean(keys ...string) (bool, bool) {
	v := c.v.Get(keys...)
	if v == nil || v.Type() == fastjson.TypeNull {
		return false, false
	}
	switch v.Type() {
	case fastjson.TypeTrue:
		return true, true
	case fastjson.TypeFalse:
		return false, true
	}
	c.fail("%s: not a bool", strings.Join(keys, "."))
	return false, false
}

// array returns the array at the path keys.
func (c *rec) array(keys ...string) []*fastjson.Value {
	v := c.v.Get(keys...)
	if v == nil || v.Type() == fastjson.TypeNull {
		return nil
	}
	a, err := v.Array()
	if err != nil {
		c.fail("%s: not an array", strings.Join(keys, "."))
	}
	return a
}

// parseTime reads EVE's timestamps: "2017-04-07T22:24:37.251547+0100"
// (an offset without a colon), RFC 3339, or without a zone (UTC).
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.999999999-0700", time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			if y := t.UTC().Year(); y < 1970 || y > 9999 {
				return time.Time{}, fmt.Errorf("%q is out of range", s)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time", s)
}

func (c *rec) time(keys ...string) (time.Time, bool) {
	s, ok := c.str(keys...)
	if !ok {
		return time.Time{}, false
	}
	t, err := parseTime(s)
	if err != nil {
		c.fail("%s: %v", strings.Join(keys, "."), err)
		return time.Time{}, false
	}
	return t, true
}

func (c *rec) addr(key string) (netip.Addr, bool) {
	s, ok := c.str(key)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		c.fail("%s: %q is not an IP address", key, s)
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func (c *rec) port(key string) uint16 {
	f, ok := c.num(key)
	if !ok {
		return 0
	}
	if f < 0 || f > 65535 || f != float64(int(f)) {
		c.fail("%s: %v is not a port", key, f)
		return 0
	}
	return uint16(f)
}

// event returns a new event of the record with the 5-tuple nw.
func (c *rec) event(t time.Time, kind, action string, nw *vigil.Network, n int) proto.Event {
	return nsm.NewEvent(c.arena, t, kind, action, nw, c.flow, Product, n)
}

// oriented returns the record's 5-tuple client to server: EVE gives some
// records in the direction of the packet that completed them (a DNS
// answer comes from the server), so a tuple from the service port is
// turned around.
func (c *rec) oriented(servicePorts ...uint16) *vigil.Network {
	n := c.net
	if n == nil {
		return nil
	}
	for _, p := range servicePorts {
		if n.SrcPort == p && n.DstPort != p {
			return nsm.Reverse(n)
		}
	}
	return n
}

func (r *Reader) record(dst []proto.Event, l []byte) ([]proto.Event, error) {
	v, err := r.jp.ParseBytes(l)
	if err != nil {
		return dst, fmt.Errorf("not a JSON object: %v", err)
	}
	if v.Type() != fastjson.TypeObject {
		return dst, fmt.Errorf("not a JSON object")
	}
	c := &rec{v: v, arena: r.opt.Arena}
	typ, _ := c.str("event_type")
	conv, ok := converters[typ]
	if !ok {
		if c.err != nil {
			return dst, c.err
		}
		if typ == "" {
			return dst, fmt.Errorf("event_type: missing")
		}
		r.stats.Skipped++
		return dst, nil
	}
	t, ok := c.time("timestamp")
	if !ok && c.err == nil {
		return dst, fmt.Errorf("timestamp: missing")
	}
	c.t = t
	if fv := v.Get("flow_id"); fv != nil {
		id, err := fv.Uint64()
		if err != nil {
			return dst, fmt.Errorf("flow_id: not an unsigned integer")
		}
		c.flow = flowID(id)
	}
	src, ok1 := c.addr("src_ip")
	dstIP, ok2 := c.addr("dest_ip")
	if ok1 && ok2 {
		tr, _ := c.str("proto")
		c.net = &vigil.Network{Transport: transport(tr), SrcIP: src, SrcPort: c.port("src_port"), DstIP: dstIP, DstPort: c.port("dest_port")}
	}
	if c.err != nil {
		return dst, c.err
	}
	n := len(dst)
	dst = conv(c, dst)
	if c.err != nil {
		return dst[:n], c.err
	}
	return dst, nil
}

// transport names an EVE proto as the sensor does ("TCP" tcp, "IPv6-ICMP"
// ipv6-icmp, a number as it is).
func transport(p string) string {
	switch p {
	case "TCP":
		return "tcp"
	case "UDP":
		return "udp"
	case "ICMP":
		return "icmp"
	case "IPv6-ICMP":
		return "ipv6-icmp"
	}
	return strings.ToLower(p)
}

// flowID renders a Suricata flow_id as the sensor's 16 hex digits.
func flowID(id uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[id&15]
		id >>= 4
	}
	return string(b[:])
}

var converters = map[string]func(c *rec, dst []proto.Event) []proto.Event{
	"alert":   convAlert,
	"flow":    convFlow,
	"dns":     convDNS,
	"http":    convHTTP,
	"tls":     convTLS,
	"mqtt":    convMQTT,
	"modbus":  convModbus,
	"anomaly": convAnomaly,
}

// Severity maps Suricata's alert severity (1 high, 2 medium, 3 low, 4 and
// more informational) to Vigil's.
func Severity(s float64) vigil.Severity {
	switch {
	case s <= 1:
		return vigil.SeverityHigh
	case s == 2:
		return vigil.SeverityMedium
	case s == 3:
		return vigil.SeverityLow
	}
	return vigil.SeverityInfo
}

func convAlert(c *rec, dst []proto.Event) []proto.Event {
	ev := c.event(c.t, "alert", "alert", c.net, 10)
	f := &ev.Fields
	sid, ok := c.num("alert", "signature_id")
	if !ok {
		c.fail("alert.signature_id: missing")
		return dst
	}
	f.Set("alert.signature_id", sid)
	if g, ok := c.num("alert", "gid"); ok {
		f.Set("alert.gid", g)
	}
	if g, ok := c.num("alert", "rev"); ok {
		f.Set("alert.rev", g)
	}
	sig, _ := c.str("alert", "signature")
	f.SetStr("alert.signature", sig)
	if s, ok := c.str("alert", "category"); ok {
		f.SetStr("alert.category", s)
	}
	if s, ok := c.str("alert", "action"); ok {
		f.SetStr("alert.action", s)
	}
	sev, ok := c.num("alert", "severity")
	if !ok {
		sev = 3
	}
	f.Set("alert.severity", sev)
	ev.Severity = Severity(sev)
	if p, ok := c.str("app_proto"); ok {
		f.SetStr("flow.app_proto", nsm.AppProto(p))
	}
	return append(dst, ev)
}

// flagBits reads a tcp_flags value of EVE: hex digits, "1b".
func flagBits(s string) uint8 {
	n, err := strconv.ParseUint(s, 16, 8)
	if err != nil {
		return 0
	}
	return uint8(n)
}

var flowStates = map[string]string{
	"new": "syn_sent", "established": "established", "closed": "closed",
	"bypassed": "established", "local_bypassed": "established", "capture_bypassed": "established",
}

func convFlow(c *rec, dst []proto.Event) []proto.Event {
	if c.net == nil {
		c.fail("src_ip, dest_ip: missing")
		return dst
	}
	start, _ := c.time("flow", "start")
	end, hasEnd := c.time("flow", "end")
	if !hasEnd {
		end = c.t
	}
	if start.IsZero() {
		start = end
	}
	ev := c.event(end, "flow", "flow", c.net, 18)
	f := &ev.Fields
	// EVE's reasons: timeout, forced (a flow still open at the end of a
	// capture) and shutdown; a TCP connection closed before it timed out
	// ended.
	reason, _ := c.str("flow", "reason")
	tcpState, _ := c.str("tcp", "state")
	switch {
	case reason == "forced" || reason == "shutdown":
		reason = "capture_end"
	case reason == "timeout" && tcpState != "closed":
		reason = "timeout"
	default:
		reason = "end"
	}
	f.SetStr("flow.reason", reason)
	f.SetStr("flow.start", string(vigil.AppendTime(nil, start)))
	f.SetStr("flow.end", string(vigil.AppendTime(nil, end)))
	f.Set("flow.duration", end.Sub(start).Seconds())
	for _, k := range [...]string{"pkts_toserver", "pkts_toclient", "bytes_toserver", "bytes_toclient"} {
		if v, ok := c.num("flow", k); ok {
			f.Set("flow."+k, proto.Num(v))
		}
	}
	if p, ok := c.str("app_proto"); ok && p != "failed" {
		f.SetStr("flow.app_proto", nsm.AppProto(p))
	}
	if c.net.Transport == "tcp" {
		ts, _ := c.str("tcp", "tcp_flags_ts")
		tc, _ := c.str("tcp", "tcp_flags_tc")
		all, _ := c.str("tcp", "tcp_flags")
		a, b := flagBits(ts), flagBits(tc)
		f.SetStr("flow.tcp_flags_toserver", nsm.Flags(a))
		f.SetStr("flow.tcp_flags_toclient", nsm.Flags(b))
		f.SetStr("flow.tcp_flags", nsm.Flags(flagBits(all)|a|b))
		f.Set("flow.midstream", a&nsm.FlagSYN == 0)
		st := tcpState
		switch {
		case (a|b|flagBits(all))&nsm.FlagRST != 0:
			f.SetStr("flow.state", "reset")
		case st == "closed":
			f.SetStr("flow.state", "closed")
		case st == "fin_wait1" || st == "fin_wait2" || st == "closing" || st == "time_wait" || st == "last_ack" || st == "close_wait":
			f.SetStr("flow.state", "closing")
		case st == "syn_sent" || st == "syn_recv" || st == "none" && b&nsm.FlagSYN == 0:
			f.SetStr("flow.state", "syn_sent")
		default:
			if s, ok := c.str("flow", "state"); ok && flowStates[s] != "" {
				f.SetStr("flow.state", flowStates[s])
			} else {
				f.SetStr("flow.state", "established")
			}
		}
	} else {
		f.Set("flow.midstream", false)
	}
	if b, ok := c.boolean("flow", "alerted"); ok {
		f.Set("flow.alerted", b)
	}
	return append(dst, ev)
}

func convDNS(c *rec, dst []proto.Event) []proto.Event {
	typ, _ := c.str("dns", "type")
	response := typ == "answer" || typ == "response"
	if !response && typ != "query" && typ != "request" {
		c.fail("dns.type: %q is not query, request, answer or response", typ)
		return dst
	}
	client := c.oriented(53, 5353)
	nw, action := client, "query"
	if response {
		nw, action = nsm.Reverse(client), "response"
	}
	ev := c.event(c.t, "dns", action, nw, 12)
	f := &ev.Fields
	if id, ok := c.num("dns", "id"); ok {
		f.Set("dns.id", id)
	}
	name, hasName := c.str("dns", "rrname")
	qtype, _ := c.str("dns", "rrtype")
	if qs := c.array("dns", "queries"); len(qs) > 0 { // version 3
		if b := qs[0].GetStringBytes("rrname"); b != nil {
			name, hasName = string(b), true
		}
		qtype = string(qs[0].GetStringBytes("rrtype"))
	}
	if hasName {
		f.SetStr("dns.question.name", name)
		if qtype != "" {
			f.SetStr("dns.question.type", qtype)
		}
	}
	if op, ok := c.num("dns", "opcode"); ok {
		f.Set("dns.opcode", op)
	}
	var flags []string
	for _, fl := range [...]string{"aa", "tc", "rd", "ra", "ad", "cd"} {
		if b, _ := c.boolean("dns", fl); b {
			flags = append(flags, strings.ToUpper(fl))
		}
	}
	if flags == nil {
		flags = []string{}
	}
	f.Set("dns.header_flags", flags)
	if response {
		rcode, _ := c.str("dns", "rcode")
		if rcode != "" {
			f.SetStr("dns.response_code", rcode)
		}
		var data, types []string
		var ttl float64
		hasTTL := false
		for _, a := range c.array("dns", "answers") {
			d := a.GetStringBytes("rdata")
			if d == nil {
				continue
			}
			data = append(data, string(d))
			types = append(types, string(a.GetStringBytes("rrtype")))
			if !hasTTL && a.Get("ttl") != nil {
				ttl, hasTTL = a.GetFloat64("ttl"), true
			}
		}
		if data == nil { // version 2 answers in "grouped" only
			if g := c.v.GetObject("dns", "grouped"); g != nil {
				g.Visit(func(k []byte, v *fastjson.Value) {
					a, _ := v.Array()
					for _, e := range a {
						if b, err := e.StringBytes(); err == nil {
							data = append(data, string(b))
							types = append(types, string(k))
						}
					}
				})
			}
		}
		f.Set("dns.answers_count", float64(len(data)))
		if len(data) > 0 {
			f.Set("dns.answers.data", data)
			f.Set("dns.answers.type", types)
		}
		if hasTTL {
			f.Set("dns.answers.ttl", ttl)
		}
		if rcode == "NOERROR" {
			ev.Outcome = vigil.OutcomeSuccess
		} else {
			ev.Outcome = vigil.OutcomeFailure
		}
	}
	return append(dst, ev)
}

func convHTTP(c *rec, dst []proto.Event) []proto.Event {
	client := c.oriented(80, 8080, 8000)
	version := ""
	if p, ok := c.str("http", "protocol"); ok {
		version = strings.TrimPrefix(p, "HTTP/")
	}
	if m, ok := c.str("http", "http_method"); ok {
		ev := c.event(c.t, "http", "request", client, 10)
		f := &ev.Fields
		f.SetStr("http.method", m)
		if version != "" {
			f.SetStr("http.version", version)
		}
		if u, ok := c.str("http", "url"); ok {
			if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
				f.SetStr("http.url", u)
			}
			path, query, hasQ := strings.Cut(u, "?")
			f.SetStr("http.path", path)
			if hasQ {
				f.SetStr("http.query", query)
			}
		}
		if h, ok := c.str("http", "hostname"); ok {
			f.SetStr("http.host", h)
		}
		if ua, ok := c.str("http", "http_user_agent"); ok {
			f.SetStr("http.user_agent", ua)
		}
		dst = append(dst, ev)
	}
	if code, ok := c.num("http", "status"); ok {
		ev := c.event(c.t, "http", "response", nsm.Reverse(client), 8)
		f := &ev.Fields
		f.Set("http.status_code", code)
		if version != "" {
			f.SetStr("http.version", version)
		}
		if ct, ok := c.str("http", "http_content_type"); ok {
			f.SetStr("http.content_type", ct)
		}
		if n, ok := c.num("http", "length"); ok {
			f.Set("http.content_length", n)
		}
		if code < 400 {
			ev.Outcome = vigil.OutcomeSuccess
		} else {
			ev.Outcome = vigil.OutcomeFailure
		}
		dst = append(dst, ev)
	}
	return dst
}

func convTLS(c *rec, dst []proto.Event) []proto.Event {
	client := c.oriented(443, 8443, 8883, 5671, 5684)
	ch := c.event(c.t, "tls", "client_hello", client, 8)
	f := &ch.Fields
	if s, ok := c.str("tls", "sni"); ok {
		f.SetStr("tls.client.server_name", s)
	}
	if s, ok := c.str("tls", "ja3", "hash"); ok {
		f.SetStr("tls.client.ja3", s)
	}
	if s, ok := c.str("tls", "ja3", "string"); ok {
		f.SetStr("tls.client.ja3_string", s)
	}
	if s, ok := c.str("tls", "ja4"); ok {
		f.SetStr("tls.client.ja4", s)
	}
	dst = append(dst, ch)
	v, hasV := c.str("tls", "version")
	ja3s, hasS := c.str("tls", "ja3s", "hash")
	fp, hasF := c.str("tls", "fingerprint")
	serial, hasSerial := c.str("tls", "serial")
	if !hasV && !hasS && !hasF && !hasSerial {
		return dst
	}
	sh := c.event(c.t, "tls", "server_hello", nsm.Reverse(client), 8)
	f = &sh.Fields
	if hasV {
		if name, ok := nsm.TLSVersion(v); ok {
			f.SetStr("tls.version", name)
		} else {
			f.SetStr("tls.version", v)
		}
	}
	if hasS {
		f.SetStr("tls.server.ja3s", ja3s)
		if s, ok := c.str("tls", "ja3s", "string"); ok {
			f.SetStr("tls.server.ja3s_string", s)
		}
	}
	if s, ok := c.str("tls", "subject"); ok {
		f.SetStr("tls.server.subject", s)
	}
	if s, ok := c.str("tls", "issuerdn"); ok {
		f.SetStr("tls.server.issuer", s)
	}
	// The certificate, in ECS's forms: Suricata writes the SHA-1
	// fingerprint and the serial as colon-separated hex.
	if hasF {
		f.SetStr("tls.server.hash.sha1", strings.ToLower(strings.ReplaceAll(fp, ":", "")))
	}
	if hasSerial {
		f.SetStr("tls.server.x509.serial_number", strings.ToUpper(strings.ReplaceAll(serial, ":", "")))
	}
	return append(dst, sh)
}

// preview cuts a payload to PayloadPreview bytes, on a rune boundary.
func preview(s string) string {
	if len(s) <= PayloadPreview {
		return s
	}
	s = s[:PayloadPreview]
	for len(s) > 0 && s[len(s)-1]&0xc0 == 0x80 {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0xc0 {
		s = s[:len(s)-1]
	}
	return s
}

// mqttFromClient says which MQTT messages the client sends.
var mqttFromClient = map[string]bool{
	"connect": true, "subscribe": true, "unsubscribe": true, "pingreq": true, "disconnect": true,
	"connack": false, "suback": false, "unsuback": false, "pingresp": false,
}

// mqttOrder is the order of the messages of one EVE mqtt record (a
// transaction: a request and its answer).
var mqttOrder = [...]string{"connect", "connack", "publish", "puback", "pubrec", "pubrel", "pubcomp",
	"subscribe", "suback", "unsubscribe", "unsuback", "pingreq", "pingresp", "disconnect", "auth"}

func convMQTT(c *rec, dst []proto.Event) []proto.Event {
	client := c.oriented(1883, 8883)
	m := c.v.GetObject("mqtt")
	if m == nil {
		c.fail("mqtt: missing")
		return dst
	}
	var version float64
	if v, ok := c.num("mqtt", "connect", "protocol_version"); ok {
		version = v
	}
	var twins []proto.Event // twin events of shadow and twin updates, after the record's messages
	for _, typ := range mqttOrder {
		if m.Get(typ) == nil {
			continue
		}
		fromClient, known := mqttFromClient[typ]
		nw := client
		if known && !fromClient {
			nw = nsm.Reverse(client)
		}
		// publish and its acknowledgements go either way: EVE says not.
		ev := c.event(c.t, "mqtt", typ, nw, 16)
		f := &ev.Fields
		f.SetStr("mqtt.type", typ)
		for _, k := range [...]string{"qos", "message_id"} {
			if v, ok := c.num("mqtt", typ, k); ok {
				f.Set("mqtt."+k, v)
			}
		}
		for _, k := range [...]string{"retain", "dup"} {
			if v, ok := c.boolean("mqtt", typ, k); ok {
				f.Set("mqtt."+k, v)
			}
		}
		if version != 0 {
			f.Set("mqtt.protocol_version", version)
		}
		switch typ {
		case "connect":
			if s, ok := c.str("mqtt", typ, "protocol_string"); ok {
				f.SetStr("mqtt.protocol_name", s)
			}
			if s, ok := c.str("mqtt", typ, "client_id"); ok {
				f.SetStr("mqtt.client_id", s)
			}
			if s, ok := c.str("mqtt", typ, "username"); ok {
				f.SetStr("mqtt.username", s)
			}
			// The password is never copied: only that one was sent.
			if b, ok := c.boolean("mqtt", typ, "flags", "password"); ok {
				f.Set("mqtt.password_present", b)
			}
			for _, k := range [...]string{"username", "password", "will", "will_retain", "clean_session"} {
				if b, ok := c.boolean("mqtt", typ, "flags", k); ok {
					f.Set("mqtt.flags."+k, b)
				}
			}
			if s, ok := c.str("mqtt", typ, "will", "topic"); ok {
				f.SetStr("mqtt.will.topic", s)
			}
			if s, ok := c.str("mqtt", typ, "will", "message"); ok {
				f.SetStr("mqtt.will.message", preview(s))
			}
			if n, ok := c.num("mqtt", typ, "keepalive"); ok {
				f.Set("mqtt.keep_alive", n)
			}
		case "connack":
			if b, ok := c.boolean("mqtt", typ, "session_present"); ok {
				f.Set("mqtt.session_present", b)
			}
			code, ok := c.num("mqtt", typ, "return_code")
			if !ok {
				code, ok = c.num("mqtt", typ, "reason_code")
			}
			if ok {
				f.Set("mqtt.reason_code", code)
				if version != 5 {
					f.SetStr("mqtt.reason", nsm.MQTTConnackReason(int(code)))
				}
				ev.Outcome = vigil.OutcomeSuccess
				if code != 0 {
					ev.Outcome = vigil.OutcomeFailure
				}
			}
		case "publish":
			if s, ok := c.str("mqtt", typ, "topic"); ok {
				f.SetStr("mqtt.topic", s)
			}
			if s, ok := c.str("mqtt", typ, "message"); ok {
				p := preview(s)
				f.SetStr("mqtt.payload", p)
				// Suricata cuts long messages (truncated) and says how
				// many bytes it left out (skipped_length).
				skipped, _ := c.num("mqtt", typ, "skipped_length")
				f.Set("mqtt.payload_size", float64(len(s))+skipped)
				f.Set("mqtt.payload_truncated", len(p) < len(s) || skipped > 0)
				if t, _ := c.str("mqtt", typ, "topic"); strings.HasPrefix(t, "$") {
					if tp, ok := twin.ParseTopic(t); ok {
						// Its twin event, as the sensor makes it.
						tw := c.event(c.t, twin.Kind, "update", nw, 12)
						tw.Category = "configuration"
						tw.Fields.SetStr("mqtt.topic", t)
						tw.DeviceID = twin.SetFields(&tw.Fields, tp, "", []byte(s), skipped == 0)
						twins = append(twins, tw)
					}
				}
			}
		case "subscribe", "unsubscribe":
			var topics, qos []string
			for _, t := range c.array("mqtt", typ, "topics") {
				if t.Type() == fastjson.TypeString { // unsubscribe: plain topics
					b, _ := t.StringBytes()
					topics = append(topics, string(b))
					continue
				}
				topics = append(topics, string(t.GetStringBytes("topic")))
				if t.Get("qos") != nil {
					qos = append(qos, strconv.Itoa(t.GetInt("qos")))
				}
			}
			if topics != nil {
				f.Set("mqtt.topics", topics)
			}
			if qos != nil {
				f.Set("mqtt.topics_qos", qos)
			}
		case "suback", "unsuback":
			var codes []string
			for _, q := range c.array("mqtt", typ, "qos_granted") {
				codes = append(codes, strconv.Itoa(q.GetInt()))
			}
			for _, q := range c.array("mqtt", typ, "reason_codes") {
				codes = append(codes, strconv.Itoa(q.GetInt()))
			}
			if codes != nil {
				f.Set("mqtt.reason_codes", codes)
			}
		case "disconnect", "puback", "pubrec", "pubrel", "pubcomp", "auth":
			if n, ok := c.num("mqtt", typ, "reason_code"); ok {
				f.Set("mqtt.reason_code", n)
			}
		}
		dst = append(dst, ev)
	}
	return append(dst, twins...)
}

func convModbus(c *rec, dst []proto.Event) []proto.Event {
	client := c.oriented(502)
	for _, side := range [...]string{"request", "response"} {
		if c.v.Get("modbus", side) == nil {
			continue
		}
		nw := client
		if side == "response" {
			nw = nsm.Reverse(client)
		}
		ev := c.event(c.t, "modbus", side, nw, 16)
		f := &ev.Fields
		if n, ok := c.num("modbus", side, "transaction_id"); ok {
			f.Set("modbus.transaction_id", n)
		}
		if n, ok := c.num("modbus", side, "unit_id"); ok {
			f.Set("modbus.unit_id", n)
		}
		fc, ok := c.num("modbus", side, "function_raw")
		if ok && fc >= 0 && fc < 256 {
			nsm.SetModbusFunction(f, int(fc)&0x7f)
		}
		for _, k := range [...]string{"address", "quantity"} {
			if n, ok := c.num("modbus", side, "read", k); ok {
				f.Set("modbus."+k, n)
			} else if n, ok := c.num("modbus", side, "write", k); ok {
				f.Set("modbus."+k, n)
			}
		}
		if side == "response" {
			code, exc := c.num("modbus", side, "exception", "raw")
			f.Set("modbus.exception", exc)
			ev.Outcome = vigil.OutcomeSuccess
			if exc {
				ev.Outcome = vigil.OutcomeFailure
				f.Set("modbus.exception_code", code)
				f.SetStr("modbus.exception_name", nsm.ModbusException(int(code)))
			}
		}
		dst = append(dst, ev)
	}
	return dst
}

// anomalyKinds maps an EVE app_proto to the sensor's kind.
var anomalyKinds = map[string]string{
	"http": "http", "http1": "http", "dns": "dns", "tls": "tls", "mqtt": "mqtt", "modbus": "modbus",
	"dnp3": "dnp3", "ssh": "ssh",
}

func convAnomaly(c *rec, dst []proto.Event) []proto.Event {
	name, ok := c.str("anomaly", "event")
	if !ok {
		c.fail("anomaly.event: missing")
		return dst
	}
	app, _ := c.str("anomaly", "app_proto")
	if app == "" {
		app, _ = c.str("app_proto")
	}
	kind, known := anomalyKinds[app]
	layer, _ := c.str("anomaly", "layer")
	if !known {
		kind = "ip"
		if layer == "" {
			layer = "decoder"
		}
	}
	if layer == "" {
		layer = "proto_parser"
	}
	ev := c.event(c.t, kind, "anomaly", c.net, 6)
	ev.Severity = vigil.SeverityLow
	ev.Outcome = vigil.OutcomeFailure
	f := &ev.Fields
	f.SetStr("anomaly.event", strings.ToLower(name))
	f.SetStr("anomaly.layer", layer)
	f.SetStr("anomaly.app_proto", kind)
	if t, ok := c.str("anomaly", "type"); ok {
		f.SetStr("anomaly.detail", t)
	}
	return append(dst, ev)
}
