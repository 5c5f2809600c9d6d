package suricata

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/proto"
)

// eve holds EVE records written for these tests from what Suricata's
// documentation (docs.suricata.io, "Eve JSON Format") and the expected
// output of suricata-verify's MQTT and Modbus tests publish of each event
// type: the field names, their nesting and their value formats.
const eve = `{"timestamp":"2017-04-07T22:24:37.251547+0100","flow_id":586497171462735,"pcap_cnt":53381,"event_type":"alert","src_ip":"192.168.2.14","src_port":50096,"dest_ip":"209.53.113.5","dest_port":80,"proto":"TCP","tx_id":4,"alert":{"action":"allowed","gid":1,"signature_id":2018358,"rev":10,"signature":"ET HUNTING GENERIC SUSPICIOUS POST to Dotted Quad with Fake Browser 1","category":"Potentially Bad Traffic","severity":2},"app_proto":"http"}
{"timestamp":"2017-04-07T22:24:47.000000+0100","flow_id":586497171462735,"event_type":"flow","src_ip":"192.168.2.14","src_port":50096,"dest_ip":"209.53.113.5","dest_port":80,"proto":"TCP","app_proto":"http","flow":{"pkts_toserver":6,"pkts_toclient":5,"bytes_toserver":1080,"bytes_toclient":2920,"start":"2017-04-07T22:24:37.214016+0100","end":"2017-04-07T22:24:37.598542+0100","age":0,"state":"closed","reason":"timeout","alerted":true},"tcp":{"tcp_flags":"1b","tcp_flags_ts":"1b","tcp_flags_tc":"1b","syn":true,"fin":true,"psh":true,"ack":true,"state":"closed"}}
{"timestamp":"2024-05-01T10:00:00.100000+0000","flow_id":1234,"event_type":"dns","src_ip":"10.0.0.5","src_port":40000,"dest_ip":"10.0.0.1","dest_port":53,"proto":"UDP","dns":{"type":"query","id":16000,"rrname":"pool.minexmr.com","rrtype":"A","tx_id":0}}
{"timestamp":"2024-05-01T10:00:00.102000+0000","flow_id":1234,"event_type":"dns","src_ip":"10.0.0.1","src_port":53,"dest_ip":"10.0.0.5","dest_port":40000,"proto":"UDP","dns":{"version":2,"type":"answer","id":16000,"flags":"8180","qr":true,"rd":true,"ra":true,"rrname":"pool.minexmr.com","rrtype":"A","rcode":"NOERROR","answers":[{"rrname":"pool.minexmr.com","rrtype":"A","ttl":300,"rdata":"203.0.113.9"}]}}
{"timestamp":"2024-05-01T10:00:01.000000+0000","flow_id":1235,"event_type":"dns","src_ip":"10.0.0.5","src_port":40001,"dest_ip":"10.0.0.1","dest_port":53,"proto":"UDP","dns":{"version":3,"type":"response","id":7,"rd":true,"ra":true,"queries":[{"rrname":"x.duckdns.org","rrtype":"A"}],"rcode":"NXDOMAIN"}}
{"timestamp":"2024-05-01T10:00:02.000000+0000","flow_id":1236,"event_type":"http","src_ip":"10.0.0.5","src_port":40002,"dest_ip":"10.0.0.9","dest_port":80,"proto":"TCP","tx_id":0,"http":{"hostname":"10.0.0.9","url":"/cgi-bin/luci?x=1","http_user_agent":"Mozilla/5.0","http_content_type":"text/html","http_method":"GET","protocol":"HTTP/1.1","status":404,"length":120}}
{"timestamp":"2024-05-01T10:00:03.000000+0000","flow_id":1237,"event_type":"tls","src_ip":"10.0.0.5","src_port":40003,"dest_ip":"198.51.100.7","dest_port":8883,"proto":"TCP","tls":{"subject":"CN=broker.example","issuerdn":"CN=Example CA","serial":"01","fingerprint":"aa:bb","sni":"broker.example","version":"TLS 1.2","notbefore":"2024-01-01T00:00:00","notafter":"2025-01-01T00:00:00","ja3":{"hash":"e7d705a3286e19ea42f587b344ee6865","string":"771,49195-49199,0-11-10,29-23,0"},"ja3s":{"hash":"fd4bc6cea4877646ccd62f0792ec0b62","string":"771,49199,65281-11"}}}
{"timestamp":"2024-05-01T10:00:04.000000+0000","flow_id":1238,"event_type":"mqtt","src_ip":"10.0.0.5","src_port":40004,"dest_ip":"10.0.0.2","dest_port":1883,"proto":"TCP","mqtt":{"connect":{"qos":0,"retain":false,"dup":false,"protocol_string":"MQTT","protocol_version":5,"flags":{"username":true,"password":true,"will":false,"will_retain":false,"clean_session":true},"client_id":"","username":"user","password":"pass","properties":{"receive_maximum":20}},"connack":{"qos":0,"retain":false,"dup":false,"session_present":false,"return_code":0,"properties":{"topic_alias_maximum":10}}}}
{"timestamp":"2024-05-01T10:00:05.000000+0000","flow_id":1238,"event_type":"mqtt","src_ip":"10.0.0.5","src_port":40004,"dest_ip":"10.0.0.2","dest_port":1883,"proto":"TCP","mqtt":{"publish":{"qos":1,"retain":false,"dup":false,"topic":"topicX","message_id":3,"message":"hello","truncated":true,"skipped_length":1010},"puback":{"qos":0,"retain":false,"dup":false,"message_id":3}}}
{"timestamp":"2024-05-01T10:00:06.000000+0000","flow_id":1238,"event_type":"mqtt","src_ip":"10.0.0.5","src_port":40004,"dest_ip":"10.0.0.2","dest_port":1883,"proto":"TCP","mqtt":{"subscribe":{"qos":1,"retain":false,"dup":false,"message_id":1,"topics":[{"topic":"topicX","qos":0},{"topic":"#","qos":1}]},"suback":{"qos":0,"retain":false,"dup":false,"message_id":1,"qos_granted":[0,1]}}}
{"timestamp":"2024-05-01T10:00:07.000000+0000","flow_id":1239,"event_type":"modbus","src_ip":"10.0.0.9","src_port":3082,"dest_ip":"10.0.0.3","dest_port":502,"proto":"TCP","modbus":{"id":10,"request":{"transaction_id":1,"protocol_id":0,"unit_id":10,"function_raw":6,"function_code":"WrSingleReg","access_type":"WRITE | HOLDING","category":"PUBLIC_ASSIGNED","error_flags":"NONE","write":{"address":40,"data":7}},"response":{"transaction_id":1,"protocol_id":0,"unit_id":10,"function_raw":134,"function_code":"WrSingleReg","access_type":"WRITE | HOLDING","category":"PUBLIC_ASSIGNED","error_flags":"NONE","exception":{"raw":2,"code":"IllegalDataAddress"}}}}
{"timestamp":"2024-05-01T10:00:08.000000+0000","flow_id":1238,"event_type":"anomaly","src_ip":"10.0.0.5","src_port":40004,"dest_ip":"10.0.0.2","dest_port":1883,"proto":"TCP","app_proto":"mqtt","anomaly":{"app_proto":"mqtt","type":"applayer","event":"malformed_traffic","layer":"proto_parser"}}
{"timestamp":"2024-05-01T10:00:09.000000+0000","event_type":"anomaly","src_ip":"10.0.0.5","dest_ip":"10.0.0.2","proto":"UDP","anomaly":{"type":"decode","event":"decoder.ipv4.frag_overlap"}}
{"timestamp":"2024-05-01T10:00:10.000000+0000","event_type":"stats","stats":{"uptime":10}}
`

