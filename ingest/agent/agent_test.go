package agent

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/wire"
)

var received = time.Date(2026, 11, 22, 3, 15, 2, 0, time.UTC)

func example(t *testing.T) *wire.Report {
	t.Helper()
	b, err := os.ReadFile("../../wire/testdata/report.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := wire.DecodeReportBytes(wire.FormatJSON, b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func byKind(evs []vigil.Event) map[string][]vigil.Event {
	m := map[string][]vigil.Event{}
	for _, e := range evs {
		m[e.Kind] = append(m[e.Kind], e)
	}
	return m
}

func num(t *testing.T, e *vigil.Event, name string) float64 {
	t.Helper()
	v, ok := e.FieldNumber(name)
	if !ok {
		t.Fatalf("event %s has no number %s: %v", e.Kind, name, e.Fields)
	}
	return v
}

func str(t *testing.T, e *vigil.Event, name string) string {
	t.Helper()
	v, ok := e.FieldString(name)
	if !ok {
		t.Fatalf("event %s has no field %s: %v", e.Kind, name, e.Fields)
	}
	return v
}

func TestConvertExample(t *testing.T) {
	r := example(t)
	evs, probs := Convert(r, received)
	if len(probs) != 0 {
		t.Fatalf("problems: %v", probs)
	}
	if len(evs) != 6 {
		t.Fatalf("got %d events, want 6: %+v", len(evs), evs)
	}
	ids := map[string]bool{}
	for _, e := range evs {
		if e.Source != "agent" || e.DeviceID != "cam-0042" || !e.Received.Equal(received) || e.ID == "" {
			t.Fatalf("bad envelope: %+v", e)
		}
		if ids[e.ID] {
			t.Fatalf("duplicate id %s", e.ID)
		}
		ids[e.ID] = true
	}
	k := byKind(evs)

	h := &k["health"][0]
	if !h.Time.Equal(r.Time) {
		t.Fatalf("health time %v", h.Time)
	}
	for name, want := range map[string]float64{
		"host.cpu.pct": 37.5, "host.memory.pct": 61.2, "host.disk.pct": 48, "host.temperature": 54.5,
		"host.uptime": 86400, "metric.fan_rpm": 1200, "metric.frames_dropped": 3,
		"host.network.connections": 4, "host.network.distinct_remotes": 2,
		"host.network.ingress.bytes": 18230, "host.network.egress.bytes": 5210044,
	} {
		if got := num(t, h, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}

	inv := &k["inventory"][0]
	for name, want := range map[string]string{
		"os.name": "OpenWrt", "os.version": "23.05.3", "os.kernel": "5.15.150",
		"device.firmware.version": "4.2.1", "device.vendor": "Acme", "device.model": "IPC-200",
		"device.class": "camera", "host.ip": "192.168.1.20,fe80::42:acff:fe11:2", "host.mac": "02:42:ac:11:00:02",
		"agent.version": "0.1.0",
	} {
		if got := str(t, inv, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}

	ls := k["network"]
	if len(ls) != 2 {
		t.Fatalf("listen events: %+v", ls)
	}
	if ls[0].Action != "listen" || num(t, &ls[0], "destination.port") != 22 || str(t, &ls[0], "network.transport") != "tcp" ||
		str(t, &ls[0], "process.name") != "dropbear" || num(t, &ls[0], "process.pid") != 412 || str(t, &ls[0], "destination.ip") != "0.0.0.0" {
		t.Fatalf("listener 0: %+v %+v", ls[0], ls[0].Network)
	}

	a := &k["auth"][0]
	if a.Outcome != "failure" || a.Severity != vigil.SeverityLow || a.Category != "authentication" || a.Action != "login" ||
		!a.Time.Equal(time.Date(2026, 11, 22, 3, 14, 51, 250e6, time.UTC)) {
		t.Fatalf("auth event: %+v", a)
	}
	if str(t, a, "user.name") != "root" || str(t, a, "source.ip") != "203.0.113.7" || num(t, a, "source.port") != 51514 ||
		str(t, a, "agent.event_id") != "cam-0042-1841-0" {
		t.Fatalf("auth fields: %v %+v", a.Fields, a.Network)
	}
	p := &k["process"][0]
	if p.Severity != vigil.SeverityMedium || str(t, p, "process.command_line") != "busybox telnetd -l /bin/sh -p 2323" {
		t.Fatalf("process event: %+v", p)
	}

	// A retried report gives the same ids; another sequence does not.
	again, _ := Convert(example(t), received.Add(time.Minute))
	for i := range evs {
		if again[i].ID != evs[i].ID {
			t.Fatalf("event %d: id %s then %s", i, evs[i].ID, again[i].ID)
		}
	}
	r2 := example(t)
	r2.Sequence++
	next, _ := Convert(r2, received)
	if next[0].ID == evs[0].ID {
		t.Fatal("next report's health event has the same id")
	}
	// The agent's own event id is namespaced by device.
	r3 := example(t)
	r3.DeviceID = "cam-0043"
	other, _ := Convert(r3, received)
	if byKind(other)["auth"][0].ID == a.ID {
		t.Fatal("two devices with the same agent event id got the same event id")
	}
}

func TestConvertDropsBadParts(t *testing.T) {
	r := example(t)
	r.Events[0].Kind = ""
	r.Health.CPU = 250
	evs, probs := Convert(r, received)
	if len(probs) != 2 || probs[0].Path != "health.cpu_pct" || probs[1].Path != "events[0].kind" || probs[1].Index != 0 {
		t.Fatalf("problems: %+v", probs)
	}
	k := byKind(evs)
	if len(k["auth"]) != 0 || len(k["process"]) != 1 || len(k["inventory"]) != 1 {
		t.Fatalf("events: %+v", evs)
	}
	// The connection summary still makes a health event, without host.cpu.pct.
	h := k["health"]
	if len(h) != 1 {
		t.Fatalf("health events: %+v", h)
	}
	if _, ok := h[0].Fields["host.cpu.pct"]; ok {
		t.Fatal("invalid health section converted")
	}

	r = example(t)
	r.DeviceID = ""
	evs, probs = Convert(r, received)
	if len(evs) != 0 || len(probs) != 1 || probs[0].Error() != "device_id: missing" {
		t.Fatalf("invalid envelope: %d events, problems %v", len(evs), probs)
	}
}

func TestConvertMinimal(t *testing.T) {
	r := &wire.Report{Version: "1", DeviceID: "m1", Time: received, Events: []wire.SecurityEvent{{Time: received, Kind: "system"}}}
	evs, probs := Convert(r, received)
	if len(probs) != 0 || len(evs) != 1 || evs[0].Kind != "system" || evs[0].Fields != nil || evs[0].Severity != 0 {
		t.Fatalf("got %+v %v", evs, probs)
	}
}

func TestDeviceFromInventory(t *testing.T) {
	evs, _ := Convert(example(t), received)
	inv := byKind(evs)["inventory"][0]
	// Through JSON, as it comes back from the bus or the store.
	b, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	var back vigil.Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	d, err := DeviceFromInventory(&back)
	if err != nil {
		t.Fatal(err)
	}
	want := vigil.Device{
		ID: "cam-0042", Class: "camera", Vendor: "Acme", Model: "IPC-200", Firmware: "4.2.1",
		OS: "OpenWrt 23.05.3", Kernel: "5.15.150", LastSeen: inv.Time,
		Software: []vigil.Component{
			{Name: "busybox", Version: "1.36.1", Type: "package", Source: "opkg", PURL: "pkg:generic/busybox@1.36.1", CPE: "cpe:2.3:a:busybox:busybox:1.36.1:*:*:*:*:*:*:*"},
			{Name: "dropbear", Version: "2022.83", Type: "package", Source: "opkg"},
		},
		Network: []vigil.NetIdentity{{Interface: "eth0", MAC: "02:42:ac:11:00:02", Addresses: []string{"192.168.1.20/24", "fe80::42:acff:fe11:2/64"}}},
	}
	d.LastSeen = d.LastSeen.UTC()
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("device:\n got %+v\nwant %+v", d, want)
	}
	if _, err := DeviceFromInventory(&evs[0]); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Fatalf("health event: err = %v", err)
	}
}
