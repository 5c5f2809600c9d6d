package zeek

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/proto"
)

// corpusDir is the real Zeek output of Zeek's own test suite
// (../shared/corpus/zeek-logs, see its README).
const corpusDir = "../../../shared/corpus/zeek-logs"

// maskedTime is the fixed time put where Zeek's test tool masked the
// times of its baselines (XXXXXXXXXX.XXXXXX): real Zeek never writes
// the mask, every other byte of the logs is as Zeek wrote it.
const maskedTime = "1700000000.123456"

func unmask(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte("XXXXXXXXXX.XXXXXX"), []byte(maskedTime))
}

func corpus(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("the Zeek log corpus %s is absent (%v): skipping the test against real Zeek output", corpusDir, err)
	}
	return corpusDir
}

// readAll converts a whole log.
func readAll(t testing.TB, name string, b []byte, path string) ([]proto.Event, Stats, error) {
	t.Helper()
	r := NewReader(bytes.NewReader(b), Options{Name: name, Path: path})
	var evs []proto.Event
	for {
		var err error
		evs, err = r.Next(evs)
		if err == io.EOF {
			return evs, r.Stats(), nil
		}
		if err != nil {
			return evs, r.Stats(), err
		}
	}
}

// TestCorpusZeekLogs reads every whole Zeek log of a supported path in
// the corpus of real Zeek output (../shared/corpus/zeek-logs; skipped
// when absent): each record converts without an error.
func TestCorpusZeekLogs(t *testing.T) {
	dir := corpus(t)
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	supported := map[string]bool{}
	for _, p := range Paths() {
		supported[p] = true
	}
	perPath := map[string]int{}
	whole := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("\n#fields\t")) {
			continue // a column extract a test made, not a log
		}
		whole++
		path := PathOf(f)
		evs, st, err := readAll(t, f, unmask(b), path)
		if !supported[path] {
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("%s: unsupported path %q: got %v, want ErrUnsupported", f, path, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if st.Records > 0 && len(evs) == 0 {
			t.Errorf("%s: %d records, no event", f, st.Records)
		}
		for i := range evs {
			ev := &evs[i]
			if ev.Source != "sensor" || ev.Kind == "" || ev.Time.IsZero() {
				t.Fatalf("%s: event %d: %+v", f, i, ev.Event)
			}
			if _, err := ev.AppendJSON(nil); err != nil {
				t.Fatalf("%s: event %d does not encode: %v", f, i, err)
			}
		}
		perPath[path] += st.Records
	}
	t.Logf("%d whole logs; records converted per path: %v", whole, perPath)
	for _, p := range []string{"conn", "dns", "http", "ssl", "ssh", "mqtt_connect", "mqtt_publish", "mqtt_subscribe", "modbus", "weird"} {
		if perPath[p] == 0 {
			t.Errorf("no record of %s converted from the corpus", p)
		}
	}
}

