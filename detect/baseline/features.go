package baseline

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/vigil-iot/vigil"
)

// family is a kind of learned value: a peer, a port, a Modbus writer, ...
type family uint8

const (
	famPeerOut      family = iota // a peer the device sends to (destination address)
	famPeerIn                     // a peer that sends to the device (source address)
	famPortDst                    // a destination port the device connects to (transport/port)
	famService                    // a port the device is reached on (transport/port)
	famListen                     // a port the device listens on (agent)
	famProtocol                   // an application protocol the device speaks
	famModbusMaster               // a source of Modbus requests to the device
	famModbusWriter               // a source of Modbus writes (or diagnostics) to the device
	famModbusFunc                 // a Modbus function code the device receives
	famModbusUnit                 // a Modbus unit id the device is addressed as
	famModbusRange                // a Modbus table and 64-register block the device is read or written at
	famMQTTClient                 // an MQTT client id the device connects with
	famMQTTPub                    // an MQTT topic the device publishes to
	famMQTTSub                    // an MQTT topic filter the device subscribes to
	famCoAP                       // a CoAP method and path the device is asked for
	famDNS                        // a DNS name the device queries
	famProcess                    // a process the device runs (agent)
	famUser                       // a user that logs in to the device (agent)
	famAnomaly                    // a kind of malformed traffic the device sends (sensor parse errors)
	famMQTTQoS                    // an MQTT QoS level the device publishes or subscribes with
	famAMQPPub                    // an AMQP exchange and routing key (or 1.0 address) the device publishes to
	famAMQPSub                    // an AMQP queue (or 1.0 address) the device consumes from or binds
	famDDSPub                     // a DDS topic the device announces a writer of (RTPS SEDP)
	famDDSSub                     // a DDS topic the device announces a reader of (RTPS SEDP)
	famSoftware                   // an installed package and version, firmware or OS version (agent inventory; kept in softSet, host.go)
	numFam
)

// famInfo names a family and says how it is reported.
type famInfo struct {
	name  string         // the feature, in alerts (baseline.feature)
	field string         // the enrichment field set on the event
	title string         // "New <title>" in alert titles
	sev   vigil.Severity // base severity of a novelty
}

var families = [numFam]famInfo{
	famPeerOut:      {"peer.out", "baseline.new_peer", "outbound peer", vigil.SeverityLow},
	famPeerIn:       {"peer.in", "baseline.new_peer", "inbound peer", vigil.SeverityLow},
	famPortDst:      {"port.destination", "baseline.new_port", "destination port", vigil.SeverityMedium},
	famService:      {"port.service", "baseline.new_port", "service port", vigil.SeverityMedium},
	famListen:       {"port.listen", "baseline.new_port", "listening port", vigil.SeverityMedium},
	famProtocol:     {"protocol", "baseline.new_protocol", "protocol", vigil.SeverityMedium},
	famModbusMaster: {"modbus.master", "baseline.new_master", "Modbus master", vigil.SeverityMedium},
	famModbusWriter: {"modbus.writer", "baseline.new_writer", "Modbus writer", vigil.SeverityHigh},
	famModbusFunc:   {"modbus.function_code", "baseline.new_function", "Modbus function code", vigil.SeverityMedium},
	famModbusUnit:   {"modbus.unit_id", "baseline.new_unit", "Modbus unit id", vigil.SeverityLow},
	famModbusRange:  {"modbus.register_range", "baseline.new_range", "Modbus register range", vigil.SeverityLow},
	famMQTTClient:   {"mqtt.client_id", "baseline.new_client_id", "MQTT client id", vigil.SeverityLow},
	famMQTTPub:      {"mqtt.topic.publish", "baseline.new_topic", "MQTT topic published", vigil.SeverityLow},
	famMQTTSub:      {"mqtt.topic.subscribe", "baseline.new_topic", "MQTT topic subscribed", vigil.SeverityLow},
	famCoAP:         {"coap.resource", "baseline.new_resource", "CoAP resource", vigil.SeverityLow},
	famDNS:          {"dns.name", "baseline.new_name", "DNS name", vigil.SeverityLow},
	famProcess:      {"process", "baseline.new_process", "process", vigil.SeverityLow},
	famUser:         {"user", "baseline.new_user", "user", vigil.SeverityMedium},
	famAnomaly:      {"protocol.anomaly", "baseline.new_anomaly", "protocol anomaly", vigil.SeverityMedium},
	famMQTTQoS:      {"mqtt.qos", "baseline.new_qos", "MQTT QoS", vigil.SeverityLow},
	famAMQPPub:      {"amqp.publish", "baseline.new_topic", "AMQP publish target", vigil.SeverityLow},
	famAMQPSub:      {"amqp.consume", "baseline.new_topic", "AMQP consume source", vigil.SeverityLow},
	famDDSPub:       {"dds.topic.publish", "baseline.new_topic", "DDS topic published", vigil.SeverityLow},
	famDDSSub:       {"dds.topic.subscribe", "baseline.new_topic", "DDS topic subscribed", vigil.SeverityLow},
	famSoftware:     {"software", "baseline.new_software", "software", vigil.SeverityMedium},
}