func readAll(t testing.TB, b []byte) ([]proto.Event, Stats, error) {
	t.Helper()
	r := NewReader(bytes.NewReader(b), Options{Name: "eve.json"})
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
			t.Errorf("%s %s: %s: got %s, want %s", ev.Kind, ev.Action, k, gb, wb)
		}
	}
}

func TestEVE(t *testing.T) {
	evs, st, err := readAll(t, []byte(eve))
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 14 || st.Skipped != 1 {
		t.Errorf("stats %+v", st)
	}
	var got []string
	for i := range evs {
		got = append(got, evs[i].Kind+"/"+evs[i].Action)
	}
	want := "alert/alert flow/flow dns/query dns/response dns/response http/request http/response tls/client_hello tls/server_hello " +
		"mqtt/connect mqtt/connack mqtt/publish mqtt/puback mqtt/subscribe mqtt/suback modbus/request modbus/response mqtt/anomaly ip/anomaly"
	if g := strings.Join(got, " "); g != want {
		t.Fatalf("events:\n got %s\nwant %s", g, want)
	}
	check(t, &evs[0], map[string]any{
		"time": "2017-04-07T21:24:37.251547Z", "source": "sensor", "severity": "medium",
		"network.src_ip": "192.168.2.14", "network.dst_port": 80, "network.transport": "tcp",
		"fields.flow.id": "0002156a83911a4f", "fields.observer.product": "suricata",
		"fields.alert.signature_id": 2018358, "fields.alert.gid": 1, "fields.alert.rev": 10,
		"fields.alert.signature": "ET HUNTING GENERIC SUSPICIOUS POST to Dotted Quad with Fake Browser 1",
		"fields.alert.category":  "Potentially Bad Traffic", "fields.alert.severity": 2, "fields.alert.action": "allowed",
		"fields.flow.app_proto": "http",
	})
	check(t, &evs[1], map[string]any{
		"time": "2017-04-07T21:24:37.598542Z", "fields.flow.start": "2017-04-07T21:24:37.214016Z",
		"fields.flow.duration": 0.384526, "fields.flow.reason": "end", "fields.flow.state": "closed",
		"fields.flow.pkts_toserver": 6, "fields.flow.bytes_toclient": 2920, "fields.flow.app_proto": "http",
		"fields.flow.tcp_flags_toserver": "FIN,SYN,PSH,ACK", "fields.flow.midstream": false, "fields.flow.alerted": true,
	})
	check(t, &evs[2], map[string]any{"network.src_ip": "10.0.0.5", "fields.dns.id": 16000,
		"fields.dns.question.name": "pool.minexmr.com", "fields.dns.question.type": "A"})
	check(t, &evs[3], map[string]any{"network.src_ip": "10.0.0.1", "network.src_port": 53, "outcome": "success",
		"fields.dns.response_code": "NOERROR", "fields.dns.answers.data": []string{"203.0.113.9"},
		"fields.dns.answers.type": []string{"A"}, "fields.dns.answers.ttl": 300, "fields.dns.header_flags": []string{"RD", "RA"}})
	check(t, &evs[4], map[string]any{"network.src_ip": "10.0.0.1", "outcome": "failure",
		"fields.dns.question.name": "x.duckdns.org", "fields.dns.response_code": "NXDOMAIN", "fields.dns.answers_count": 0})
	check(t, &evs[5], map[string]any{"fields.http.method": "GET", "fields.http.path": "/cgi-bin/luci", "fields.http.query": "x=1",
		"fields.http.host": "10.0.0.9", "fields.http.version": "1.1", "fields.http.user_agent": "Mozilla/5.0"})
	check(t, &evs[6], map[string]any{"network.src_ip": "10.0.0.9", "outcome": "failure", "fields.http.status_code": 404})
	check(t, &evs[7], map[string]any{"fields.tls.client.server_name": "broker.example", "fields.tls.client.ja3": "e7d705a3286e19ea42f587b344ee6865"})
	check(t, &evs[8], map[string]any{"network.src_port": 8883, "fields.tls.version": "1.2", "fields.tls.server.ja3s": "fd4bc6cea4877646ccd62f0792ec0b62",
		"fields.tls.server.hash.sha1": "aabb", "fields.tls.server.x509.serial_number": "01"})
	check(t, &evs[9], map[string]any{"fields.mqtt.type": "connect", "fields.mqtt.protocol_version": 5, "fields.mqtt.protocol_name": "MQTT",
		"fields.mqtt.username": "user", "fields.mqtt.password_present": true, "fields.mqtt.flags.username": true, "fields.mqtt.client_id": ""})
	if _, ok := eventJSON(t, &evs[9])["fields"].(map[string]any)["mqtt.password"]; ok {
		t.Error("the MQTT password was copied")
	}
	check(t, &evs[10], map[string]any{"network.src_port": 1883, "outcome": "success", "fields.mqtt.reason_code": 0})
	check(t, &evs[11], map[string]any{"network.src_ip": "10.0.0.5", "fields.mqtt.topic": "topicX", "fields.mqtt.payload": "hello",
		"fields.mqtt.payload_size": 1015, "fields.mqtt.payload_truncated": true, "fields.mqtt.qos": 1, "fields.mqtt.message_id": 3})
	check(t, &evs[13], map[string]any{"fields.mqtt.topics": []string{"topicX", "#"}, "fields.mqtt.topics_qos": []string{"0", "1"}})
	check(t, &evs[14], map[string]any{"network.src_ip": "10.0.0.2", "fields.mqtt.reason_codes": []string{"0", "1"}})
	check(t, &evs[15], map[string]any{"fields.modbus.function_code": 6, "fields.modbus.function": "write_single_register",
		"fields.modbus.write": true, "fields.modbus.table": "holding_registers", "fields.modbus.address": 40, "fields.modbus.unit_id": 10})
	check(t, &evs[16], map[string]any{"network.src_port": 502, "outcome": "failure", "fields.modbus.exception": true,
		"fields.modbus.exception_code": 2, "fields.modbus.exception_name": "illegal_data_address", "fields.modbus.function_code": 6})
	check(t, &evs[17], map[string]any{"fields.anomaly.event": "malformed_traffic", "fields.anomaly.layer": "proto_parser", "fields.anomaly.app_proto": "mqtt"})
	check(t, &evs[18], map[string]any{"fields.anomaly.event": "decoder.ipv4.frag_overlap", "fields.anomaly.layer": "decoder", "severity": "low"})
}

