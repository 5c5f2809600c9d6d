package sensor

import (
	"github.com/prometheus/client_golang/prometheus"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseOUI(t *testing.T) {
	o, err := ParseOUI(strings.NewReader("B8-27-EB   (hex)\t\tRaspberry Pi Foundation\nB827EB     (base 16)\t\tRaspberry Pi Foundation\n" +
		"# manuf\n24:0A:C4\tEspressif\tEspressif Inc.\ngarbage line\n"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Vendor([6]byte{0xb8, 0x27, 0xeb, 1, 2, 3}) != "Raspberry Pi Foundation" || o.Vendor([6]byte{0x24, 0x0a, 0xc4}) != "Espressif Inc." || o.Len() != 2 {
		t.Fatalf("%+v", o)
	}
	if o.Vendor([6]byte{0xb8, 0x27, 0xea}) != "" || o.Vendor([6]byte{}) != "" || (*OUI)(nil).Vendor([6]byte{1}) != "" {
		t.Fatal("vendor of an unknown prefix")
	}
	// A later line for a prefix wins, as it did with a map.
	o, _ = ParseOUI(strings.NewReader("00-00-01   (hex)\t\tOld\n00-00-01   (hex)\t\tNew\nFF-FF-FF   (hex)\t\tLast\n"))
	if o.Vendor([6]byte{0, 0, 1}) != "New" || o.Vendor([6]byte{0xff, 0xff, 0xff}) != "Last" || o.Len() != 2 {
		t.Fatalf("%+v", o)
	}
}

// TestDiscoveryOnZeekMQTT checks that the MQTT client of Zeek's capture
// is announced with its MAC, address, protocol, both client ids and the
// vendor of its MAC.
func TestDiscoveryOnZeekMQTT(t *testing.T) {
	o, err := ParseOUI(strings.NewReader("28-CF-E9   (hex)\t\tApple, Inc.\n"))
	if err != nil {
		t.Fatal(err)
	}
	evs, st := runPcap(t, Config{OUI: o}, filepath.Join(corpusDir(t, "pcap/zeek"), "Traces", "mqtt.pcap"))
	var last map[string]any
	for _, e := range evs {
		if e.Kind == "inventory" && e.DeviceID == "mac:28:cf:e9:21:14:8f" {
			if e.Source != "sensor" {
				t.Fatalf("source %q", e.Source)
			}
			last = e.Fields
		}
	}
	for _, e := range evs {
		if e.Kind == "mqtt" && e.Action == "connect" && e.DeviceID != "mac:28:cf:e9:21:14:8f" {
			t.Errorf("connect from the client has device_id %q", e.DeviceID)
		}
		if e.Kind == "mqtt" && e.Action == "connack" && e.DeviceID != "" {
			t.Errorf("connack from the remote broker has device_id %q", e.DeviceID)
		}
	}
	if last == nil || st.Devices == 0 {
		t.Fatalf("client not discovered: %+v", st)
	}
	want := map[string]any{
		"device.ip": []string{"10.0.1.4"}, "device.vendor": "Apple, Inc.", "device.protocols": []string{"mqtt"},
		"device.mqtt_client_ids": []string{"paho/34AAE54A75D839566E", "paho/DDE4DDAF4108D3E363"},
		"interfaces":             `[{"mac":"28:cf:e9:21:14:8f","addresses":["10.0.1.4"]}]`,
	}
	for k, v := range want {
		if !reflect.DeepEqual(last[k], v) {
			t.Errorf("%s = %#v, want %#v", k, last[k], v)
		}
	}
	evs, _ = runPcap(t, Config{DisableDiscovery: true}, filepath.Join(corpusDir(t, "pcap/zeek"), "Traces", "mqtt.pcap"))
	for _, e := range evs {
		if e.Kind == "inventory" {
			t.Fatal("discovery not disabled")
		}
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, st := runPcap(t, Config{Registerer: reg}, filepath.Join(corpusDir(t, "pcap/zeek"), "Traces", "mqtt.pcap"))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "vigil_sensor_total" {
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if got["packets"] != float64(st.Packets) || got["events"] != float64(st.Events) || got["flows"] != float64(st.Flows) {
		t.Fatalf("metrics %v, stats %+v", got, st)
	}
}