// metric is a rate counted per window.
type metric uint8

const (
	metMsgs      metric = iota // protocol messages and security events
	metConns                   // connections (flow starts, MQTT connects and acks, agent connections)
	metBytes                   // bytes (flow bytes, MQTT and CoAP payloads)
	metAuthFail                // failed authentications (auth failures, refused MQTT connects)
	metWrites                  // writes (Modbus writes, CoAP PUT/POST/DELETE)
	metIdle                    // TCP connections that carried no data from the client (half-open or held idle)
	metMalformed               // malformed traffic (the sensor's parse errors)
	numMetric
)

var metrics = [numMetric]metricParams{
	metMsgs:      {name: "messages", minCount: 20, minSpread: 3},
	metConns:     {name: "connections", minCount: 10, minSpread: 2},
	metBytes:     {name: "bytes", minCount: 64 << 10, minSpread: 4 << 10},
	metAuthFail:  {name: "failed_auths", minCount: 5, minSpread: 1},
	metWrites:    {name: "writes", minCount: 10, minSpread: 2},
	metIdle:      {name: "idle_connections", minCount: 10, minSpread: 2},
	metMalformed: {name: "malformed", minCount: 5, minSpread: 1},
}

// rareMetric reports whether a metric counts what normal traffic seldom
// shows (failed authentications, connections that carry nothing, parse
// errors, writes): its rate alerts are one level higher.
func rareMetric(m metric) bool {
	return m == metWrites || m == metAuthFail || m == metIdle || m == metMalformed
}

// side says which entity an observation is about.
type side uint8

const (
	subject side = iota // the device the event is from (its device id, or its source address)
	target              // the receiver of a request (by its address)
)

// obs is one learned value observed in an event. Its strings point into
// the event: they are copied only when an alert is made.
type obs struct {
	side side
	fam  family
	a, b string     // value parts (b may be empty)
	n    int64      // numeric part, -1 when none
	ip   netip.Addr // the value when it is an address
	peer netip.Addr // the other end, for the alert
}

