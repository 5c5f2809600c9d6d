package devmap_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/ingest/devmap"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

var devices = []vigil.Device{
	{ID: "cam-0042", Name: "cam-0042.plant.example", LastSeen: t0, Network: []vigil.NetIdentity{{Interface: "eth0", Addresses: []string{"192.168.1.20/24", "fe80::42:acff:fe11:2/64", "127.0.0.1"}}}},
	{ID: "plc-1", Name: "PLC-Line1", LastSeen: t0, Network: []vigil.NetIdentity{{Addresses: []string{"10.0.0.5", "192.168.1.99"}}}},
	// 192.168.1.99 moved to gw-2 (seen later), by DHCP
	{ID: "gw-2", LastSeen: t0.Add(time.Hour), Network: []vigil.NetIdentity{{Addresses: []string{"192.168.1.99/24", "::ffff:10.9.9.9"}}}},
}

// TestMap: which event gets which device, as data.
func TestMap(t *testing.T) {
	ix := devmap.NewIndex(devices)
	ip := netip.MustParseAddr
	f := func(name string, ev vigil.Event, want, from string) {
		t.Helper()
		got := ix.Map(&ev)
		if ev.DeviceID != want || got != (want != "" && from != "") || (from != "" && ev.Fields[devmap.FieldMappedFrom] != from) {
			t.Errorf("%s: device %q from %v (mapped %v), want %q from %q", name, ev.DeviceID, ev.Fields[devmap.FieldMappedFrom], got, want, from)
		}
	}
	f("zeek conn from the camera", vigil.Event{Kind: "flow", Network: &vigil.Network{SrcIP: ip("192.168.1.20"), DstIP: ip("203.0.113.5")}}, "cam-0042", "source.ip")
	f("scan of the PLC", vigil.Event{Kind: "flow", Network: &vigil.Network{SrcIP: ip("203.0.113.5"), DstIP: ip("10.0.0.5")}}, "plc-1", "destination.ip")
	f("both known: the source", vigil.Event{Kind: "flow", Network: &vigil.Network{SrcIP: ip("10.0.0.5"), DstIP: ip("192.168.1.20")}}, "plc-1", "source.ip")
	f("an address two devices had: the later", vigil.Event{Kind: "dns", Network: &vigil.Network{SrcIP: ip("192.168.1.99")}}, "gw-2", "source.ip")
	f("a mapped v4 address", vigil.Event{Kind: "dns", Network: &vigil.Network{SrcIP: ip("10.9.9.9")}}, "gw-2", "source.ip")
	f("syslog by host name, case-folded", vigil.Event{Kind: "syslog", Fields: map[string]any{"host.hostname": "plc-line1"}}, "plc-1", "host.hostname")
	f("syslog by the short name", vigil.Event{Kind: "syslog", Fields: map[string]any{"host.hostname": "CAM-0042"}}, "cam-0042", "host.hostname")
	f("syslog by full name", vigil.Event{Kind: "syslog", Fields: map[string]any{"host.hostname": "cam-0042.plant.example."}}, "cam-0042", "host.hostname")
	f("syslog host as an address", vigil.Event{Kind: "syslog", Fields: map[string]any{"host.hostname": "10.0.0.5"}}, "plc-1", "host.hostname")
	f("host name wins over the address", vigil.Event{Kind: "web", Fields: map[string]any{"host.name": "gw-2"}, Network: &vigil.Network{SrcIP: ip("192.168.1.20")}}, "gw-2", "host.name")
	f("unknown", vigil.Event{Kind: "flow", Fields: map[string]any{"host.hostname": "nas"}, Network: &vigil.Network{SrcIP: ip("198.51.100.1"), DstIP: ip("198.51.100.2")}}, "", "")
	f("loopback is nobody's", vigil.Event{Kind: "flow", Network: &vigil.Network{SrcIP: ip("127.0.0.1")}}, "", "")
	f("link-local v6 is nobody's", vigil.Event{Kind: "flow", Network: &vigil.Network{SrcIP: ip("fe80::42:acff:fe11:2")}}, "", "")
	f("an event with a device keeps it", vigil.Event{Kind: "flow", DeviceID: "agent-1", Network: &vigil.Network{SrcIP: ip("192.168.1.20")}}, "agent-1", "")
	f("cloud events are not mapped", vigil.Event{Kind: "cloud", Network: &vigil.Network{SrcIP: ip("192.168.1.20")}}, "", "")
}

type collect struct{ evs []vigil.Event }

func (c *collect) PublishEvents(_ context.Context, evs []vigil.Event) error {
	c.evs = append(c.evs, evs...)
	return nil
}

// TestMapperReload: a device added to the inventory is mapped after a
// refresh; Run reloads after a miss.
func TestMapperReload(t *testing.T) {
	inv := []vigil.Device{devices[0]}
	ch := make(chan []vigil.Device, 10)
	ch <- inv
	next := &collect{}
	m, err := devmap.New(devmap.Options{Next: next, MinEvery: time.Millisecond, Devices: func(ctx context.Context) ([]vigil.Device, error) {
		select {
		case d := <-ch:
			inv = d
		default:
		}
		return inv, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	plc := vigil.Event{Kind: "flow", Network: &vigil.Network{SrcIP: netip.MustParseAddr("10.0.0.5")}}
	m.PublishEvents(t.Context(), []vigil.Event{plc})
	if next.evs[0].DeviceID != "" {
		t.Fatalf("mapped before any load: %+v", next.evs[0])
	}
	if err := m.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	m.PublishEvents(t.Context(), []vigil.Event{plc})
	if next.evs[1].DeviceID != "" {
		t.Fatalf("plc-1 is not in the inventory yet: %+v", next.evs[1])
	}
	ch <- devices // the PLC enrolls
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m.PublishEvents(t.Context(), []vigil.Event{plc})
		if next.evs[len(next.evs)-1].DeviceID == "plc-1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("plc-1 never mapped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if m.Mapped() < 1 {
		t.Errorf("mapped %d", m.Mapped())
	}
}
