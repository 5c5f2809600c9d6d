package mqtt

import (
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/proto"
)

// TestTwinUpdates: publishes on AWS shadow and Azure twin topics give a
// twin event after the publish, with the document's numbers flattened,
// even past the payload preview.
func TestTwinUpdates(t *testing.T) {
	p := New(Config{PayloadPreview: 16})
	conn := msg(0x10, str("MQTT"), []byte{4, 0x02, 0, 60}, str("backend-7"))
	run(t, p, proto.ToServer, conn)
	run(t, p, proto.ToClient, msg(0x20, []byte{0, 0}))
	doc := `{"state":{"desired":{"heater":{"setpoint":85.5,"mode":"eco"}},"reported":{"heater":{"setpoint":21}}},"clientToken":"` + strings.Repeat("x", 300) + `"}`
	evs := run(t, p, proto.ToServer, msg(0x30, str("$aws/things/boiler-3/shadow/name/heater/update"), []byte(doc)))
	if len(evs) != 2 || evs[0].Kind != "mqtt" || evs[1].Kind != "twin" {
		t.Fatalf("events %+v", evs)
	}
	tw := evs[1]
	want := map[string]any{
		"twin.platform": "aws_iot_shadow", "twin.thing": "boiler-3", "twin.shadow": "heater", "mqtt.client_id": "backend-7",
		"twin.desired.heater.setpoint": 85.5, "twin.reported.heater.setpoint": 21.0, "twin.params": 2.0, "twin.truncated": false,
		"twin.direction": "to_server",
	}
	for k, v := range want {
		if tw.Fields[k] != v {
			t.Errorf("%s = %v, want %v", k, tw.Fields[k], v)
		}
	}
	if tw.DeviceID != "boiler-3" || tw.Action != "update" || tw.Category != "configuration" {
		t.Errorf("event %+v", tw)
	}
	if s, _ := tw.Fields["twin.sections"].([]string); len(s) != 2 || s[0] != "desired" || s[1] != "reported" {
		t.Errorf("sections %v", tw.Fields["twin.sections"])
	}

	// Azure: the device is the connection's client; the hub delivers
	// the desired patch to it.
	az := New(Config{})
	run(t, az, proto.ToServer, msg(0x10, str("MQTT"), []byte{4, 0x02, 0, 60}, str("pump-12")))
	run(t, az, proto.ToClient, msg(0x20, []byte{0, 0}))
	evs = run(t, az, proto.ToClient, msg(0x30, str("$iothub/twin/PATCH/properties/desired/?$version=9"), []byte(`{"maxRpm":9000,"$version":9}`)))
	if len(evs) != 2 {
		t.Fatalf("events %+v", evs)
	}
	tw = evs[1]
	if tw.DeviceID != "pump-12" || tw.Fields["twin.desired.maxRpm"] != 9000.0 || tw.Fields["twin.direction"] != "to_client" || tw.Fields["mqtt.client_id"] != nil {
		t.Errorf("azure twin %+v", tw)
	}

	// Not JSON, and other topics: no parameters, or no twin event.
	evs = run(t, az, proto.ToServer, msg(0x30, str("$iothub/twin/PATCH/properties/reported/?$rid=1"), []byte(`garbage`)))
	if len(evs) != 2 || evs[1].Fields["twin.error"] == nil || evs[1].Fields["twin.params"] != 0.0 {
		t.Errorf("garbage twin %+v", evs)
	}
	if evs := run(t, az, proto.ToServer, msg(0x30, str("$aws/things/x/shadow/update/accepted"), []byte(`{"state":{}}`))); len(evs) != 1 {
		t.Errorf("accepted topic: %+v", evs)
	}
}
