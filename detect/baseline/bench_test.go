package baseline

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// benchEvents makes a mix of sensor events of devices devices: Modbus
// polls, MQTT publishes and flow records, one second apart per device.
func benchEvents(devices, perDevice int) []vigil.Event {
	evs := make([]vigil.Event, 0, devices*perDevice)
	for r := 0; r < perDevice; r++ {
		for d := 0; d < devices; d++ {
			src := netip.AddrFrom4([4]byte{10, byte(d >> 16), byte(d >> 8), byte(d)})
			id := fmt.Sprintf("mac:02:00:%02x:%02x:%02x:01", byte(d>>16), byte(d>>8), byte(d))
			ev := vigil.Event{ID: fmt.Sprintf("e-%d-%d", d, r), Time: t0.Add(time.Duration(r) * time.Second), DeviceID: id, Source: "sensor"}
			switch d % 3 {
			case 0:
				ev.Kind, ev.Action = "modbus", "request"
				ev.Network = &vigil.Network{Transport: "tcp", SrcIP: src, SrcPort: 50211, DstIP: netip.AddrFrom4([4]byte{10, 200, 0, byte(d % 50)}), DstPort: 502}
				ev.Fields = map[string]any{"modbus.function_code": 3.0, "modbus.unit_id": 1.0, "modbus.address": float64(100 + 64*(r%3)), "modbus.table": "holding_registers", "modbus.write": false}
			case 1:
				ev.Kind, ev.Action = "mqtt", "publish"
				ev.Network = &vigil.Network{Transport: "tcp", SrcIP: src, SrcPort: 40000, DstIP: netip.MustParseAddr("10.0.0.2"), DstPort: 1883}
				ev.Fields = map[string]any{"mqtt.topic": fmt.Sprintf("plant/%d/%d", d%100, r%4), "mqtt.payload_size": 24.0}
			default:
				ev.Kind, ev.Action = "flow", "flow"
				ev.Network = &vigil.Network{Transport: "tcp", SrcIP: src, SrcPort: 41000, DstIP: netip.AddrFrom4([4]byte{198, 51, 100, byte(r % 5)}), DstPort: 443}
				ev.Fields = map[string]any{"flow.reason": "end", "flow.app_proto": "tls", "flow.bytes_toserver": 1200.0, "flow.bytes_toclient": 5400.0}
			}
			evs = append(evs, ev)
		}
	}
	return evs
}

// BenchmarkDetect measures events per second through Enrich and Detect on
// one partition, decode excluded, after learning (1,000 devices).
func BenchmarkDetect(b *testing.B) {
	evs := benchEvents(1000, 200)
	d := New(Options{Learn: time.Minute})
	emit := func(vigil.Alert) {}
	ctx := context.Background()
	for i := range evs[:len(evs)/2] {
		d.Enrich(ctx, 0, &evs[i])
		d.Detect(ctx, 0, &evs[i], emit)
	}
	run := evs[len(evs)/2:]
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		ev := &run[i%len(run)]
		d.Enrich(ctx, 0, ev)
		d.Detect(ctx, 0, ev, emit)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if c := cpuTime() - cpu0; c > 0 {
		// Per CPU-second of the process (one core with -cpu 1): steadier
		// than per wall second when other work shares the machine.
		b.ReportMetric(float64(b.N)/c.Seconds(), "events/cpu-s")
	}
}

// BenchmarkMemoryPerDevice measures the heap the detector holds per
// device at 100,000 devices: "typical", each having sent 30 events of the
// BenchmarkDetect mix; "full", each having learned every value it may
// (MaxValues: 24 peers, 24 destination ports, 24 topics, 24 DNS names) and
// closed rate windows, hour-of-day profiles of the four metrics that get
// them (messages, connections, bytes, writes: active in its first
// window), and, as an agent's device, 300 installed packages
// (the software filter) and health samples of every gauge and of
// maxCustom custom metrics, and maxParams twin parameters. Events are made on the fly, so that only the
// detector's state is measured.
func BenchmarkMemoryPerDevice(b *testing.B) {
	const devices = 100_000
	for _, full := range []bool{false, true} {
		name := "typical"
		if full {
			name = "full"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				d := New(Options{})
				if full {
					fillFull(d, devices)
				} else {
					for r := 0; r < 30; r++ {
						for _, ev := range benchEvents(devices, 1) {
							ev.Time = t0.Add(time.Duration(r) * time.Second)
							d.Detect(context.Background(), 0, &ev, func(vigil.Alert) {})
						}
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				st := d.Stats()
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(st.Devices), "bytes/device")
				b.ReportMetric(float64(st.Devices), "devices")
				runtime.KeepAlive(d)
			}
		})
	}
}