// extract appends the observations and rate increments of ev.
// window is the rate window in seconds.
func extract(ev *vigil.Event, out []obs, inc *[2][numMetric]float32, window float64) []obs {
	nw := ev.Network
	var src, dst netip.Addr
	if nw != nil {
		src, dst = nw.SrcIP, nw.DstIP
	}
	add := func(sd side, f family, a, b string, n int64, peer netip.Addr) {
		out = append(out, obs{side: sd, fam: f, a: a, b: b, n: n, peer: peer})
	}
	addIP := func(sd side, f family, ip netip.Addr) {
		out = append(out, obs{side: sd, fam: f, n: -1, ip: ip, peer: ip})
	}
	var none netip.Addr
	str := func(k string) string {
		if v, ok := ev.Fields[k].(string); ok {
			return v
		}
		return ""
	}
	num := func(k string) (int64, bool) {
		if v, ok := ev.Fields[k].(float64); ok {
			return int64(v), true
		}
		return 0, false
	}
	transport := ""
	if nw != nil {
		transport = nw.Transport
	}
	switch ev.Kind {
	case vigil.KindHealth: // telemetry (host.go)
		return out
	case vigil.KindInventory:
		return addSoftware(ev, out)
	case vigil.KindNetwork: // agent: listeners and connections
		if ev.Action == "listen" {
			if nw != nil && nw.DstPort != 0 {
				add(subject, famListen, transport, "", int64(nw.DstPort), none)
			}
			return out
		}
		inc[subject][metConns]++
		if dst.IsValid() {
			addIP(subject, famPeerOut, dst)
			if nw.DstPort != 0 {
				add(subject, famPortDst, transport, "", int64(nw.DstPort), dst)
			}
		}
		return out
	case vigil.KindProcess:
		inc[subject][metMsgs]++
		if p := str("process.name"); p != "" {
			add(subject, famProcess, p, "", -1, none)
		}
		return out
	case vigil.KindAuth:
		inc[subject][metMsgs]++
		if ev.Outcome == vigil.OutcomeFailure {
			inc[subject][metAuthFail]++
		} else if u := str("user.name"); u != "" && ev.Outcome == vigil.OutcomeSuccess {
			add(subject, famUser, u, "", -1, src)
		}
		return out
	case "flow":
		// Flow records carry the bytes since the flow started (a periodic
		// record every interval, then the final one): counted as the
		// flow's average per window, so a long connection neither adds
		// its growing total each interval nor lands whole in its last
		// window.
		b1, _ := num("flow.bytes_toserver")
		b2, _ := num("flow.bytes_toclient")
		bytes := float64(b1 + b2)
		if d, ok := ev.Fields["flow.duration"].(float64); ok && d > window {
			bytes *= window / d
		}
		inc[subject][metBytes] += float32(bytes)
		// A periodic record is of a connection counted already, but its
		// peers and ports are learned from it too: a connection that
		// lasts the whole learning period shows only periodic records
		// until it ends, and its end must not look new.
		if str("flow.reason") != "periodic" {
			inc[subject][metConns]++
		}
		// Idle connections (the client never sent data on them) are
		// counted by part.idle, once per connection.
		if dst.IsValid() {
			addIP(subject, famPeerOut, dst)
			addIP(target, famPeerIn, src)
			if nw.DstPort != 0 {
				add(subject, famPortDst, transport, "", int64(nw.DstPort), dst)
				add(target, famService, transport, "", int64(nw.DstPort), src)
			}
		}
		if p := str("flow.app_proto"); p != "" {
			add(subject, famProtocol, p, "", -1, dst)
		}
		return out
	}
	if ev.Action == "anomaly" {
		// A parse error of the sensor: the sender's traffic is malformed.
		// Which kinds of malformed traffic a device sends is learned
		// (a flaky device's known error is not news), and their rate.
		inc[subject][metMsgs]++
		inc[subject][metMalformed]++
		inc[target][metMalformed]++
		if a := str("anomaly.event"); a != "" {
			p := str("anomaly.app_proto")
			if p == "" {
				p = ev.Kind
			}
			add(subject, famAnomaly, p, a, -1, dst)
		}
		return out
	}
	// Protocol events from the sensor, or other sources with a 5-tuple.
	inc[subject][metMsgs]++
	if dst.IsValid() {
		addIP(subject, famPeerOut, dst)
	}
	if ev.Source == "sensor" && ev.Kind != "" {
		add(subject, famProtocol, ev.Kind, "", -1, dst)
	}
	request := false
	switch ev.Kind {
	case "modbus":
		if ev.Action != "request" {
			break
		}
		request = true
		fc, ok := num("modbus.function_code")
		if !ok {
			break
		}
		addIP(target, famModbusMaster, src)
		add(target, famModbusFunc, "", "", fc, src)
		if u, ok := num("modbus.unit_id"); ok {
			add(target, famModbusUnit, "", "", u, src)
		}
		if a, ok := num("modbus.address"); ok {
			add(target, famModbusRange, str("modbus.table"), "", a/64, src)
		}
		if w, _ := ev.Fields["modbus.write"].(bool); w || fc == 8 {
			addIP(target, famModbusWriter, src)
			if w {
				inc[subject][metWrites]++
				inc[target][metWrites]++
			}
		}
	case "mqtt":
		switch ev.Action {
		case "connect":
			request = true
			inc[subject][metConns]++
			inc[target][metConns]++
			if ka, ok := num("mqtt.keep_alive"); ok && (ka == 0 || ka >= slowKeepAlive) {
				// A session the broker must hold without hearing from the
				// client for an hour, or forever: the way a slow DoS
				// (SlowITe) holds connections while sending a CONNECT.
				inc[subject][metIdle]++
				inc[target][metIdle]++
			}
			if c := str("mqtt.client_id"); c != "" {
				add(subject, famMQTTClient, c, "", -1, dst)
			}
		case "connack":
			// Sent by the broker (subject) to the client (target): both
			// count the refusal, so the guessing client is judged too.
			if ev.Outcome == vigil.OutcomeFailure {
				inc[subject][metAuthFail]++
				inc[target][metAuthFail]++
			}
		case "publish":
			n, _ := num("mqtt.payload_size")
			inc[subject][metBytes] += float32(n)
			if t := str("mqtt.topic"); t != "" {
				add(subject, famMQTTPub, t, "", -1, dst)
			}
			if q, ok := num("mqtt.qos"); ok {
				add(subject, famMQTTQoS, "publish", "", q, dst)
			}
		case "subscribe":
			// Lists are []string from the sensor, []any once decoded
			// from JSON (the bus, vigil detect).
			eachString(ev.Fields["mqtt.topics"], func(t string) {
				add(subject, famMQTTSub, t, "", -1, dst)
			})
			eachString(ev.Fields["mqtt.topics_qos"], func(q string) {
				if n, err := strconv.ParseInt(q, 10, 8); err == nil {
					add(subject, famMQTTQoS, "subscribe", "", n, dst)
				}
			})
		}
	case "amqp":
		// The client's publishes and consumes (0-9-1 methods, 1.0 links):
		// what it talks about on the broker, as MQTT topics are.
		n, _ := num("amqp.body_size")
		inc[subject][metBytes] += float32(n)
		if b, _ := ev.Fields["amqp.auth_failure"].(bool); b {
			// Sent by the broker (subject) to the refused client.
			inc[subject][metAuthFail]++
			inc[target][metAuthFail]++
		}
		switch ev.Action {
		case "basic.publish":
			request = true
			add(subject, famAMQPPub, str("amqp.exchange"), str("amqp.routing_key"), -1, dst)
		case "basic.consume":
			request = true
			add(subject, famAMQPSub, str("amqp.queue"), "", -1, dst)
		case "queue.bind":
			request = true
			add(subject, famAMQPSub, str("amqp.queue"), str("amqp.exchange")+" "+str("amqp.routing_key"), -1, dst)
		case "attach", "transfer":
			// 1.0: a sender link's target (and its transfers) is where the
			// client publishes; a receiver link's source where it consumes.
			// A broker attaches too: its links mirror the client's, so only
			// the side that opened the connection (the sender of
			// the first event, the client) matters, which the sensor does
			// not tell; both are learned, each for its own sender.
			a := str("amqp.address")
			if a == "" {
				break
			}
			if str("amqp.role") == "receiver" {
				add(subject, famAMQPSub, "", a, -1, dst)
			} else {
				add(subject, famAMQPPub, "", a, -1, dst)
			}
		}
	case "rtps":
		n, _ := num("rtps.payload_size")
		inc[subject][metBytes] += float32(n)
		if t := str("rtps.topic_name"); t != "" {
			switch ev.Action {
			case "publication":
				add(subject, famDDSPub, t, str("rtps.type_name"), -1, dst)
			case "subscription":
				add(subject, famDDSSub, t, str("rtps.type_name"), -1, dst)
			}
		}
	case "coap":
		if ev.Action != "request" {
			break
		}
		request = true
		m := str("coap.method")
		add(target, famCoAP, m, str("coap.uri_path"), -1, src)
		if m == "PUT" || m == "POST" || m == "DELETE" || m == "PATCH" || m == "iPATCH" {
			inc[subject][metWrites]++
			inc[target][metWrites]++
		}
		n, _ := num("coap.payload_size")
		inc[subject][metBytes] += float32(n)
	case "dns":
		if ev.Action == "query" {
			if q := str("dns.question.name"); q != "" {
				add(subject, famDNS, q, "", -1, dst)
			}
		}
	case "http":
		request = ev.Action == "request"
	}
	if request && src.IsValid() && dst.IsValid() {
		inc[target][metMsgs]++
		addIP(target, famPeerIn, src)
	}
	return out
}