func TestErrors(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		_, _, err := readAll(t, []byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", in, err, want)
		}
	}
	f("{\"event_type\":\"flow\"\n", "eve.json:1: not a JSON object")
	f(`{"event_type":"flow"}`+"\n", "eve.json:1: timestamp: missing")
	f(`{"event_type":"dns","timestamp":"yesterday"}`, `timestamp: "yesterday" is not a time`)
	f(`{"event_type":"alert","timestamp":"2024-05-01T10:00:00Z","src_ip":"1.2.3","dest_ip":"1.2.3.4"}`, `src_ip: "1.2.3" is not an IP address`)
	f(`{"event_type":"alert","timestamp":"2024-05-01T10:00:00Z","alert":{}}`, "alert.signature_id: missing")
	f(`{"timestamp":"2024-05-01T10:00:00Z"}`, "event_type: missing")
	f("\n\n"+`{"event_type":"flow","timestamp":"2024-05-01T10:00:00Z","src_ip":"1.1.1.1","dest_ip":"2.2.2.2","src_port":70000}`, "eve.json:3: src_port: 70000 is not a port")
}

func FuzzEVE(f *testing.F) {
	for _, l := range strings.Split(eve, "\n") {
		f.Add([]byte(l + "\n"))
	}
	f.Add([]byte(`{"timestamp":"2026-03-02T22:44:02.000000+0000","flow_id":7,"event_type":"mqtt","src_ip":"10.0.9.5","src_port":41000,"dest_ip":"10.0.9.1","dest_port":1883,"proto":"TCP","mqtt":{"publish":{"topic":"$aws/things/b/shadow/name/h/update","message":"{\"state\":{\"desired\":{\"h\":{\"s\":85}}}}"}}}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b), Options{Name: "fuzz"})
		var evs []proto.Event
		for i := 0; i < 10000; i++ {
			var err error
			evs, err = r.Next(evs[:0])
			for j := range evs {
				if _, err := evs[j].AppendJSON(nil); err != nil {
					t.Fatalf("event does not encode: %v", err)
				}
			}
			if err == io.EOF {
				return
			}
		}
	})
}
