package sensor

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	vigil "github.com/vigil-iot/vigil"
)

// tsharkLayers runs tshark -T json over a capture and returns, in packet
// order, every instance of the layer named proto, flattened to its leaf
// fields (nested trees included; the first value of a repeated key wins).
// Extra arguments (decode-as rules) go to tshark too.
func tsharkLayers(t *testing.T, pcap, proto string, extra ...string) []map[string]string {
	t.Helper()
	bin, err := exec.LookPath("tshark")
	if err != nil {
		t.Skipf("tshark not installed: %v", err)
	}
	args := append([]string{"-r", pcap, "-T", "json", "-Y", proto, "-o", "tcp.desegment_tcp_streams:TRUE"}, extra...)
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", pcap, err)
	}
	var pkts []struct {
		Source struct {
			Layers json.RawMessage `json:"layers"`
		} `json:"_source"`
	}
	if err := json.Unmarshal(out, &pkts); err != nil {
		t.Fatalf("tshark json: %v", err)
	}
	var res []map[string]string
	for _, p := range pkts {
		// A packet with two messages of one protocol has the layer key
		// twice: read the object token by token to keep both.
		dec := json.NewDecoder(bytes.NewReader(p.Source.Layers))
		if _, err := dec.Token(); err != nil {
			t.Fatal(err)
		}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			if k != proto {
				var skip json.RawMessage
				if err := dec.Decode(&skip); err != nil {
					t.Fatal(err)
				}
				continue
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				t.Fatal(err)
			}
			if len(raw) > 0 && raw[0] == '[' {
				var many []json.RawMessage
				json.Unmarshal(raw, &many)
				for _, m := range many {
					res = append(res, flattenJSON(t, m))
				}
			} else {
				res = append(res, flattenJSON(t, raw))
			}
		}
	}
	return res
}

// flattenJSON flattens a layer to its leaf fields in document order, the
// first value of a repeated key winning (tshark repeats keys).
func flattenJSON(t *testing.T, raw json.RawMessage) map[string]string {
	out := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	var walk func(key string)
	walk = func(key string) {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				for dec.More() {
					k, _ := dec.Token()
					walk(k.(string))
				}
				dec.Token()
			case '[':
				for dec.More() {
					walk(key)
				}
				dec.Token()
			}
		case string:
			if _, seen := out[key]; !seen {
				out[key] = v
			}
		}
	}
	walk("")
	return out
}

// compare checks Vigil's events of one kind against tshark's layers, in
// order, on the fields each pair function lists.
func compare(t *testing.T, name string, evs []vigil.Event, kind string, layers []map[string]string,
	pair func(e *vigil.Event, l map[string]string) [][3]string) int {
	t.Helper()
	var mine []*vigil.Event
	for i := range evs {
		if evs[i].Kind == kind && evs[i].Action != "anomaly" {
			mine = append(mine, &evs[i])
		}
	}
	if len(mine) != len(layers) {
		t.Errorf("%s: %d %s events, tshark has %d", name, len(mine), kind, len(layers))
		return 0
	}
	n := 0
	for i, l := range layers {
		for _, c := range pair(mine[i], l) {
			n++
			if c[1] != c[2] {
				t.Errorf("%s %s #%d %s: vigil %.80q, tshark %.80q", name, kind, i, c[0], c[1], c[2])
			}
		}
	}
	return n
}

var mqttTypes = map[string]string{"1": "connect", "2": "connack", "3": "publish", "4": "puback", "5": "pubrec",
	"6": "pubrel", "7": "pubcomp", "8": "subscribe", "9": "suback", "10": "unsubscribe", "11": "unsuback",
	"12": "pingreq", "13": "pingresp", "14": "disconnect", "15": "auth"}

