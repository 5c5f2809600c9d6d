package zeek

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/ingest/nsm"
	"github.com/vigil-iot/vigil/proto"
	"github.com/vigil-iot/vigil/proto/twin"
)

// Product is the observer.product of events converted from Zeek logs.
const Product = "zeek"

// PayloadPreview is how many bytes of an MQTT payload events keep, as the
// sensor's default.
const PayloadPreview = 256

// converter turns the records of one log path into events.
type converter struct {
	// required lists the fields a TSV log of the path must have.
	required []string
	// transport is the transport of logs without a proto field.
	transport string
	convert   func(g *getter, dst []proto.Event) []proto.Event
}

// Paths lists the Zeek log paths Vigil converts.
func Paths() []string {
	return []string{"conn", "dns", "http", "ssl", "ssh", "mqtt_connect", "mqtt_publish", "mqtt_subscribe", "modbus", "dnp3", "notice", "weird"}
}

var converters map[string]*converter

func init() {
	id := []string{"ts", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"}
	req := func(more ...string) []string { return append(append([]string{}, id...), more...) }
	converters = map[string]*converter{
		"conn":           {required: req("proto"), convert: convConn},
		"dns":            {required: req(), transport: "udp", convert: convDNS},
		"http":           {required: req(), transport: "tcp", convert: convHTTP},
		"ssl":            {required: req(), transport: "tcp", convert: convSSL},
		"ssh":            {required: req(), transport: "tcp", convert: convSSH},
		"mqtt_connect":   {required: req(), transport: "tcp", convert: convMQTTConnect},
		"mqtt_publish":   {required: req(), transport: "tcp", convert: convMQTTPublish},
		"mqtt_subscribe": {required: req(), transport: "tcp", convert: convMQTTSubscribe},
		"modbus":         {required: req("func"), transport: "tcp", convert: convModbus},
		"dnp3":           {required: req(), transport: "tcp", convert: convDNP3},
		"notice":         {required: []string{"ts", "note"}, convert: convNotice},
		"weird":          {required: []string{"ts", "name"}, convert: convWeird},
	}
}

// require returns the first required field the TSV header r lacks.
func (c *converter) require(r *record) string {
	for _, n := range c.required {
		if !r.has(n) {
			return n
		}
	}
	return ""
}

// run converts one record.
func (c *converter) run(dst []proto.Event, r *record, arena *proto.FieldArena) ([]proto.Event, error) {
	g := getter{r: r, arena: arena, transport: c.transport}
	n := len(dst)
	dst = c.convert(&g, dst)
	if g.err != nil {
		return dst[:n], g.err
	}
	return dst, nil
}

// getter reads fields of a record, keeping the first error.
type getter struct {
	r         *record
	arena     *proto.FieldArena
	transport string
	err       error
	// What the record's conn id and time said (conn()).
	t   time.Time
	uid string
	net *vigil.Network
}

func (g *getter) fail(err error) {
	if g.err == nil && err != nil {
		g.err = err
	}
}

func (g *getter) str(name string) (string, bool) {
	s, ok, err := g.r.str(name)
	g.fail(err)
	return s, ok
}

func (g *getter) list(name string) ([]string, bool) {
	s, ok, err := g.r.list(name)
	g.fail(err)
	return s, ok
}

func (g *getter) num(name string) (float64, bool) {
	f, ok, err := g.r.num(name)
	g.fail(err)
	return f, ok
}

// maxDuration bounds a connection's duration or a round trip time, in
// seconds (ten years).
const maxDuration = 10 * 365 * 24 * 3600

// seconds reads an interval field: 0 to maxDuration seconds after t, in
// the years an event can carry.
func (g *getter) seconds(name string, t time.Time) (float64, bool) {
	v, ok := g.num(name)
	if !ok {
		return 0, false
	}
	if v < 0 || v > maxDuration || t.Add(time.Duration(v*1e9)).Year() > 9999 {
		g.fail(fmt.Errorf("field %s: %v is out of range", name, v))
		return 0, false
	}
	return v, true
}

func (g *getter) boolean(name string) (bool, bool) {
	b, ok, err := g.r.boolean(name)
	g.fail(err)
	return b, ok
}

// conn reads ts, uid and the connection's id (originator to responder);
// net is nil when the record has no id.
func (g *getter) conn() {
	t, ok, err := g.r.time("ts")
	g.fail(err)
	if !ok && err == nil {
		g.fail(fmt.Errorf("field ts: unset"))
	}
	g.t = t
	g.uid, _ = g.str("uid")
	oh, ok1, err := g.r.addr("id.orig_h")
	g.fail(err)
	rh, ok2, err := g.r.addr("id.resp_h")
	g.fail(err)
	if !ok1 || !ok2 {
		return
	}
	op, err := g.r.port("id.orig_p")
	g.fail(err)
	rp, err := g.r.port("id.resp_p")
	g.fail(err)
	tr := g.transport
	if p, ok := g.str("proto"); ok && p != "" && p != "unknown_transport" {
		tr = p
	}
	g.net = &vigil.Network{Transport: tr, SrcIP: oh, SrcPort: op, DstIP: rh, DstPort: rp}
}

// event returns a new event of the record's connection, sent by the
// originator when fromOrig, with room for n fields.
func (g *getter) event(t time.Time, kind, action string, fromOrig bool, n int) proto.Event {
	nw := g.net
	if !fromOrig {
		nw = nsm.Reverse(nw)
	}
	return nsm.NewEvent(g.arena, t, kind, action, nw, g.uid, Product, n)
}

// connStates maps Zeek's conn_state to the sensor's flow.state and
// flow.reason.
var connStates = map[string][2]string{
	"S0":     {"syn_sent", "timeout"},
	"S1":     {"established", "timeout"},
	"SF":     {"closed", "end"},
	"REJ":    {"reset", "end"},
	"S2":     {"closing", "timeout"},
	"S3":     {"closing", "timeout"},
	"RSTO":   {"reset", "end"},
	"RSTR":   {"reset", "end"},
	"RSTOS0": {"reset", "end"},
	"RSTRH":  {"reset", "end"},
	"SH":     {"closing", "timeout"},
	"SHR":    {"closing", "timeout"},
	"OTH":    {"established", "timeout"},
}

// historyFlags returns the TCP flags each side sent, from Zeek's history
// (upper case: the originator). Data ('D') counts as PSH,ACK: every stack
// pushes what an application writes, which is what the sensor's
// flow.tcp_flags_toserver tells.
func historyFlags(h string) (orig, resp uint8) {
	for i := 0; i < len(h); i++ {
		c := h[i]
		var f uint8
		switch c | 0x20 {
		case 's':
			f = nsm.FlagSYN
		case 'h':
			f = nsm.FlagSYN | nsm.FlagACK
		case 'a':
			f = nsm.FlagACK
		case 'd':
			f = nsm.FlagPSH | nsm.FlagACK
		case 'f':
			f = nsm.FlagFIN
		case 'r':
			f = nsm.FlagRST
		}
		if c >= 'A' && c <= 'Z' {
			orig |= f
		} else {
			resp |= f
		}
	}
	return
}

func convConn(g *getter, dst []proto.Event) []proto.Event {
	g.conn()
	if g.net == nil || g.err != nil {
		return dst
	}
	dur, _ := g.seconds("duration", g.t)
	if g.err != nil {
		return dst
	}
	end := g.t.Add(time.Duration(dur * 1e9))
	state, _ := g.str("conn_state")
	st := connStates[state]
	reason := st[1]
	if reason == "" {
		reason = "end"
	}
	num := func(name string) any {
		if v, ok := g.num(name); ok {
			return proto.Num(v)
		}
		return nil
	}
	pktsS, pktsC := num("orig_pkts"), num("resp_pkts")
	bytesS := num("orig_ip_bytes")
	if bytesS == nil {
		bytesS = num("orig_bytes")
	}
	bytesC := num("resp_ip_bytes")
	if bytesC == nil {
		bytesC = num("resp_bytes")
	}
	service, _ := g.str("service")
	hist, _ := g.str("history")
	label, hasLabel := g.str("label")
	detailed, hasDetailed := g.str("detailed-label")
	// Both times in one string, one allocation.
	var buf [72]byte
	tb := vigil.AppendTime(buf[:0], g.t)
	n := len(tb)
	times := string(vigil.AppendTime(tb, end))

	// The fields in the order of their names, which makes sorting them
	// for the JSON encoding (vigil.Event.AppendJSONFields) cheap.
	ev := proto.Event{Event: vigil.Event{Time: end, Source: nsm.Source, Kind: "flow", Category: "network", Action: "flow", Network: g.net}}
	if g.arena != nil {
		ev.Fields = g.arena.Get(22)
	} else {
		ev.Fields = make(proto.Fields, 0, 22)
	}
	f := &ev.Fields
	if service != "" {
		f.SetStr("flow.app_proto", nsm.AppProto(service))
	}
	if bytesC != nil {
		f.Set("flow.bytes_toclient", bytesC)
	}
	if bytesS != nil {
		f.Set("flow.bytes_toserver", bytesS)
	}
	f.Set("flow.duration", proto.Num(dur))
	f.SetStr("flow.end", times[n:])
	if g.uid != "" {
		f.SetStr("flow.id", g.uid)
	}
	tcp := g.net.Transport == "tcp"
	f.Set("flow.midstream", tcp && hist != "" && !strings.ContainsAny(hist, "Ss"))
	if pktsC != nil {
		f.Set("flow.pkts_toclient", pktsC)
	}
	if pktsS != nil {
		f.Set("flow.pkts_toserver", pktsS)
	}
	f.SetStr("flow.reason", reason)
	f.SetStr("flow.start", times[:n])
	if tcp {
		if st[0] != "" {
			f.SetStr("flow.state", st[0])
		}
		o, r := historyFlags(hist)
		f.SetStr("flow.tcp_flags", nsm.Flags(o|r))
		f.SetStr("flow.tcp_flags_toclient", nsm.Flags(r))
		f.SetStr("flow.tcp_flags_toserver", nsm.Flags(o))
	}
	f.SetStr(nsm.FieldProduct, Product)
	if state != "" {
		f.SetStr("zeek.conn_state", state)
	}
	// The ground truth of labelled data sets (IoT-23), kept for
	// evaluation; no rule reads it.
	if hasDetailed {
		f.SetStr("zeek.detailed_label", detailed)
	}
	if hist != "" {
		f.SetStr("zeek.history", hist)
	}
	if hasLabel {
		f.SetStr("zeek.label", label)
	}
	return append(dst, ev)
}

func convDNS(g *getter, dst []proto.Event) []proto.Event {
	g.conn()
	if g.net == nil || g.err != nil {
		return dst
	}
	id, hasID := g.num("trans_id")
	q, hasQ := g.str("query")
	qtype, _ := g.str("qtype_name")
	if qtype == "" {
		if n, ok := g.num("qtype"); ok {
			qtype = "TYPE" + strconv.Itoa(int(n))
		}
	}
	qclass, hasClass := g.num("qclass")
	opcode, hasOp := g.num("opcode")
	common := func(f *proto.Fields) {
		if hasID {
			f.Set("dns.id", id)
		}
		if hasOp {
			f.Set("dns.opcode", opcode)
		}
		if hasQ {
			f.SetStr("dns.question.name", q)
			if qtype != "" {
				f.SetStr("dns.question.type", qtype)
			}
			if hasClass {
				f.Set("dns.question.class", qclass)
			}
		}
	}
	flags := func(names ...string) []string {
		var out []string
		for _, n := range names {
			if b, _ := g.boolean(n); b {
				out = append(out, n)
			}
		}
		return out
	}
	qev := g.event(g.t, "dns", "query", true, 8)
	common(&qev.Fields)
	qev.Fields.Set("dns.header_flags", orEmpty(flags("RD")))
	dst = append(dst, qev)
	rcode, hasR := g.str("rcode_name")
	if !hasR {
		if n, ok := g.num("rcode"); ok {
			rcode, hasR = "RCODE"+strconv.Itoa(int(n)), true
		}
	}
	if !hasR {
		return dst
	}
	t := g.t
	if rtt, ok := g.seconds("rtt", t); ok {
		t = t.Add(time.Duration(rtt * 1e9))
	}
	rev := g.event(t, "dns", "response", false, 12)
	f := &rev.Fields
	common(f)
	f.Set("dns.header_flags", orEmpty(flags("AA", "TC", "RD", "RA")))
	f.SetStr("dns.response_code", rcode)
	answers, _ := g.list("answers")
	f.Set("dns.answers_count", float64(len(answers)))
	if len(answers) > 0 {
		f.Set("dns.answers.data", answers)
	}
	if ttls, _ := g.list("TTLs"); len(ttls) > 0 {
		if v, err := strconv.ParseFloat(ttls[0], 64); err == nil {
			f.Set("dns.answers.ttl", math.Round(v))
		}
	}
	if rcode == "NOERROR" {
		rev.Outcome = vigil.OutcomeSuccess
	} else {
		rev.Outcome = vigil.OutcomeFailure
	}
	return append(dst, rev)
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func convHTTP(g *getter, dst []proto.Event) []proto.Event {
	g.conn()
	if g.net == nil || g.err != nil {
		return dst
	}
	version, hasV := g.str("version")
	if m, ok := g.str("method"); ok {
		ev := g.event(g.t, "http", "request", true, 10)
		f := &ev.Fields
		f.SetStr("http.method", m)
		if hasV {
			f.SetStr("http.version", version)
		}
		if uri, ok := g.str("uri"); ok {
			if strings.HasPrefix(uri, "http://") || strings.HasPrefix(uri, "https://") {
				f.SetStr("http.url", uri)
			}
			path, query, hasQ := strings.Cut(uri, "?")
			f.SetStr("http.path", path)
			if hasQ {
				f.SetStr("http.query", query)
			}
		}
		if h, ok := g.str("host"); ok {
			f.SetStr("http.host", h)
		}
		if ua, ok := g.str("user_agent"); ok {
			f.SetStr("http.user_agent", ua)
		}
		if n, ok := g.num("request_body_len"); ok && n > 0 {
			f.Set("http.content_length", n)
		}
		// Zeek logs the user of Basic authentication (and its password,
		// which is never copied).
		if u, ok := g.str("username"); ok && u != "" {
			f.SetStr("http.authorization_scheme", "Basic")
		}
		dst = append(dst, ev)
	}
	if code, ok := g.num("status_code"); ok {
		ev := g.event(g.t, "http", "response", false, 6)
		f := &ev.Fields
		f.Set("http.status_code", code)
		if s, ok := g.str("status_msg"); ok {
			f.SetStr("http.status", s)
		}
		if hasV {
			f.SetStr("http.version", version)
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

func convSSL(g *getter, dst []proto.Event) []proto.Event {
	v, hasV := g.str("version")
	if strings.HasPrefix(v, "DTLS") {
		g.transport = "udp"
	}
	g.conn()
	if g.net == nil || g.err != nil {
		return dst
	}
	ch := g.event(g.t, "tls", "client_hello", true, 6)
	if sni, ok := g.str("server_name"); ok {
		ch.Fields.SetStr("tls.client.server_name", sni)
	}
	if s, ok := g.str("ja3"); ok {
		ch.Fields.SetStr("tls.client.ja3", s)
	}
	if s, ok := g.str("ja4"); ok {
		ch.Fields.SetStr("tls.client.ja4", s)
	}
	dst = append(dst, ch)
	cipher, hasC := g.str("cipher")
	if !hasV && !hasC {
		return dst
	}
	sh := g.event(g.t, "tls", "server_hello", false, 6)
	f := &sh.Fields
	if hasV {
		if name, ok := nsm.TLSVersion(v); ok {
			f.SetStr("tls.version", name)
		} else {
			f.SetStr("tls.version", v)
		}
	}
	if hasC {
		if code, ok := nsm.TLSCipher(cipher); ok {
			f.SetStr("tls.cipher", code)
		}
		f.SetStr("tls.cipher_name", cipher)
	}
	if s, ok := g.str("ja3s"); ok {
		f.SetStr("tls.server.ja3s", s)
	}
	if b, ok := g.boolean("established"); ok {
		f.Set("tls.established", b)
	}
	// The server's certificate chain, leaf first, by fingerprint (SHA-256
	// in Zeek's default ssl.log).
	if fps, ok := g.list("cert_chain_fps"); ok && len(fps) > 0 && len(fps[0]) == 64 {
		f.SetStr("tls.server.hash.sha256", strings.ToLower(fps[0]))
	}
	return append(dst, sh)
}

func convSSH(g *getter, dst []proto.Event) []proto.Event {
	g.conn()
	if g.net == nil || g.err != nil {
		return dst
	}
	ev := g.event(g.t, "ssh", "session", true, 12)
	f := &ev.Fields
	if v, ok := g.num("version"); ok {
		f.Set("ssh.version", v)
	}
	ev.Outcome = vigil.OutcomeUnknown
	if b, ok := g.boolean("auth_success"); ok {
		f.Set("ssh.auth_success", b)
		ev.Outcome = vigil.OutcomeFailure
		if b {
			ev.Outcome = vigil.OutcomeSuccess
		}
	}
	if n, ok := g.num("auth_attempts"); ok {
		f.Set("ssh.auth_attempts", n)
	}
	for _, k := range [...]string{"direction", "client", "server", "cipher_alg", "mac_alg", "compression_alg", "kex_alg", "host_key_alg", "host_key", "host_key_fingerprint"} {
		if s, ok := g.str(k); ok {
			if k == "host_key_fingerprint" {
				k = "host_key"
			}
			f.SetStr("ssh."+k, s)
		}
	}
	return append(dst, ev)
}

// mqttStatus returns the CONNACK return code of Zeek's connect_status.
func mqttStatus(s string) (int, bool) {
	switch s {
	case "Connection Accepted":
		return 0, true
	case "Refused: unacceptable protocol version":
		return 1, true
	case "Refused: identifier rejected":
		return 2, true
	case "Refused: server unavailable":
		return 3, true
	case "Refused: bad user name or password":
		return 4, true
	case "Refused: not authorized":
		return 5, true
	}
	return 0, false
}

func setMQTTCommon(f *proto.Fields, typ string) {
	f.SetStr("mqtt.type", typ)
}

func convMQTTConnect(g *getter, dst []proto.Event) []proto.Event {
	g.conn()
	if g.net == nil || g.err != nil {
		return dst
	}
	ev := g.event(g.t, "mqtt", "connect", true, 10)
	f := &ev.Fields
	setMQTTCommon(f, "connect")
	name, _ := g.str("proto_name")
	if name != "" {
		f.SetStr("mqtt.protocol_name", name)
	}
	var level float64
	var hasLevel bool
	if v, ok := g.str("proto_version"); ok {
		if level, hasLevel = nsm.MQTTVersion(v); hasLevel {
			f.Set("mqtt.protocol_version", level)
		}
	}
	if c, ok := g.str("client_id"); ok {
		f.SetStr("mqtt.client_id", c)
	}
	wt, hasWill := g.str("will_topic")
	f.Set("mqtt.flags.will", hasWill)
	if hasWill {
		f.SetStr("mqtt.will.topic", wt)
		if p, ok := g.str("will_payload"); ok {
			f.SetStr("mqtt.will.message", preview(p))
			f.Set("mqtt.will.size", float64(len(p)))
		}
	}
	dst = append(dst, ev)
	status, ok := g.str("connect_status")
	if !ok {
		return dst
	}
	ack := g.event(g.t, "mqtt", "connack", false, 6)
	af := &ack.Fields
	setMQTTCommon(af, "connack")
	if hasLevel {
		af.Set("mqtt.protocol_version", level)
	}
	code, known := mqttStatus(status)
	if known {
		af.Set("mqtt.reason_code", float64(code))
		af.SetStr("mqtt.reason", nsm.MQTTConnackReason(code))
	} else {
		af.SetStr("mqtt.reason", status)
	}
	if known && code == 0 {
		ack.Outcome = vigil.OutcomeSuccess
	} else {
		ack.Outcome = vigil.OutcomeFailure
	}
	return append(dst, ack)
}

// preview cuts a payload to PayloadPreview bytes, on a rune boundary.
func preview(s string) string {
	if len(s) <= PayloadPreview {
		return s
	}
	s = s[:PayloadPreview]
	for i := 0; i < 3 && len(s) > 0 && s[len(s)-1]&0xc0 == 0x80; i++ {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0xc0 {
		s = s[:len(s)-1]
	}
	return s
}

func mqttQoS(s string) (float64, bool) {
	switch s {
	case "at most once", "0":
		return 0, true
	case "at least once", "1":
		return 1, true
	case "exactly once", "2":
		return 2, true
	}
	return 0, false
}

func convMQTTPublish(g *getter, dst []proto.Event) []proto.Event {
	g.conn()
	if g.net == nil || g.err != nil {
		return dst
	}
	fromClient, _ := g.boolean("from_client")
	ev := g.event(g.t, "mqtt", "publish", fromClient, 10)
	f := &ev.Fields
	setMQTTCommon(f, "publish")
	if s, ok := g.str("qos"); ok {
		if q, ok := mqttQoS(s); ok {
			f.Set("mqtt.qos", q)
		}
	}
	if b, ok := g.boolean("retain"); ok {
		f.Set("mqtt.retain", b)
	}
	if t, ok := g.str("topic"); ok {
		f.SetStr("mqtt.topic", t)
	}
	p, hasP := g.str("payload")
	size, hasSize := g.num("payload_len")
	if !hasSize && hasP {
		size, hasSize = float64(len(p)), true
	}
	if hasP {
		pv := preview(p)
		f.SetStr("mqtt.payload", pv)
		f.Set("mqtt.payload_truncated", hasSize && float64(len(pv)) < size)
	}
	if hasSize {
		f.Set("mqtt.payload_size", size)
	}
	dst = append(dst, ev)
	// A shadow or twin update: its twin event, as the sensor makes it
	// (Zeek's payload is cut at MQTT::max_payload_size, 100 bytes by
	// default: a longer document gives the numbers before the cut).
	if t, ok := g.str("topic"); ok && hasP && strings.HasPrefix(t, "$") {
		if tp, ok := twin.ParseTopic(t); ok {
			tw := g.event(g.t, twin.Kind, "update", fromClient, 12)
			tw.Category = "configuration"
			tw.Fields.SetStr("mqtt.topic", t)
			tw.DeviceID = twin.SetFields(&tw.Fields, tp, "", []byte(p), !hasSize || float64(len(p)) >= size)
			dst = append(dst, tw)
		}
	}
	return dst
}

func convMQTTSubscribe(g *getter, dst []proto.Event) []proto.Event {
	g.conn()
	if g.net == nil || g.err != nil {
		return dst
	}
	action, _ := g.str("action")
	typ := "subscribe"
	if strings.HasSuffix(strings.ToLower(action), "unsubscribe") {
		typ = "unsubscribe"
	}
	ev := g.event(g.t, "mqtt", typ, true, 6)
	f := &ev.Fields
	setMQTTCommon(f, typ)
	if ts, ok := g.list("topics"); ok {
		f.Set("mqtt.topics", ts)
	}
	if qs, ok := g.list("qos_levels"); ok && typ == "subscribe" {
		f.Set("mqtt.topics_qos", qs)
	}
	dst = append(dst, ev)
	if ack, _ := g.boolean("ack"); ack {
		ackType := "suback"
		if typ == "unsubscribe" {
			ackType = "unsuback"
		}
		a := g.event(g.t, "mqtt", ackType, false, 4)
		setMQTTCommon(&a.Fields, a.Action)
		if q, ok := g.num("granted_qos_level"); ok {
			a.Fields.Set("mqtt.reason_codes", []string{strconv.Itoa(int(q))})
		}
		dst = append(dst, a)
	}
	return dst
}

func convModbus(g *getter, dst []proto.Event) []proto.Event {
	g.conn()
	if g.net == nil || g.err != nil {
		return dst
	}
	fn, _ := g.str("func")
	exc, hasExc := g.str("exception")
	pdu, _ := g.str("pdu_type")
	resp := pdu == "RESP" || hasExc
	action := "request"
	if resp {
		action = "response"
	}
	ev := g.event(g.t, "modbus", action, !resp, 14)
	f := &ev.Fields
	if n, ok := g.num("tid"); ok {
		f.Set("modbus.transaction_id", n)
	}
	if n, ok := g.num("unit"); ok {
		f.Set("modbus.unit_id", n)
	}
	fc, ok := nsm.ModbusCode(strings.TrimSuffix(fn, "_EXCEPTION"))
	if !ok {
		if n, err := strconv.Atoi(strings.TrimPrefix(fn, "unknown-")); err == nil && n >= 0 && n < 256 {
			fc, ok = n&0x7f, true
		}
	}
	if ok {
		nsm.SetModbusFunction(f, fc)
	} else if fn != "" {
		f.SetStr("modbus.function", strings.ToLower(fn))
	}
	if resp {
		f.Set("modbus.exception", hasExc)
		ev.Outcome = vigil.OutcomeSuccess
		if hasExc {
			ev.Outcome = vigil.OutcomeFailure
			name := strings.ToLower(exc)
			f.SetStr("modbus.exception_name", name)
			for c := 1; c <= 11; c++ {
				if nsm.ModbusException(c) == name {
					f.Set("modbus.exception_code", float64(c))
				}
			}
		}
	}
	return append(dst, ev)
}

func convDNP3(g *getter, dst []proto.Event) []proto.Event {
	g.conn()
	if g.net == nil || g.err != nil {
		return dst
	}
	if fc, ok := g.str("fc_request"); ok {
		ev := g.event(g.t, "dnp3", "request", true, 4)
		ev.Fields.SetStr("dnp3.function", strings.ToLower(fc))
		dst = append(dst, ev)
	}
	if fc, ok := g.str("fc_reply"); ok {
		ev := g.event(g.t, "dnp3", "response", false, 4)
		ev.Fields.SetStr("dnp3.function", strings.ToLower(fc))
		if n, ok := g.num("iin"); ok {
			ev.Fields.Set("dnp3.iin", n)
		}
		dst = append(dst, ev)
	}
	return dst
}

// convNotice makes an IDS alert event (kind alert, action notice) of a
// Zeek notice, which Vigil's ids detector raises as an alert.
func convNotice(g *getter, dst []proto.Event) []proto.Event {
	g.conn()
	if g.err != nil {
		return dst
	}
	if g.net == nil {
		// Notices about a host pair without a connection: src and dst.
		src, ok1, err := g.r.addr("src")
		g.fail(err)
		dstIP, ok2, err := g.r.addr("dst")
		g.fail(err)
		if ok1 || ok2 {
			p, err := g.r.port("p")
			g.fail(err)
			g.net = &vigil.Network{Transport: g.transport, SrcIP: src, DstIP: dstIP, DstPort: p}
			if tr, ok := g.str("proto"); ok {
				g.net.Transport = tr
			}
		}
	}
	ev := g.event(g.t, "alert", "notice", true, 8)
	ev.Severity = vigil.SeverityMedium
	f := &ev.Fields
	note, _ := g.str("note")
	f.SetStr("alert.signature", note)
	if m, ok := g.str("msg"); ok {
		f.SetStr("alert.message", m)
	}
	if s, ok := g.str("sub"); ok {
		f.SetStr("alert.detail", s)
	}
	if cat, _, ok := strings.Cut(note, "::"); ok {
		f.SetStr("alert.category", cat)
	}
	return append(dst, ev)
}

// weirdKinds maps the source of a Zeek weird to the sensor's kind.
var weirdKinds = map[string]string{
	"http": "http", "dns": "dns", "ssl": "tls", "mqtt": "mqtt", "modbus": "modbus",
	"ssh": "ssh", "dnp3": "dnp3", "dnp3_tcp": "dnp3", "dnp3_udp": "dnp3",
}

// convWeird makes a protocol anomaly of a Zeek weird: kind the protocol
// that raised it (ip when Zeek does not say or it is not one of the
// sensor's), anomaly.event Zeek's name for it.
func convWeird(g *getter, dst []proto.Event) []proto.Event {
	g.conn()
	if g.err != nil {
		return dst
	}
	src, _ := g.str("source")
	kind, ok := weirdKinds[strings.ToLower(src)]
	layer := "proto_parser"
	if !ok {
		kind, layer = "ip", "decoder"
	}
	ev := g.event(g.t, kind, "anomaly", true, 6)
	ev.Severity = vigil.SeverityLow
	ev.Outcome = vigil.OutcomeFailure
	f := &ev.Fields
	name, _ := g.str("name")
	f.SetStr("anomaly.event", name)
	f.SetStr("anomaly.layer", layer)
	f.SetStr("anomaly.app_proto", kind)
	if a, ok := g.str("addl"); ok && a != "" {
		f.SetStr("anomaly.detail", a)
	}
	return append(dst, ev)
}