// eachString calls f with each string of a list field: []string as the
// sensor makes it, []any as JSON decodes it.
func eachString(v any, f func(string)) {
	switch x := v.(type) {
	case []string:
		for _, s := range x {
			f(s)
		}
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				f(s)
			}
		}
	}
}

// slowKeepAlive is the MQTT keep-alive, in seconds, from which a connect
// counts as an idle connection.
const slowKeepAlive = 3600

// idleFlow reports whether a flow record is of a TCP connection on which
// the client sent no data: no segment towards the server carried PSH (every
// stack pushes what an application writes). Half-open connections (a SYN
// unanswered or never acknowledged) are idle too.
func idleFlow(ev *vigil.Event, transport string) bool {
	if transport != "tcp" {
		return false
	}
	fl, ok := ev.Fields["flow.tcp_flags_toserver"].(string)
	if !ok || fl == "" {
		return false
	}
	return !strings.Contains(fl, "PSH")
}

// display is the text of an observed value, in alerts.
func (o *obs) display() string {
	switch o.fam {
	case famPortDst, famService, famListen:
		if o.a == "" {
			return strconv.FormatInt(o.n, 10)
		}
		return o.a + "/" + strconv.FormatInt(o.n, 10)
	case famModbusFunc, famModbusUnit:
		return strconv.FormatInt(o.n, 10)
	case famModbusRange:
		lo := o.n * 64
		return o.a + " " + strconv.FormatInt(lo, 10) + "-" + strconv.FormatInt(lo+63, 10)
	case famCoAP, famAnomaly, famSoftware:
		if o.b == "" {
			return o.a
		}
		return o.a + " " + o.b
	case famMQTTQoS:
		return o.a + " qos " + strconv.FormatInt(o.n, 10)
	case famAMQPPub, famAMQPSub:
		switch {
		case o.a == "":
			return o.b
		case o.b == "":
			return o.a
		}
		return o.a + " " + o.b
	case famDDSPub, famDDSSub:
		if o.b == "" {
			return o.a
		}
		return o.a + " (" + o.b + ")"
	}
	if o.ip.IsValid() {
		return o.ip.String()
	}
	return o.a
}