func mqttPairs(e *vigil.Event, l map[string]string) [][3]string {
	f := func(k string) string { return vigil.ValueString(e.Fields[k]) }
	cs := [][3]string{{"type", e.Action, mqttTypes[l["mqtt.msgtype"]]}}
	add := func(name, mine, tsharkKey string) {
		if v, ok := l[tsharkKey]; ok {
			cs = append(cs, [3]string{name, mine, v})
		}
	}
	add("client_id", f("mqtt.client_id"), "mqtt.clientid")
	add("protocol_name", f("mqtt.protocol_name"), "mqtt.protoname")
	if e.Action == "connect" {
		add("protocol_version", f("mqtt.protocol_version"), "mqtt.ver")
		add("keep_alive", f("mqtt.keep_alive"), "mqtt.kalive")
	}
	add("username", f("mqtt.username"), "mqtt.username")
	if e.Action == "publish" {
		add("topic", f("mqtt.topic"), "mqtt.topic")
	}
	add("message_id", f("mqtt.message_id"), "mqtt.msgid")
	add("qos", f("mqtt.qos"), "mqtt.qos")
	add("retain", boolDigit(e.Fields["mqtt.retain"]), "mqtt.retain")
	add("reason_code", f("mqtt.reason_code"), "mqtt.conack.val")
	add("reason_code", f("mqtt.reason_code"), "mqtt.connack.reason_code")
	add("reason_code", f("mqtt.reason_code"), "mqtt.puback.reason_code")
	add("reason_code", f("mqtt.reason_code"), "mqtt.disconnect.reason_code")
	if v, ok := l["mqtt.msg"]; ok {
		// Vigil keeps payloads as text: compare the ones that are.
		if b, _ := hex.DecodeString(strings.ReplaceAll(v, ":", "")); utf8.Valid(b) {
			cs = append(cs, [3]string{"payload", f("mqtt.payload"), string(b)})
		}
	}
	if e.Action == "subscribe" || e.Action == "unsubscribe" {
		// The flattened layer keeps the first topic filter.
		if v, ok := l["mqtt.topic"]; ok {
			ts, _ := e.Fields["mqtt.topics"].([]string)
			first := ""
			if len(ts) > 0 {
				first = ts[0]
			}
			cs = append(cs, [3]string{"first topic filter", first, v})
		}
	}
	return cs
}

func boolDigit(v any) string {
	if v == true {
		return "1"
	}
	return "0"
}

// TestTsharkMQTTCorpus compares MQTT events with tshark on the corpus's
// MQTT captures.
func TestTsharkMQTTCorpus(t *testing.T) {
	files := []string{filepath.Join(corpusDir(t, "pcap/zeek"), "Traces", "mqtt.pcap")}
	sv := corpusDir(t, "pcap/suricata-verify")
	for _, c := range []string{"mqtt5-pub-mosquittoprops", "mqtt5-sub-userpass", "mqtt31-pub-qos2", "mqtt311-unsub-qos1", "mqtt-pub-rules"} {
		m, _ := filepath.Glob(filepath.Join(sv, c, "*.pcap"))
		files = append(files, m...)
	}
	n := 0
	for _, f := range files {
		evs, _ := runPcap(t, Config{PayloadPreview: 1 << 20}, f)
		n += compare(t, filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f), evs, "mqtt", tsharkLayers(t, f, "mqtt"), mqttPairs)
	}
	t.Logf("%d MQTT fields compared with tshark over %d captures", n, len(files))
}

