package mqtt

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
)

type sink []vigil.Event

func (s *sink) Emit(ev proto.Event) { *s = append(*s, ev.Vigil()) }

func ctx(d proto.Direction) *proto.Context {
	return &proto.Context{
		Time: time.Unix(1700000000, 0).UTC(),
		Flow: vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.0.2"), SrcPort: 40000,
			DstIP: netip.MustParseAddr("10.0.0.1"), DstPort: 1883},
		Dir: d,
	}
}

// str encodes an MQTT length-prefixed string.
func str(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

// msg builds a control packet from its first byte and body.
func msg(h byte, parts ...[]byte) []byte {
	var body []byte
	for _, p := range parts {
		body = append(body, p...)
	}
	out := []byte{h}
	l := len(body)
	for {
		b := byte(l % 128)
		l /= 128
		if l > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if l == 0 {
			break
		}
	}
	return append(out, body...)
}

func connect5() []byte {
	props := []byte{5, 0x11, 0, 0, 0, 60, 0x21, 0, 20} // session expiry 60, receive max 20 (length 8)
	props[0] = byte(len(props) - 1)
	return msg(0x10, str("MQTT"), []byte{5, 0xc2 | 0x04, 0, 30}, props, str("dev-1"),
		[]byte{0}, str("will/t"), str("bye"), str("alice"), str("s3cret-pw"))
}

func run(t *testing.T, p *Parser, d proto.Direction, data []byte) sink {
	t.Helper()
	var s sink
	if n := p.Parse(ctx(d), data, &s); n != len(data) {
		t.Fatalf("consumed %d of %d", n, len(data))
	}
	return s
}

func TestConnectNeverKeepsPassword(t *testing.T) {
	p := New(Config{})
	evs := run(t, p, proto.ToServer, connect5())
	if len(evs) != 1 {
		t.Fatalf("events: %+v", evs)
	}
	f := evs[0].Fields
	want := map[string]any{
		"mqtt.client_id": "dev-1", "mqtt.username": "alice", "mqtt.password_present": true,
		"mqtt.protocol_version": 5.0, "mqtt.protocol_name": "MQTT", "mqtt.will.topic": "will/t",
		"mqtt.will.message": "bye", "mqtt.keep_alive": 30.0, "mqtt.properties.receive_maximum": 20.0,
		"mqtt.properties.session_expiry_interval": 60.0, "mqtt.flags.clean_session": true,
	}
	for k, v := range want {
		if !reflect.DeepEqual(f[k], v) {
			t.Errorf("%s = %#v, want %#v", k, f[k], v)
		}
	}
	b, _ := json.Marshal(evs)
	if strings.Contains(string(b), "s3cret") {
		t.Fatalf("the password leaked: %s", b)
	}
}

// TestSplitDelivery feeds a session byte by byte and whole: the events
// must be the same.
func TestSplitDelivery(t *testing.T) {
	c2s := append(connect5(), msg(0x32, str("a/b"), []byte{0, 7}, []byte{0}, []byte("hello"))...)
	c2s = append(c2s, msg(0x82, []byte{0, 8}, []byte{0}, str("x/#"), []byte{1}, str("y/+"), []byte{2})...)
	s2c := append(msg(0x20, []byte{0, 0, 0}), msg(0x40, []byte{0, 7})...)
	s2c = append(s2c, msg(0x90, []byte{0, 8}, []byte{0}, []byte{1, 0x80})...)

	whole := New(Config{})
	var all sink
	all = append(all, run(t, whole, proto.ToServer, c2s[:len(connect5())])...)
	all = append(all, run(t, whole, proto.ToClient, s2c[:5])...)
	all = append(all, run(t, whole, proto.ToServer, c2s[len(connect5()):])...)
	all = append(all, run(t, whole, proto.ToClient, s2c[5:])...)

	split := New(Config{})
	var got sink
	feed := func(d proto.Direction, data []byte) {
		buf := []byte{}
		for _, b := range data {
			buf = append(buf, b)
			n := split.Parse(ctx(d), buf, &got)
			buf = buf[n:]
		}
		if len(buf) != 0 {
			t.Fatalf("%d bytes left", len(buf))
		}
	}
	feed(proto.ToServer, c2s[:len(connect5())])
	feed(proto.ToClient, s2c[:5])
	feed(proto.ToServer, c2s[len(connect5()):])
	feed(proto.ToClient, s2c[5:])
	if !reflect.DeepEqual(all, got) {
		t.Fatalf("split delivery differs:\n%+v\n%+v", all, got)
	}
	var actions []string
	for _, e := range all {
		actions = append(actions, e.Action)
		if e.Action == "anomaly" {
			t.Errorf("unexpected anomaly %v", e.Fields)
		}
	}
	if strings.Join(actions, ",") != "connect,connack,publish,subscribe,puback,suback" {
		t.Fatalf("actions %v", actions)
	}
	sub := all[3].Fields
	if !reflect.DeepEqual(sub["mqtt.topics"], []string{"x/#", "y/+"}) || !reflect.DeepEqual(sub["mqtt.topics_qos"], []string{"1", "2"}) {
		t.Fatalf("subscribe %v", sub)
	}
	if !reflect.DeepEqual(all[5].Fields["mqtt.reason_codes"], []string{"1", "128"}) {
		t.Fatalf("suback %v", all[5].Fields)
	}
}

func TestAnomalies(t *testing.T) {
	f := func(name string, want string, msgs ...[]byte) {
		t.Helper()
		p := New(Config{})
		var s sink
		for _, m := range msgs {
			p.Parse(ctx(proto.ToServer), m, &s)
		}
		for _, e := range s {
			if e.Action == "anomaly" && e.Fields["anomaly.event"] == want {
				if e.Fields["anomaly.detail"] == "" {
					t.Errorf("%s: anomaly without detail", name)
				}
				return
			}
		}
		t.Errorf("%s: no %s anomaly in %+v", name, want, s)
	}
	f("qos 3", AnomalyInvalidQoS, connect5(), msg(0x36, str("t"), []byte{0, 1}))
	f("bad varint", AnomalyMalformed, []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01})
	f("property overrun", AnomalyMalformed, msg(0x10, str("MQTT"), []byte{5, 0x02, 0, 30}, []byte{50, 0x11}))
	f("unknown level", AnomalyMalformed, msg(0x10, str("MQTT"), []byte{9, 0x02, 0, 30}, str("x")))
	f("type 0", AnomalyUnassignedType, []byte{0x00, 0x00})
	f("publish first", AnomalyUnintroduced, msg(0x30, str("t"), []byte("x")))
	f("double connect", AnomalyDoubleConnect, connect5(), connect5())
	f("subscribe flags", AnomalyInvalidFlags, msg(0x80, []byte{0, 1}, str("t"), []byte{0}))
	f("truncated connect", AnomalyMalformed, msg(0x10, str("MQTT"), []byte{4}))
	f("empty subscribe", AnomalyEmptySubscription, msg(0x82, []byte{0, 1}))
}

