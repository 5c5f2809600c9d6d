package sensor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLiveTwinUpdates publishes AWS IoT shadow and Azure IoT Hub twin
// updates with mosquitto_pub to a real Mosquitto in a network namespace
// and captures them with AF_PACKET: the sensor makes twin events of them,
// with the parameters flattened and the thing named (netnsPair).
func TestLiveTwinUpdates(t *testing.T) {
	for _, bin := range []string{"mosquitto", "mosquitto_pub"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("live twin test needs %s: %v", bin, err)
		}
	}
	nsA, nsB, ifA := netnsPair(t)
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	os.WriteFile(conf, []byte("listener 1883 10.213.7.1\nallow_anonymous true\n"), 0o644)
	broker := exec.Command("ip", "netns", "exec", nsA, "mosquitto", "-c", conf)
	if err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Process.Kill(); broker.Wait() })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	col := &syncCollector{}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/var/run/netns/"+nsA, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
		if err != nil {
			done <- fmt.Errorf("cannot enter %s: %w", nsA, err)
			return
		}
		_, err = Run(ctx, Config{Iface: ifA, Publisher: col})
		done <- err
	}()

	// A shadow document longer than the 256-byte payload preview: the
	// twin event reads it whole.
	pad := fmt.Sprintf("%0300d", 0)
	pubs := [][]string{
		{"-i", "boiler-3", "-t", "$aws/things/boiler-3/shadow/update", "-m", `{"state":{"reported":{"heater":{"setpoint":21,"temp":19.5}}},"clientToken":"` + pad + `"}`},
		{"-i", "fleet-console", "-t", "$aws/things/boiler-3/shadow/name/heater/update", "-m", `{"state":{"desired":{"heater":{"setpoint":85}}}}`},
		{"-i", "pump-12", "-t", "$iothub/twin/PATCH/properties/reported/?$rid=7", "-m", `{"maxRpm":1500,"$version":4}`},
	}
	deadline := time.Now().Add(20 * time.Second)
	for !col.find("twin", "update", "twin.reported.maxRpm", 1500.0) {
		if time.Now().After(deadline) {
			t.Fatal("no twin event captured within 20s")
		}
		for _, p := range pubs {
			args := append([]string{"netns", "exec", nsB, "mosquitto_pub", "-h", "10.213.7.1"}, p...)
			exec.Command("ip", args...).Run() // refused until the broker listens: retried
		}
		select {
		case err := <-done:
			t.Fatalf("sensor stopped: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !col.find("twin", "update", "twin.reported.heater.temp", 19.5) || !col.find("twin", "update", "twin.desired.heater.setpoint", 85.0) ||
		!col.find("twin", "update", "mqtt.client_id", "fleet-console") {
		t.Fatal("missing twin events")
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, e := range col.events {
		if e.Kind != "twin" {
			continue
		}
		want := "boiler-3"
		if e.Fields["twin.platform"] == "azure_iot_hub" {
			want = "pump-12"
		}
		if e.DeviceID != want {
			t.Errorf("twin event %v: device %q, want %q", e.Fields["mqtt.topic"], e.DeviceID, want)
		}
	}
}