// TestTsharkModbusAndDNS compares Modbus and DNS events with tshark on
// Zeek's Modbus and mDNS captures.
func TestTsharkModbusAndDNS(t *testing.T) {
	zeek := corpusDir(t, "pcap/zeek")
	mb := filepath.Join(zeek, "Traces", "modbus", "modbusSmall.pcap")
	evs, _ := runPcap(t, Config{}, mb)
	n := compare(t, "modbusSmall", evs, "modbus", tsharkLayers(t, mb, "mbtcp"), func(e *vigil.Event, l map[string]string) [][3]string {
		f := func(k string) string { return vigil.ValueString(e.Fields[k]) }
		return [][3]string{
			{"transaction_id", f("modbus.transaction_id"), l["mbtcp.trans_id"]},
			{"unit_id", f("modbus.unit_id"), l["mbtcp.unit_id"]},
		}
	})
	n += compare(t, "modbusSmall", evs, "modbus", tsharkLayers(t, mb, "modbus"), func(e *vigil.Event, l map[string]string) [][3]string {
		f := func(k string) string { return vigil.ValueString(e.Fields[k]) }
		cs := [][3]string{{"function_code", f("modbus.function_code"), l["modbus.func_code"]}}
		if e.Action == "request" {
			if v, ok := l["modbus.reference_num"]; ok {
				cs = append(cs, [3]string{"address", f("modbus.address"), v})
			}
			for _, k := range []string{"modbus.bit_cnt", "modbus.word_cnt"} {
				if v, ok := l[k]; ok {
					cs = append(cs, [3]string{"quantity", f("modbus.quantity"), v})
				}
			}
		}
		return cs
	})
	md := filepath.Join(zeek, "Traces", "dns", "mdns.pcap")
	evs, _ = runPcap(t, Config{}, md)
	n += compare(t, "mdns", evs, "dns", tsharkLayers(t, md, "mdns"), func(e *vigil.Event, l map[string]string) [][3]string {
		id, _ := strconv.ParseUint(strings.TrimPrefix(l["dns.id"], "0x"), 16, 16)
		qr := "0"
		if e.Action == "response" {
			qr = "1"
		}
		cs := [][3]string{
			{"id", vigil.ValueString(e.Fields["dns.id"]), strconv.FormatUint(id, 10)},
			{"qr", qr, l["dns.flags.response"]},
		}
		if l["dns.count.queries"] != "0" {
			cs = append(cs, [3]string{"question", vigil.ValueString(e.Fields["dns.question.name"]), firstQuery(l)})
		}
		cs = append(cs, [3]string{"answers", vigil.ValueString(e.Fields["dns.answers_count"]), l["dns.count.answers"]})
		return cs
	})
	t.Logf("%d Modbus and DNS fields compared with tshark", n)
}

// firstQuery is the name of the first question as tshark lists it.
func firstQuery(l map[string]string) string { return l["dns.qry.name"] }