func TestLargePublishIsSkippedNotBuffered(t *testing.T) {
	p := New(Config{MaxMessage: 1024, PayloadPreview: 8})
	big := msg(0x30, str("big"), []byte(strings.Repeat("z", 5000)))
	big = append(big, msg(0xe0)...)
	var s sink
	n := p.Parse(ctx(proto.ToServer), big[:1500], &s)
	if n != 1500 || len(s) != 2 { // unintroduced + publish
		t.Fatalf("consumed %d, events %+v", n, s)
	}
	f := s[1].Fields
	if f["mqtt.payload_size"] != 5000.0 || f["mqtt.payload"] != "zzzzzzzz" || f["mqtt.payload_truncated"] != true {
		t.Fatalf("fields %v", f)
	}
	run(t, p, proto.ToServer, big[1500:3000])
	evs := run(t, p, proto.ToServer, big[3000:])
	if len(evs) != 2 || evs[1].Action != "disconnect" { // unintroduced + disconnect
		t.Fatalf("after skip: %+v", evs)
	}
}

func TestProbe(t *testing.T) {
	if !Probe(connect5()) || Probe([]byte("GET / HTTP/1.1\r\n")) || Probe(msg(0x10, str("HTTP"), []byte{4, 0, 0, 0})) {
		t.Fatal("probe")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(connect5(), []byte{0x20, 2, 0, 0}, 3)
	f.Add(msg(0x32, str("a/b"), []byte{0, 7}, []byte("x")), msg(0x40, []byte{0, 7}), 1)
	f.Add(msg(0x82, []byte{0, 8}, str("x/#"), []byte{1}), msg(0x90, []byte{0, 8, 1}), 0)
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff}, []byte{}, 2)
	f.Add(append(msg(0x10, str("MQTT"), []byte{4, 0x02, 0, 60}, str("pump-1")), msg(0x30, str("$aws/things/pump-1/shadow/update"), []byte(`{"state":{"desired":{"rpm":{"max":900}}}}`))...),
		msg(0x30, str("$iothub/twin/PATCH/properties/desired/?$version=2"), []byte(`{"a":1,"b":{"c":2}}`)), 0)
	f.Add(msg(0x30, str("$aws/things/p/shadow/name/h/update"), []byte(`{"state":{"reported":{"t":1}}}`)), msg(0x30, str("$aws/things/0/shadow/name/update"), []byte(`{}`)), 0)
	f.Fuzz(func(t *testing.T, a, b []byte, split int) {
		p := New(Config{MaxMessage: 256, PayloadPreview: 16})
		var s sink
		if split < 0 {
			split = -split
		}
		if len(a) > 0 {
			split %= len(a) + 1
		} else {
			split = 0
		}
		rest := a[:split]
		for i, chunk := range [][]byte{a[:split], a[split:], b} {
			d := proto.ToServer
			if i == 2 {
				d = proto.ToClient
			}
			buf := append(append([]byte{}, rest...), chunk...)
			if i == 2 {
				buf = chunk
			}
			c := ctx(d)
			c.Midstream = split%2 == 1
			n := p.Parse(c, buf, &s)
			if n < 0 || n > len(buf) {
				t.Fatalf("consumed %d of %d", n, len(buf))
			}
			rest = buf[n:]
		}
		if p.broken {
			found := false
			for _, e := range s {
				found = found || e.Action == "anomaly"
			}
			if !found {
				t.Fatal("gave up without an anomaly event")
			}
		}
	})
}