// fields returns an event as the JSON object vigil.Event encodes to.
func eventJSON(t *testing.T, ev *proto.Event) map[string]any {
	t.Helper()
	b, err := ev.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// check compares the fields named in want with the event's.
func check(t *testing.T, ev *proto.Event, want map[string]any) {
	t.Helper()
	m := eventJSON(t, ev)
	fields, _ := m["fields"].(map[string]any)
	for k, w := range want {
		var got any
		if after, ok := strings.CutPrefix(k, "fields."); ok {
			got = fields[after]
		} else if after, ok := strings.CutPrefix(k, "network."); ok {
			nw, _ := m["network"].(map[string]any)
			got = nw[after]
		} else {
			got = m[k]
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(w)
		if string(gb) != string(wb) {
			t.Errorf("%s: got %s, want %s", k, gb, wb)
		}
	}
}

func corpusLog(t *testing.T, test, file string) []proto.Event {
	t.Helper()
	name := filepath.Join(corpus(t), test, file)
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	evs, _, err := readAll(t, name, unmask(b), PathOf(name))
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestCorpusGolden checks the events of a few real Zeek logs field by
// field (../shared/corpus/zeek-logs; skipped when absent).
func TestCorpusGolden(t *testing.T) {
	evs := corpusLog(t, "scripts.base.protocols.http.concurrent-range-requests", "conn.log")
	if len(evs) != 3 {
		t.Fatalf("conn: %d events, want 3", len(evs))
	}
	check(t, &evs[0], map[string]any{
		"time": "2023-11-14T22:13:20.248672Z", "source": "sensor", "kind": "flow", "action": "flow", "category": "network",
		"network.transport": "tcp", "network.src_ip": "192.168.0.107", "network.src_port": 58716,
		"network.dst_ip": "88.198.248.254", "network.dst_port": 80,
		"fields.flow.id": "CHhAvVGS1DHFjwGM9", "fields.observer.product": "zeek",
		"fields.flow.start": "2023-11-14T22:13:20.123456Z", "fields.flow.end": "2023-11-14T22:13:20.248672Z",
		"fields.flow.duration": 0.125216, "fields.flow.reason": "end", "fields.flow.state": "closed",
		"fields.flow.pkts_toserver": 9, "fields.flow.pkts_toclient": 7,
		"fields.flow.bytes_toserver": 593, "fields.flow.bytes_toclient": 10662,
		"fields.flow.app_proto": "http", "fields.flow.midstream": false,
		"fields.flow.tcp_flags_toserver": "FIN,SYN,PSH,ACK", "fields.flow.tcp_flags_toclient": "FIN,SYN,PSH,ACK",
		"fields.zeek.history": "ShADadFf", "fields.zeek.conn_state": "SF",
	})

	evs = corpusLog(t, "scripts.base.protocols.mqtt.mqtt", "mqtt_connect.log")
	if len(evs) != 4 {
		t.Fatalf("mqtt_connect: %d events, want 4 (connect and connack twice)", len(evs))
	}
	check(t, &evs[0], map[string]any{
		"kind": "mqtt", "action": "connect", "network.src_ip": "10.0.1.4", "network.dst_port": 1883,
		"fields.mqtt.type": "connect", "fields.mqtt.protocol_name": "MQIsdp", "fields.mqtt.protocol_version": 3,
		"fields.mqtt.client_id": "paho/34AAE54A75D839566E", "fields.mqtt.flags.will": false,
	})
	check(t, &evs[1], map[string]any{
		"kind": "mqtt", "action": "connack", "outcome": "success", "network.src_ip": "198.41.30.241", "network.src_port": 1883,
		"fields.mqtt.reason_code": 0, "fields.mqtt.reason": "accepted",
	})
	evs = corpusLog(t, "scripts.base.protocols.mqtt.mqtt", "mqtt_publish.log")
	check(t, &evs[0], map[string]any{
		"action": "publish", "network.src_ip": "198.41.30.241", // from_client F: the broker sent it
		"fields.mqtt.topic": "SampleTopic", "fields.mqtt.payload": "Hello from the Paho blocking client",
		"fields.mqtt.payload_size": 35, "fields.mqtt.qos": 0, "fields.mqtt.retain": true, "fields.mqtt.payload_truncated": false,
	})
	evs = corpusLog(t, "scripts.base.protocols.mqtt.mqtt", "mqtt_subscribe.log")
	check(t, &evs[0], map[string]any{
		"action": "subscribe", "fields.mqtt.topics": []string{"SampleTopic"}, "fields.mqtt.topics_qos": []string{"0"},
	})
	check(t, &evs[1], map[string]any{"action": "suback", "fields.mqtt.reason_codes": []string{"0"}})

	evs = corpusLog(t, "scripts.base.protocols.modbus.exception_handling", "modbus.log")
	check(t, &evs[0], map[string]any{
		"kind": "modbus", "action": "response", "outcome": "failure", "network.src_port": 502,
		"fields.modbus.function_code": 28, "fields.modbus.category": "public_unassigned", "fields.modbus.exception": true,
		"fields.modbus.exception_name": "illegal_function", "fields.modbus.exception_code": 1,
		"fields.modbus.unit_id": 1, "fields.modbus.transaction_id": 0,
	})

	evs = corpusLog(t, "scripts.base.protocols.ssl.cve-2015-3194", "ssl.log")
	if len(evs) != 2 {
		t.Fatalf("ssl: %d events, want a client and a server hello", len(evs))
	}
	check(t, &evs[1], map[string]any{"kind": "tls", "action": "server_hello", "network.src_port": 4433,
		"fields.tls.server.hash.sha256": "81a29a60dfcea4e4e9e80dd277c1384b002db8601afc57bca2c2ef1377fd9872"})

	evs = corpusLog(t, "scripts.base.protocols.dns.flip", "dns.log")
	if len(evs) != 2 {
		t.Fatalf("dns: %d events, want a query and its response", len(evs))
	}
	check(t, &evs[0], map[string]any{"kind": "dns", "action": "query", "network.src_ip": "10.20.1.31",
		"fields.dns.id": 25701, "fields.dns.question.name": "us.v27.distributed.net", "fields.dns.header_flags": []string{}})
	check(t, &evs[1], map[string]any{"kind": "dns", "action": "response", "outcome": "success", "network.src_ip": "207.158.192.40",
		"fields.dns.response_code": "NOERROR", "fields.dns.answers_count": 8, "fields.dns.answers.ttl": 900,
		"fields.dns.header_flags": []string{"AA", "RA"}})
}

// TestCorpusJSONTimes reads the times of Zeek's JSON output with ISO 8601
// timestamps (../shared/corpus/zeek-logs; skipped when absent).
func TestCorpusJSONTimes(t *testing.T) {
	name := filepath.Join(corpus(t), "scripts.base.frameworks.logging.ascii-json-iso-timestamps", "ssh.log")
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		r := NewReader(nil, Options{})
		v, err := r.jp.Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		r.rec.obj, _ = v.Object()
		tm, ok, err := r.rec.time("t")
		if err != nil || !ok {
			t.Fatalf("%s: %v %v", l, ok, err)
		}
		got = append(got, tm.Format(time.RFC3339Nano))
	}
	want := "2008-07-09T16:13:30.005432Z 1986-12-01T01:01:01.9Z 1969-12-31T23:59:59.6Z"
	if g := strings.Join(got[:3], " "); g != want {
		t.Errorf("got %s, want %s", g, want)
	}
}

// Samples written for these tests in Zeek's formats (the field names and
// types of Zeek 6's scripts).
const tsvConn = `#separator \x09
#set_separator	,
#empty_field	(empty)
#unset_field	-
#path	conn
#open	2024-03-01-10-00-00
#fields	ts	uid	id.orig_h	id.orig_p	id.resp_h	id.resp_p	proto	service	duration	orig_bytes	resp_bytes	conn_state	local_orig	local_resp	missed_bytes	history	orig_pkts	orig_ip_bytes	resp_pkts	resp_ip_bytes	tunnel_parents
#types	time	string	addr	port	addr	port	enum	string	interval	count	count	string	bool	bool	count	string	count	count	count	count	set[string]
1709287200.500000	CaBc1	192.168.1.20	51000	192.168.1.10	1883	tcp	mqtt	2.250000	120	40	SF	T	T	0	ShADadFf	8	540	6	360	(empty)
1709287201.000000	CaBc2	192.168.1.20	40000	192.168.1.30	23	tcp	-	-	-	-	S0	T	T	0	S	1	60	0	0	-
1709287202.000000	CaBc3	fe80::1	5353	ff02::fb	5353	udp	dns	0.010000	40	0	S0	T	F	0	D	1	88	0	0	tag\x2cone,two
#close	2024-03-01-11-00-00
`

const jsonConn = `{"ts":1709287200.5,"uid":"CaBc1","id.orig_h":"192.168.1.20","id.orig_p":51000,"id.resp_h":"192.168.1.10","id.resp_p":1883,"proto":"tcp","service":"mqtt","duration":2.25,"orig_bytes":120,"resp_bytes":40,"conn_state":"SF","local_orig":true,"local_resp":true,"missed_bytes":0,"history":"ShADadFf","orig_pkts":8,"orig_ip_bytes":540,"resp_pkts":6,"resp_ip_bytes":360}
{"_path":"dns","ts":"2024-03-01T10:00:01.000000Z","uid":"CdN1","id.orig_h":"192.168.1.20","id.orig_p":5353,"id.resp_h":"192.168.1.1","id.resp_p":53,"proto":"udp","trans_id":7,"rtt":0.002,"query":"x.duckdns.org","qclass":1,"qclass_name":"C_INTERNET","qtype":1,"qtype_name":"A","rcode":3,"rcode_name":"NXDOMAIN","AA":false,"TC":false,"RD":true,"RA":true,"Z":0,"rejected":false}
{"_path":"files","ts":1709287203.0,"fuid":"F1"}
`

// TestTSVAndJSONAgree: the same connection in TSV and in JSON gives the
// same event; the headers' separators and escapes are honoured.
func TestTSVAndJSONAgree(t *testing.T) {
	tsv, _, err := readAll(t, "conn.log", []byte(tsvConn), "")
	if err != nil {
		t.Fatal(err)
	}
	js, st, err := readAll(t, "conn.json", []byte(jsonConn), "conn")
	if err != nil {
		t.Fatal(err)
	}
	if len(tsv) != 3 || len(js) != 3 || st.Skipped != 1 {
		t.Fatalf("tsv %d events, json %d events (%+v)", len(tsv), len(js), st)
	}
	a, _ := tsv[0].AppendJSON(nil)
	b, _ := js[0].AppendJSON(nil)
	if string(a) != string(b) {
		t.Errorf("TSV and JSON differ:\n%s\n%s", a, b)
	}
	check(t, &tsv[1], map[string]any{"fields.flow.state": "syn_sent", "fields.flow.reason": "timeout",
		"fields.flow.tcp_flags_toserver": "SYN", "fields.flow.tcp_flags_toclient": "", "network.dst_port": 23})
	check(t, &tsv[2], map[string]any{"network.transport": "udp", "network.src_ip": "fe80::1", "fields.flow.midstream": false})
	check(t, &js[1], map[string]any{"kind": "dns", "action": "query", "time": "2024-03-01T10:00:01Z",
		"fields.dns.question.name": "x.duckdns.org", "fields.dns.question.type": "A", "fields.dns.header_flags": []string{"RD"}})
	check(t, &js[2], map[string]any{"action": "response", "outcome": "failure", "time": "2024-03-01T10:00:01.002Z",
		"fields.dns.response_code": "NXDOMAIN", "fields.dns.answers_count": 0})
}

// TestErrors: bad input says what and where.
func TestErrors(t *testing.T) {
	f := func(in, path, want string) {
		t.Helper()
		_, _, err := readAll(t, "in.log", []byte(in), path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", in, err, want)
		}
	}
	head := "#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n"
	f(head+"1.0\tC\t10.0.0.1\t1\t10.0.0.2\t2\n", "", "in.log:4: 6 fields where the #fields header names 7")
	f(head+"x\tC\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\n", "", `in.log:4: field ts: "x" is not a time`)
	f(head+"1.0\tC\t10.0.0.300\t1\t10.0.0.2\t2\ttcp\n", "", `field id.orig_h: "10.0.0.300" is not an IP address`)
	f(head+"1.0\tC\t10.0.0.1\t70000\t10.0.0.2\t2\ttcp\n", "", `field id.orig_p: "70000" is not a port`)
	f("#separator \\x09\n#path\tconn\n#fields\tts\tuid\n", "", "conn log without the field id.orig_h")
	f("#separator \\x09\n#path\tconn\n#fields\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tduration\n1.0\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\t1e300\n", "", "field duration: 1e+300 is out of range")
	f("#separator \\x09\n#path\tconn\n#fields\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n999999999999.0\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\n", "", "is not a time")
	f("#separator \\x09\n#path\tx509\n#fields\tts\n", "", `cannot convert log "x509"`)
	f("1.0\tC\n", "conn", "a record before the #fields header")
	f(`{"ts":1,"id.orig_h":"a"`+"\n", "conn", "in.log:1: not a JSON object")
	f(`{"ts":"yesterday","id.orig_h":"10.0.0.1","id.resp_h":"10.0.0.2"}`+"\n", "conn", `field ts: "yesterday" is not an ISO 8601 time`)
}

func FuzzTSV(f *testing.F) {
	f.Add([]byte(tsvConn))
	f.Add([]byte("#separator \\x09\n#path\tdns\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tquery\tanswers\tTTLs\trcode_name\n1.5\tC\t::1\t1\t::2\t53\ta\\x09b\t1.2.3.4,x\t3.0,4\tNOERROR\n"))
	f.Add([]byte("#separator \\x09\n#path\tmqtt_publish\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tfrom_client\tpayload\tpayload_len\n1\tC\t1.1.1.1\t1\t2.2.2.2\t1883\tT\t\\xff\\xfe\t2\n"))
	f.Add([]byte("#separator \\x09\n#path\tmqtt_publish\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tfrom_client\ttopic\tpayload\tpayload_len\n1\tC\t1.1.1.1\t1\t2.2.2.2\t1883\tT\t$aws/things/x/shadow/update\t{\"state\":{\"desired\":{\"a\":1}}}\t29\n"))
	f.Add([]byte("#separator ,\n#path,modbus\n#fields,ts,id.orig_h,id.orig_p,id.resp_h,id.resp_p,func,exception\n1,1.1.1.1,1,2.2.2.2,502,unknown-200,-\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRead(t, b, "")
	})
}

func FuzzJSON(f *testing.F) {
	f.Add([]byte(jsonConn))
	for _, p := range Paths() {
		f.Add([]byte(`{"_path":"` + p + `","ts":1.5,"uid":"C","id.orig_h":"1.1.1.1","id.orig_p":1,"id.resp_h":"2.2.2.2","id.resp_p":2,"answers":["a"],"topics":["t"],"func":"READ_COILS","name":"n","note":"A::B","version":"TLSv13","cipher":"TLS_AES_128_GCM_SHA256"}` + "\n"))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzRead(t, b, "conn")
	})
}

// fuzzRead reads b to its end, going on after errors as a caller may:
// no panic, every event encodes.
func fuzzRead(t *testing.T, b []byte, path string) {
	r := NewReader(bytes.NewReader(b), Options{Name: "fuzz", Path: path})
	var evs []proto.Event
	for i := 0; i < 10000; i++ {
		var err error
		evs, err = r.Next(evs[:0])
		for j := range evs {
			if _, err := evs[j].AppendJSON(nil); err != nil {
				t.Fatalf("event does not encode: %v", err)
			}
		}
		if err == io.EOF || errors.Is(err, ErrUnsupported) {
			return
		}
	}
}

// TestLongLine: a line longer than MaxLine is a record error, and the
// reader goes on with the next line.
func TestLongLine(t *testing.T) {
	head := "#separator \\x09\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n"
	in := head + "1.0\t" + strings.Repeat("C", MaxLine+10) + "\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\n" + "2.0\tC2\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\n"
	r := NewReader(strings.NewReader(in), Options{Name: "big.log"})
	_, err := r.Next(nil)
	var re *RecordError
	if !errors.As(err, &re) || re.Line != 4 || !strings.Contains(err.Error(), "big.log:4: line longer than") {
		t.Fatalf("got %v", err)
	}
	evs, err := r.Next(nil)
	if err != nil || len(evs) != 1 {
		t.Fatalf("after the long line: %v %d", err, len(evs))
	}
	if v, _ := evs[0].Fields.Get("flow.id"); v != "C2" {
		t.Errorf("flow.id %v", v)
	}
}

// TestIoT23Labels: the labelled conn logs of IoT-23 put "label" and
// "detailed-label" after tunnel_parents three spaces apart (the layout of
// that data set's conn.log.labeled files; this sample is written for the
// test, not taken from it).
func TestIoT23Labels(t *testing.T) {
	in := "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n" +
		"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents   label   detailed-label\n" +
		"#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]   string   string\n" +
		"1532106680.769264\tCx1\t192.168.100.103\t43763\t203.0.113.107\t23\ttcp\t-\t2.999169\t0\t0\tS0\t-\t-\t0\tS\t3\t180\t0\t0\t-   Malicious   PartOfAHorizontalPortScan\n" +
		"1532106681.000000\tCx2\t192.168.100.103\t43764\t192.168.100.1\t53\tudp\tdns\t0.01\t30\t60\tSF\t-\t-\t0\tDd\t1\t58\t1\t88\t-   Benign   -\n"
	evs, _, err := readAll(t, "conn.log.labeled", []byte(in), "")
	if err != nil || len(evs) != 2 {
		t.Fatalf("%v, %d events", err, len(evs))
	}
	check(t, &evs[0], map[string]any{"network.dst_port": 23, "fields.flow.state": "syn_sent",
		"fields.zeek.label": "Malicious", "fields.zeek.detailed_label": "PartOfAHorizontalPortScan"})
	check(t, &evs[1], map[string]any{"fields.zeek.label": "Benign", "fields.zeek.detailed_label": nil})
}
