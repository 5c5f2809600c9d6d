package baseline

import (
	"context"
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
	for i := 0; i < b.N; i++ {
		ev := &run[i%len(run)]
		d.Enrich(ctx, 0, ev)
		d.Detect(ctx, 0, ev, emit)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkMemoryPerDevice measures the heap the detector holds per
// device at 100,000 devices, each having sent 30 events over 30 seconds.
func BenchmarkMemoryPerDevice(b *testing.B) {
	const devices = 100_000
	for i := 0; i < b.N; i++ {
		evs := benchEvents(devices, 30)
		emit := func(vigil.Alert) {}
		ctx := context.Background()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		d := New(Options{})
		for i := range evs {
			d.Enrich(ctx, 0, &evs[i])
			d.Detect(ctx, 0, &evs[i], emit)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		st := d.Stats()
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(st.Devices), "bytes/device")
		b.ReportMetric(float64(st.Devices), "devices")
		runtime.KeepAlive(d)
		runtime.KeepAlive(evs)
	}
}