// TestMidstreamResync starts in the middle of a PUBLISH: the tail is
// skipped without an anomaly and the next messages are decoded.
func TestMidstreamResync(t *testing.T) {
	pub := msg(0x30, str("plant/temp"), []byte("21.5 degrees"))
	data := append(append([]byte{}, pub[9:]...), msg(0xc0)...)
	for i := 0; i < 5; i++ {
		data = append(data, pub...)
	}
	c := ctx(proto.ToServer)
	c.Midstream = true
	p := New(Config{})
	var s sink
	n := p.Parse(c, data[:3], &s)
	if len(s) != 0 {
		t.Fatalf("events %v", s)
	}
	if m := p.Parse(c, data[n:], &s); n+m != len(data) {
		t.Fatalf("consumed %d of %d", n+m, len(data))
	}
	var acts []string
	for _, e := range s {
		acts = append(acts, e.Action)
	}
	if strings.Join(acts, ",") != "pingreq,publish,publish,publish,publish,publish" || s[1].Fields["mqtt.topic"] != "plant/temp" {
		t.Fatalf("%v %+v", acts, s)
	}
	// Not mid-stream, the same bytes are malformed.
	s = nil
	New(Config{}).Parse(ctx(proto.ToServer), data, &s)
	if len(s) == 0 || s[0].Fields["anomaly.event"] == nil {
		t.Fatalf("%+v", s)
	}
}
