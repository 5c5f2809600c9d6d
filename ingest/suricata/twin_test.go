package suricata

import "testing"

// TestMQTTTwinUpdate: an EVE mqtt record of a publish on an AWS shadow
// update topic gives the publish and its twin event, as the sensor's.
func TestMQTTTwinUpdate(t *testing.T) {
	line := `{"timestamp":"2026-03-02T22:44:02.000000+0000","flow_id":77,"event_type":"mqtt","src_ip":"10.0.9.5","src_port":41000,"dest_ip":"10.0.9.1","dest_port":1883,"proto":"TCP","mqtt":{"publish":{"qos":0,"retain":false,"dup":false,"topic":"$aws/things/boiler-3/shadow/update","message":"{\"state\":{\"desired\":{\"heater\":{\"setpoint\":85}}}}"}}}` + "\n"
	evs, _, err := readAll(t, []byte(line))
	if err != nil || len(evs) != 2 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	m := eventJSON(t, &evs[1])
	f, _ := m["fields"].(map[string]any)
	if m["kind"] != "twin" || m["device_id"] != "boiler-3" || f["twin.desired.heater.setpoint"] != 85.0 || f["twin.truncated"] != false {
		t.Errorf("twin event %v", m)
	}
	// Cut by Suricata: the numbers before the cut, truncated.
	cut := `{"timestamp":"2026-03-02T22:44:02.000000+0000","flow_id":78,"event_type":"mqtt","src_ip":"10.0.9.5","src_port":41001,"dest_ip":"10.0.9.1","dest_port":1883,"proto":"TCP","mqtt":{"publish":{"topic":"$aws/things/boiler-3/shadow/update","message":"{\"state\":{\"reported\":{\"a\":1,\"b\":","truncated":true,"skipped_length":900}}}` + "\n"
	evs, _, err = readAll(t, []byte(cut))
	if err != nil || len(evs) != 2 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	f, _ = eventJSON(t, &evs[1])["fields"].(map[string]any)
	if f["twin.reported.a"] != 1.0 || f["twin.truncated"] != true {
		t.Errorf("cut twin event %v", f)
	}
}