// hash is the 64-bit FNV-1a hash of the family and value of o: the learned
// sets keep hashes, not strings (8 bytes a value whatever its length).
func (o *obs) hash() uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	h = (h ^ uint64(o.fam)) * prime
	for i := 0; i < len(o.a); i++ {
		h = (h ^ uint64(o.a[i])) * prime
	}
	h = (h ^ 0xff) * prime
	for i := 0; i < len(o.b); i++ {
		h = (h ^ uint64(o.b[i])) * prime
	}
	h = (h ^ 0xfe) * prime
	n := uint64(o.n)
	for i := 0; i < 8; i++ {
		h = (h ^ (n & 0xff)) * prime
		n >>= 8
	}
	if o.ip.IsValid() {
		b := o.ip.As16()
		for _, c := range b {
			h = (h ^ uint64(c)) * prime
		}
	}
	if h == 0 { // 0 marks an empty slot
		h = 1
	}
	return h
}

// isPublic reports whether an address is outside private, loopback,
// link-local and multicast ranges.
func isPublic(a netip.Addr) bool {
	return a.IsValid() && a.IsGlobalUnicast() && !a.IsPrivate()
}

// sensitiveClass reports whether a device class controls a physical
// process: its alerts are one level higher.
func sensitiveClass(class string) bool {
	switch class {
	case vigil.ClassPLCGateway, "plc", "rtu", "ied", "controller", "safety", "sis", "hmi", "dcs", "scada":
		return true
	}
	return false
}
