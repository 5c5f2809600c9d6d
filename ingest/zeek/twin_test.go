package zeek

import "testing"

// TestMQTTTwinUpdate: a Zeek mqtt_publish record on an Azure twin patch
// topic gives the publish and its twin event (no device: Zeek's record
// does not carry the client id).
func TestMQTTTwinUpdate(t *testing.T) {
	log := "#separator \\x09\n#path\tmqtt_publish\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tfrom_client\tretain\tqos\tstatus\ttopic\tpayload\tpayload_len\n" +
		"1772491442.000000\tCx1\t10.0.9.1\t1883\t10.0.9.5\t41000\tT\tF\tat most once\tok\t$iothub/twin/PATCH/properties/reported/?$rid=3\t{\"maxRpm\":1500,\"$version\":4}\t28\n" +
		"1772491443.000000\tCx2\t10.0.9.5\t41000\t10.0.9.1\t1883\tT\tF\tat most once\tok\t$aws/things/pump-2/shadow/update\t{\"state\":{\"desired\":{\"rpm\":90\t400\n"
	evs, _, err := readAll(t, "mqtt_publish.log", []byte(log), "")
	if err != nil || len(evs) != 4 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	m := eventJSON(t, &evs[1])
	f, _ := m["fields"].(map[string]any)
	if m["kind"] != "twin" || f["twin.reported.maxRpm"] != 1500.0 || m["device_id"] != nil {
		t.Errorf("azure twin %v", m)
	}
	m = eventJSON(t, &evs[3])
	f, _ = m["fields"].(map[string]any)
	if m["device_id"] != "pump-2" || f["twin.truncated"] != true || f["twin.desired.rpm"] != 90.0 {
		t.Errorf("aws twin %v", m)
	}
}
