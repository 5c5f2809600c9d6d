package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/store"
)

// TestSensorStreamsToServer (reads ../shared/corpus) decodes Zeek's MQTT
// capture with `vigil sensor --server` and finds its MQTT events and the
// devices it discovered stored by the server.
func TestSensorStreamsToServer(t *testing.T) {
	pcap := filepath.Join("..", "..", "..", "shared", "corpus", "pcap", "zeek", "Traces", "mqtt.pcap")
	if _, err := os.Stat(pcap); err != nil {
		t.Skipf("the shared corpus is absent (%s): %v", pcap, err)
	}
	a := startTestApp(t)
	c, err := client.New(a.URL, a.adminToken, client.TLSConfig(a.ca.Pool()))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.CreateToken(t.Context(), "sensor-1", auth.RoleAgent)
	if err != nil {
		t.Fatal(err)
	}
	out, code := run(t, "sensor", "--pcap", pcap, "--server", a.URL, "--token", tok.Secret, "--ca", filepath.Join(a.cfg.DataDir, "pki", "ca.crt"))
	if code != 0 || !strings.Contains(out, "sensor: packets=19 bytes=1485 events=26 ") {
		t.Fatalf("sensor: exit %d: %s", code, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, _, err := a.store.ListEvents(t.Context(), store.EventFilter{Kind: "mqtt"})
		if err != nil {
			t.Fatal(err)
		}
		ds, _, _ := a.store.ListDevices(t.Context(), store.DeviceFilter{State: "discovered"})
		if len(evs) > 0 && len(ds) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the sensor run: %d mqtt events, %d discovered devices", len(evs), len(ds))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
