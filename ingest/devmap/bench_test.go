package devmap_test

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/ingest/devmap"
)

// BenchmarkMap maps flow events (half from inventory devices, half from
// unknown addresses) against an index of 10,000 devices.
func BenchmarkMap(b *testing.B) {
	devs := make([]vigil.Device, 10000)
	for i := range devs {
		devs[i] = vigil.Device{ID: fmt.Sprintf("dev-%d", i), Name: fmt.Sprintf("dev-%d.plant.example", i),
			Network: []vigil.NetIdentity{{Addresses: []string{fmt.Sprintf("10.%d.%d.%d/16", i>>16&255, i>>8&255, i&255)}}}}
	}
	ix := devmap.NewIndex(devs)
	evs := make([]vigil.Event, 1024)
	for i := range evs {
		src := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		if i%2 == 1 {
			src = netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
		}
		evs[i] = vigil.Event{Kind: "flow", Network: &vigil.Network{SrcIP: src, DstIP: netip.AddrFrom4([4]byte{198, 51, 100, 1})}}
	}
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		ev := evs[i%len(evs)]
		ev.Fields = nil
		if ix.Map(&ev) {
			n++
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
