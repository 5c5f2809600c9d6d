package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	vagent "github.com/vigil-iot/vigil/agent"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/store"
)

// TestSensorStreamsToServer (reads ../shared/corpus) enrolls a sensor with
// a token of class sensor, decodes Zeek's MQTT capture with `vigil sensor`
// streaming over mutual TLS, and finds its MQTT events (observed by the
// sensor) and the devices it discovered stored by the server. A device of
// another class, and the sensor once revoked, are refused.
func TestSensorStreamsToServer(t *testing.T) {
	pcap := filepath.Join("..", "..", "..", "shared", "corpus", "pcap", "zeek", "Traces", "mqtt.pcap")
	if _, err := os.Stat(pcap); err != nil {
		t.Skipf("the shared corpus is absent (%s): %v", pcap, err)
	}
	a := startTestApp(t)
	ca := filepath.Join(a.Config().DataDir, "pki", "ca.crt")
	token := func(class string) string {
		t.Helper()
		out, code := run(t, "ctl", "enroll-token", "create", "--class", class, "--ttl", "10m", "--data-dir", a.Config().DataDir)
		if code != 0 {
			t.Fatalf("enroll-token create: %d %s", code, out)
		}
		return strings.TrimSpace(out)
	}

	// A camera's token does not make a sensor, and leaves no identity.
	state := t.TempDir()
	if out, code := run(t, "sensor", "enroll", "--server", a.URL(), "--token", token("camera"), "--ca", ca, "--state", state); code == 0 ||
		!strings.Contains(out, `of class "camera"`) {
		t.Fatalf("enroll with a camera token: exit %d: %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(state, "agent.crt")); err == nil {
		t.Fatal("a refused enrollment left its certificate")
	}
	out, code := run(t, "sensor", "enroll", "--server", a.URL(), "--token", token("sensor"), "--ca", ca, "--state", state, "--hostname", "gw-1")
	if code != 0 || !strings.Contains(out, "enrolled as sensor-gw-1-") {
		t.Fatalf("sensor enroll: exit %d: %s", code, out)
	}
	sensorID := strings.Fields(out[strings.Index(out, "enrolled as "):])[2]

	// No --server: the sensor streams to the server it enrolled with.
	out, code = run(t, "sensor", "--pcap", pcap, "--state", state)
	if code != 0 || !strings.Contains(out, "sensor: packets=19 bytes=1485 events=26 ") {
		t.Fatalf("sensor: exit %d: %s", code, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		evs, _, err := a.Store().ListEvents(t.Context(), store.EventFilter{Kind: "mqtt"})
		if err != nil {
			t.Fatal(err)
		}
		ds, _, _ := a.Store().ListDevices(t.Context(), store.DeviceFilter{State: "discovered"})
		if len(evs) > 0 && len(ds) > 0 {
			for _, e := range evs {
				if e.Fields["observer.id"] != sensorID || e.DeviceID == sensorID {
					t.Fatalf("event %s: observer %v, device %q; want observer %s and the observed device", e.ID, e.Fields["observer.id"], e.DeviceID, sensorID)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the sensor run: %d mqtt events, %d discovered devices", len(evs), len(ds))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// An agent's certificate may report about its device, not post events.
	camState := t.TempDir()
	cam, err := vagent.Enroll(t.Context(), vagent.EnrollOptions{Server: a.URL(), Token: token("camera"), StateDir: camState, CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := client.New(a.URL(), "", cam.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, err := cc.PostEvents(t.Context(), []byte(`{"kind":"mqtt","device_id":"plc-1"}`+"\n")); vigil.ErrorCode(err) != vigil.EFORBIDDEN {
		t.Fatalf("events posted with a camera's certificate: err = %v, want forbidden", err)
	}

	// A revoked sensor is refused.
	if err := revokeDevice(t, a, sensorID); err != nil {
		t.Fatal(err)
	}
	if out, code := run(t, "sensor", "--pcap", pcap, "--state", state); code == 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("a revoked sensor: exit %d: %s", code, out)
	}
}
