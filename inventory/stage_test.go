package inventory_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/inventory"
	"github.com/vigil-iot/vigil/store/sqlite"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "vigil.db")
	}
	st, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newStage(t *testing.T, st *sqlite.Store) (*inventory.Stage, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	s, err := inventory.NewStage(nil, st, inventory.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func health(id, device string, sec int, cpu float64) vigil.Event {
	return vigil.Event{
		ID: id, Time: t0.Add(time.Duration(sec) * time.Second), DeviceID: device, Source: "agent", Kind: vigil.KindHealth,
		Fields: map[string]any{
			"host.cpu.pct": cpu, "host.memory.pct": 40.5, "host.disk.pct": 12.0,
			"host.temperature": 51.0, "host.uptime": 3600.0, "metric.frames_dropped": 3.0, "other": "x",
			"host.network.connections": 4.0, "host.ip": []string{"10.0.0.1"}, "agent.version": "1.0",
		},
	}
}

func handle(t *testing.T, s *inventory.Stage, events ...vigil.Event) {
	t.Helper()
	if err := s.Handle(context.Background(), 0, events); err != nil {
		t.Fatal(err)
	}
}

func getDevice(t *testing.T, st *sqlite.Store, id string) vigil.Device {
	t.Helper()
	d, err := st.GetDevice(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestHealthCreatesDeviceAndHistory(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, "")
	s, reg := newStage(t, st)
	batch := []vigil.Event{
		health("h1", "cam-1", 0, 10),
		{ID: "x1", Time: t0.Add(5 * time.Second), DeviceID: "cam-1", Source: "agent", Kind: vigil.KindAuth},
		health("h2", "cam-1", 30, 95),
		{ID: "x2", Time: t0, Kind: vigil.KindAuth}, // no device: ignored
		health("h3", "therm-2", 10, 20),
	}
	handle(t, s, batch...)

	d := getDevice(t, st, "cam-1")
	if d.State != vigil.StateActive || !d.FirstSeen.Equal(t0) || !d.LastSeen.Equal(t0.Add(30*time.Second)) {
		t.Errorf("cam-1: state %s first %v last %v; want active, %v, %v", d.State, d.FirstSeen, d.LastSeen, t0, t0.Add(30*time.Second))
	}
	if d.Health == nil || d.Health.CPU != 95 || d.Health.Memory != 40.5 || d.Health.Disk != 12 ||
		d.Health.Temperature != 51 || d.Health.Uptime != 3600 || d.Health.Metrics["frames_dropped"] != 3 || d.Health.Metrics["network.connections"] != 4 || len(d.Health.Metrics) != 2 {
		t.Errorf("cam-1 latest health = %+v, want the sample at +30s", d.Health)
	}
	hist, err := st.HealthHistory(ctx, "cam-1", t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].CPU != 10 || hist[1].CPU != 95 {
		t.Errorf("cam-1 history = %+v, want the samples at 10%% then 95%% CPU", hist)
	}
	if n := counter(t, reg, "vigil_inventory_device_writes_total"); n != 2 {
		t.Errorf("device writes = %v, want 2 (one per device for the batch)", n)
	}

	// The bus redelivers the batch: history is not duplicated.
	handle(t, s, batch...)
	hist, _ = st.HealthHistory(ctx, "cam-1", t0, t0.Add(time.Hour))
	if len(hist) != 2 {
		t.Errorf("after redelivery cam-1 has %d samples, want 2", len(hist))
	}
	if n := counter(t, reg, "vigil_inventory_health_samples_total"); n != 3 {
		t.Errorf("health samples = %v, want 3", n)
	}
}

func TestSensorDiscoversThenAgentActivates(t *testing.T) {
	st := openStore(t, "")
	s, reg := newStage(t, st)
	handle(t, s, vigil.Event{ID: "s1", Time: t0, DeviceID: "plc-7", Source: "sensor", Kind: vigil.KindNetwork})
	if d := getDevice(t, st, "plc-7"); d.State != vigil.StateDiscovered {
		t.Errorf("device seen by the sensor only: state %s, want discovered", d.State)
	}
	handle(t, s, vigil.Event{ID: "s2", Time: t0.Add(time.Second), DeviceID: "plc-7", Source: "sensor", Kind: vigil.KindNetwork})
	if d := getDevice(t, st, "plc-7"); d.State != vigil.StateDiscovered {
		t.Errorf("after a second sensor event: state %s, want discovered", d.State)
	}
	handle(t, s, health("h1", "plc-7", 2, 5))
	if d := getDevice(t, st, "plc-7"); d.State != vigil.StateActive || !d.FirstSeen.Equal(t0) {
		t.Errorf("after an agent report: state %s first seen %v, want active, %v", d.State, d.FirstSeen, t0)
	}
	if n := counter(t, reg, "vigil_inventory_devices_created_total"); n != 1 {
		t.Errorf("devices created = %v, want 1", n)
	}
}

func inventoryEvent(id string, sec int, firmware, software string) vigil.Event {
	return vigil.Event{
		ID: id, Time: t0.Add(time.Duration(sec) * time.Second), DeviceID: "gw-1", Source: "agent", Kind: vigil.KindInventory,
		Fields: map[string]any{
			"os.name": "OpenWrt", "os.version": "23.05.2", "os.kernel": "5.15.137",
			"device.firmware.version": firmware, "device.vendor": "Acme", "device.model": "GW-200",
			"device.class": "gateway",
			"software":     software,
			"interfaces":   `[{"name":"eth0","mac":"aa:bb:cc:00:11:22","addresses":["192.168.1.20/24"]}]`,
		},
	}
}

func TestInventoryEvents(t *testing.T) {
	st := openStore(t, "")
	s, reg := newStage(t, st)
	handle(t, s, inventoryEvent("i1", 0, "1.0.3",
		`[{"name":"busybox","version":"1.36.1","type":"package","source":"opkg","purl":"pkg:generic/busybox@1.36.1"},{"name":"dropbear","version":"2022.83"}]`))
	d := getDevice(t, st, "gw-1")
	if d.OS != "OpenWrt 23.05.2" || d.Kernel != "5.15.137" || d.Firmware != "1.0.3" || d.Vendor != "Acme" ||
		d.Model != "GW-200" || d.Class != vigil.ClassGateway {
		t.Errorf("device = %+v", d)
	}
	if len(d.Software) != 2 || d.Software[0].PURL != "pkg:generic/busybox@1.36.1" || d.Software[1].Version != "2022.83" {
		t.Errorf("software = %+v", d.Software)
	}
	if len(d.Network) != 1 || d.Network[0].Interface != "eth0" || d.Network[0].MAC != "aa:bb:cc:00:11:22" ||
		len(d.Network[0].Addresses) != 1 {
		t.Errorf("network = %+v", d.Network)
	}

	// A firmware update, with a software list that cannot be read: the
	// rest of the event still applies and the old software list stays.
	handle(t, s, inventoryEvent("i2", 60, "1.1.0", `[{"name":`))
	d = getDevice(t, st, "gw-1")
	if d.Firmware != "1.1.0" || len(d.Software) != 2 {
		t.Errorf("after update: firmware %q, %d components; want 1.1.0 and the 2 earlier ones", d.Firmware, len(d.Software))
	}
	if n := counter(t, reg, "vigil_inventory_firmware_changes_total"); n != 1 {
		t.Errorf("firmware changes = %v, want 1", n)
	}
	if n := counter(t, reg, "vigil_inventory_rejected_fields_total"); n != 1 {
		t.Errorf("rejected fields = %v, want 1", n)
	}
}

func TestLastSeenWritesAreThrottled(t *testing.T) {
	st := openStore(t, "")
	s, reg := newStage(t, st)
	ev := func(sec int) vigil.Event {
		return vigil.Event{ID: fmt.Sprint(sec), Time: t0.Add(time.Duration(sec) * time.Second), DeviceID: "m-1", Source: "agent", Kind: vigil.KindAuth}
	}
	handle(t, s, ev(0))
	handle(t, s, ev(3))
	if d := getDevice(t, st, "m-1"); !d.LastSeen.Equal(t0) {
		t.Errorf("last seen after +3s = %v, want %v still (within the interval)", d.LastSeen, t0)
	}
	handle(t, s, ev(12))
	if d := getDevice(t, st, "m-1"); !d.LastSeen.Equal(t0.Add(12 * time.Second)) {
		t.Errorf("last seen after +12s = %v, want %v", d.LastSeen, t0.Add(12*time.Second))
	}
	if n := counter(t, reg, "vigil_inventory_device_writes_total"); n != 2 {
		t.Errorf("device writes = %v, want 2", n)
	}
}

func TestRestartReadsStoredDevices(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	st := openStore(t, path)
	s, _ := newStage(t, st)
	handle(t, s, inventoryEvent("i1", 0, "1.0.3", `[]`), health("h1", "gw-1", 1, 50))

	s2, reg := newStage(t, st) // a new process: empty cache
	handle(t, s2, health("h1", "gw-1", 1, 50), health("h2", "gw-1", 20, 60))
	d := getDevice(t, st, "gw-1")
	if d.Firmware != "1.0.3" || !d.FirstSeen.Equal(t0) || d.Health == nil || d.Health.CPU != 60 {
		t.Errorf("after restart: %+v", d)
	}
	if n := counter(t, reg, "vigil_inventory_devices_created_total"); n != 0 {
		t.Errorf("restarted stage created %v devices, want 0", n)
	}
	hist, err := st.HealthHistory(context.Background(), "gw-1", t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 {
		t.Errorf("history has %d samples, want 2 (h1 once, h2)", len(hist))
	}
}