// fillFull gives each of n devices MaxValues learned values and rate
// history, with one reused event.
func fillFull(d *Detector, n int) {
	ev := vigil.Event{Source: "sensor", Network: &vigil.Network{Transport: "tcp"}}
	emit := func(vigil.Alert) {}
	var comps []vigil.Component
	for i := 0; i < 300; i++ {
		comps = append(comps, vigil.Component{Name: fmt.Sprintf("pkg%d", i), Version: "1.0"})
	}
	sw, _ := json.Marshal(comps)
	inv := vigil.Event{Source: "agent", Kind: vigil.KindInventory, Fields: map[string]any{"software": string(sw), "device.firmware.version": "1.0"}}
	hf := map[string]any{"host.cpu.pct": 10.0, "host.memory.pct": 40.0, "host.temperature": 45.0, "host.disk.pct": 30.0,
		"host.network.connections": 4.0, "host.network.distinct_remotes": 2.0, "host.network.egress.bytes": 1000.0}
	for c := 0; c < maxCustom; c++ {
		hf[fmt.Sprintf("metric.m%d", c)] = 1.0
	}
	hev := vigil.Event{Source: "agent", Kind: vigil.KindHealth, Fields: hf}
	tf := map[string]any{}
	for p := 0; p < maxParams; p++ {
		tf[fmt.Sprintf("twin.reported.param%d", p)] = float64(p)
	}
	tw := vigil.Event{Source: "sensor", Kind: "twin", Action: "update", Fields: tf}
	for dev := 0; dev < n; dev++ {
		ev.DeviceID = fmt.Sprintf("mac:02:00:%02x:%02x:%02x:01", byte(dev>>16), byte(dev>>8), byte(dev))
		ev.Network.SrcIP = netip.AddrFrom4([4]byte{10, byte(dev >> 16), byte(dev >> 8), byte(dev)})
		// The first window: every metric with a profile above its floor.
		ev.Time = t0
		for i := 0; i < 25; i++ {
			ev.Kind, ev.Action = "coap", "request"
			ev.Network.DstIP, ev.Network.DstPort = netip.AddrFrom4([4]byte{172, 16, 0, 0}), 5683
			ev.Fields = map[string]any{"coap.method": "PUT", "coap.uri_path": "/sp", "coap.payload_size": 4000.0}
			d.Detect(context.Background(), 0, &ev, emit)
			ev.Kind, ev.Action = "flow", "flow"
			ev.Fields = map[string]any{"flow.reason": "end", "flow.bytes_toserver": 100.0}
			d.Detect(context.Background(), 0, &ev, emit)
		}
		for v := 0; v < 24; v++ {
			at := t0.Add(time.Duration(v+1) * time.Minute)
			ev.Time = at
			ev.Kind, ev.Action = "flow", "flow"
			ev.Network.DstIP = netip.AddrFrom4([4]byte{172, 16, 0, byte(v)})
			ev.Network.DstPort = uint16(1000 + v)
			ev.Fields = map[string]any{"flow.reason": "end", "flow.bytes_toserver": 100.0}
			d.Detect(context.Background(), 0, &ev, emit)
			ev.Kind, ev.Action = "mqtt", "publish"
			ev.Fields = map[string]any{"mqtt.topic": fmt.Sprintf("t/%d", v)}
			d.Detect(context.Background(), 0, &ev, emit)
			ev.Kind, ev.Action = "dns", "query"
			ev.Fields = map[string]any{"dns.question.name": fmt.Sprintf("n%d.example", v)}
			d.Detect(context.Background(), 0, &ev, emit)
			hev.DeviceID, hev.Time = ev.DeviceID, at
			d.Detect(context.Background(), 0, &hev, emit)
		}
		inv.DeviceID, inv.Time = ev.DeviceID, ev.Time
		d.Detect(context.Background(), 0, &inv, emit)
		tw.DeviceID, tw.Time = ev.DeviceID, ev.Time
		d.Detect(context.Background(), 0, &tw, emit)
	}
}