// TestTsharkLivePeers captures, between two network namespaces,
// mosquitto_pub and mosquitto_sub against mosquitto and coap-client against
// coap-server, with dumpcap, and compares Vigil's events on that capture
// with tshark's decoding of it, field by field.
func TestTsharkLivePeers(t *testing.T) {
	for _, bin := range []string{"tshark", "dumpcap", "mosquitto", "mosquitto_pub", "mosquitto_sub", "coap-server-notls", "coap-client-notls"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
	nsA, nsB, ifA := netnsPair(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	os.WriteFile(conf, []byte("listener 1883 10.213.7.1\nallow_anonymous true\n"), 0o644)
	start := func(args ...string) *exec.Cmd {
		c := exec.Command("ip", append([]string{"netns", "exec"}, args...)...)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		return c
	}
	start(nsA, "mosquitto", "-c", conf)
	start(nsA, "coap-server-notls", "-A", "10.213.7.1")

	pcap := filepath.Join(dir, "peers.pcapng")
	stop := dumpcap(t, nsA, ifA, pcap)
	run := func(args ...string) {
		if out, err := exec.Command("ip", append([]string{"netns", "exec", nsB}, args...)...).CombinedOutput(); err != nil {
			t.Logf("%v: %v: %s", args, err, out)
		}
	}
	// Wait until the broker and the CoAP server answer (that traffic is
	// captured and compared too).
	ready2 := func(args ...string) {
		deadline := time.Now().Add(20 * time.Second)
		for exec.Command("ip", append([]string{"netns", "exec", nsB}, args...)...).Run() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("%v never succeeded", args)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	ready2("mosquitto_pub", "-h", "10.213.7.1", "-i", "vigil-ready", "-t", "ready", "-m", "1")
	ready2("coap-client-notls", "-m", "get", "-B", "2", "coap://10.213.7.1/")
	sub := exec.Command("ip", "netns", "exec", nsB, "mosquitto_sub", "-h", "10.213.7.1", "-i", "vigil-sub", "-t", "plant/#", "-q", "1", "-C", "2", "-W", "10")
	sub.Start()
	time.Sleep(300 * time.Millisecond)
	run("mosquitto_pub", "-h", "10.213.7.1", "-i", "vigil-pub", "-u", "meter", "-P", "s3cret", "-q", "1", "-t", "plant/temp", "-m", "21.5")
	run("mosquitto_pub", "-h", "10.213.7.1", "-i", "vigil-pub5", "-V", "mqttv5", "-q", "2", "-r", "-t", "plant/door", "-m", "open",
		"-D", "publish", "user-property", "site", "7")
	sub.Wait()
	run("coap-client-notls", "-m", "get", "coap://10.213.7.1/.well-known/core")
	run("coap-client-notls", "-m", "get", "-T", "cafe", "coap://10.213.7.1/time?ticks")
	run("coap-client-notls", "-m", "put", "-e", "hello", "coap://10.213.7.1/example_data")
	stop()

	evs, _ := runPcap(t, Config{PayloadPreview: 1 << 20}, pcap)
	n := compare(t, "live", evs, "mqtt", tsharkLayers(t, pcap, "mqtt"), mqttPairs)
	n += compare(t, "live", evs, "coap", tsharkLayers(t, pcap, "coap"), coapPairs)
	t.Logf("%d MQTT and CoAP fields compared with tshark on a live capture of real peers", n)
	if n < 20 {
		t.Fatalf("only %d fields compared", n)
	}
}

// coapPairs pairs the fields of a CoAP event with tshark's.
func coapPairs(e *vigil.Event, l map[string]string) [][3]string {
	code, _ := strconv.Atoi(l["coap.code"])
	types := map[string]string{"0": "confirmable", "1": "non_confirmable", "2": "acknowledgement", "3": "reset"}
	cs := [][3]string{
		// Over TCP neither has a type or a message id.
		{"type", vigil.ValueString(e.Fields["coap.type"]), types[l["coap.type"]]},
		{"code", vigil.ValueString(e.Fields["coap.code"]), fmt.Sprintf("%d.%02d", code>>5, code&31)},
		{"message_id", vigil.ValueString(e.Fields["coap.message_id"]), l["coap.mid"]},
	}
	if v, ok := l["coap.token"]; ok {
		cs = append(cs, [3]string{"token", vigil.ValueString(e.Fields["coap.token"]), strings.ReplaceAll(v, ":", "")})
	}
	// tshark shows a request's path on its response too: compare
	// requests only.
	if v, ok := l["coap.opt.uri_path_recon"]; ok && e.Action == "request" {
		// tshark puts Uri-Host and Uri-Port before the path.
		mine := vigil.ValueString(e.Fields["coap.uri_path"])
		if p, ok := e.Fields["coap.uri_port"]; ok {
			mine = ":" + vigil.ValueString(p) + mine
		}
		if h, ok := e.Fields["coap.uri_host"]; ok {
			mine = vigil.ValueString(h) + mine
		}
		cs = append(cs, [3]string{"uri_path", mine, v})
	}
	if v, ok := l["coap.payload_length"]; ok {
		cs = append(cs, [3]string{"payload_size", vigil.ValueString(e.Fields["coap.payload_size"]), v})
	}
	return cs
}

// TestTsharkFragments compares Vigil's events with tshark's on a capture
// of real IPv4 and IPv6 fragments (testdata/ipfrag): both reassemble the
// datagrams and decode the same CoAP messages.
func TestTsharkFragments(t *testing.T) {
	pcap := filepath.Join("testdata", "ipfrag", "coap-udp-mtu1280.pcapng")
	evs, st := runPcap(t, Config{}, pcap)
	n := compare(t, "ipfrag", evs, "coap", tsharkLayers(t, pcap, "coap"), coapPairs)
	if n < 16 || st.Reassembled != 2 {
		t.Fatalf("%d fields compared, stats %+v", n, st)
	}
}

// TestTsharkCoAPTCPAndPorts captures libcoap's coap-client against
// coap-server between two network namespaces: CoAP over TCP on 5683,
// CoAP over TCP and over UDP on port 15683. Vigil recognises the last two
// by probing; tshark is told with decode-as rules. Their decodings must
// agree field by field.
func TestTsharkCoAPTCPAndPorts(t *testing.T) {
	for _, bin := range []string{"tshark", "dumpcap", "coap-server-notls", "coap-client-notls"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
	nsA, nsB, ifA := netnsPair(t)
	start := func(args ...string) {
		c := exec.Command("ip", append([]string{"netns", "exec"}, args...)...)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	}
	start(nsA, "coap-server-notls", "-A", "10.213.7.1")
	start(nsA, "coap-server-notls", "-A", "10.213.7.1", "-p", "15683")
	pcap := filepath.Join(t.TempDir(), "coap.pcapng")
	stop := dumpcap(t, nsA, ifA, pcap)
	client := func(args ...string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			out, err := exec.Command("ip", append([]string{"netns", "exec", nsB, "coap-client-notls"}, args...)...).CombinedOutput()
			if err == nil && (len(out) > 0 || args[1] != "get") { // a GET answers with content
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("coap-client %v: %v: %s", args, err, out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	client("-m", "get", "coap+tcp://10.213.7.1/.well-known/core")
	client("-m", "get", "coap+tcp://10.213.7.1:15683/time")
	client("-m", "get", "-T", "beef", "coap://10.213.7.1:15683/time")
	client("-m", "put", "-e", "hello", "coap+tcp://10.213.7.1:15683/example_data")
	client("-m", "get", "coap://10.213.7.1:15683/example_data")
	stop()

	evs, _ := runPcap(t, Config{PayloadPreview: 1 << 20}, pcap)
	layers := tsharkLayers(t, pcap, "coap", "-d", "tcp.port==15683,coap", "-d", "udp.port==15683,coap")
	n := compare(t, "coap tcp and ports", evs, "coap", layers, coapPairs)
	var tcp, udp15683 int
	for _, e := range evs {
		if e.Kind == "coap" && e.Action == "anomaly" {
			t.Errorf("anomaly %v", e.Fields)
		}
		if e.Kind == "coap" && e.Network.Transport == "tcp" {
			tcp++
		}
		if e.Kind == "coap" && e.Network.Transport == "udp" && (e.Network.DstPort == 15683 || e.Network.SrcPort == 15683) {
			udp15683++
		}
	}
	t.Logf("%d CoAP fields compared with tshark (%d events over TCP, %d over UDP 15683)", n, tcp, udp15683)
	if tcp < 12 || udp15683 < 4 || n < 40 {
		t.Fatalf("too little compared: %d fields, %d TCP and %d UDP/15683 events", n, tcp, udp15683)
	}
}

// dumpcap captures on iface in namespace ns to file until the returned
// function is called.
func dumpcap(t *testing.T, ns, iface, file string) (stop func()) {
	t.Helper()
	cap := exec.Command("ip", "netns", "exec", ns, "dumpcap", "-i", iface, "-w", file)
	stderr, _ := cap.StderrPipe()
	if err := cap.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "File:") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		cap.Process.Kill()
		t.Fatal("dumpcap did not start")
	}
	return func() {
		time.Sleep(300 * time.Millisecond)
		cap.Process.Signal(os.Interrupt)
		cap.Wait()
	}
}
