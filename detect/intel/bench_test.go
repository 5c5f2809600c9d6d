package intel

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/feeds"
)

// synth makes n indicators shaped like real feeds: 80% IPv4 addresses, 2%
// IPv4 prefixes, 3% IPv6, 10% domains, 5% sha256, with STIX-length ids.
func synth(n int) []feeds.Indicator {
	rng := rand.New(rand.NewPCG(7, 7))
	out := make([]feeds.Indicator, 0, n)
	for i := range n {
		in := feeds.Indicator{ID: fmt.Sprintf("indicator--%08x-0000-4000-8000-%012x", i, i), Feed: "synthetic", Confidence: 70,
			Name: "botnet", ValidFrom: time.Unix(1700000000, 0)}
		switch r := rng.IntN(100); {
		case r < 80:
			in.Type, in.Value = feeds.TypeIP, netip.AddrFrom4([4]byte{byte(1 + rng.IntN(223)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))}).String()
		case r < 82:
			in.Type, in.Value = feeds.TypeIP, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(1 + rng.IntN(223)), byte(rng.IntN(256)), byte(rng.IntN(256)), 0}), 16+rng.IntN(9)).Masked().String()
		case r < 85:
			var b [16]byte
			b[0], b[1] = 0x20, 0x01
			for k := 2; k < 16; k++ {
				b[k] = byte(rng.IntN(256))
			}
			in.Type, in.Value = feeds.TypeIP, netip.AddrFrom16(b).String()
		case r < 95:
			in.Type, in.Value = feeds.TypeDomain, fmt.Sprintf("h%x.bad%d.example", rng.Uint32(), rng.IntN(50000))
		default:
			in.Type, in.Value = feeds.TypeSHA256, fmt.Sprintf("%016x%016x%016x%016x", rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64())
		}
		out = append(out, in)
	}
	return out
}

var bigSet *Set

func loadBig(b *testing.B) *Set {
	if bigSet == nil {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		bigSet = Build(synth(1_000_000)) // the input slice is garbage after this
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.Logf("1M indicators: %.0f bytes per indicator in the Set (live heap growth; ids, values and maps included)", float64(m1.HeapAlloc-m0.HeapAlloc)/1e6)
	}
	return bigSet
}

// BenchmarkLookupAddr: one lookup = one address checked against 1M
// indicators (exact maps and the prefix table), 1 in 16 a hit.
func BenchmarkLookupAddr(b *testing.B) {
	s := loadBig(b)
	rng := rand.New(rand.NewPCG(9, 9))
	addrs := make([]netip.Addr, 4096)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
	}
	k := 0
	for i := range s.entries {
		if k < len(addrs) && s.entries[i].typ == 0 && i%16 == 0 {
			if a, err := netip.ParseAddr(s.entries[i].value); err == nil && a.Is4() {
				addrs[k] = a
				k += 16
			}
		}
	}
	now := time.Unix(1750000000, 0)
	b.ReportAllocs()
	b.ResetTimer()
	hits := 0
	for i := 0; b.Loop(); i++ {
		hits += s.CountAddr(addrs[i&4095], now)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}

// BenchmarkLookupDomain: one lookup = one name and its parents.
func BenchmarkLookupDomain(b *testing.B) {
	s := loadBig(b)
	names := make([]string, 1024)
	for i := range names {
		names[i] = fmt.Sprintf("www.h%x.bad%d.example", i*7919, i)
	}
	now := time.Unix(1750000000, 0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.CountDomain(names[i&1023], now)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}

// BenchmarkDetectNetworkEvent: a whole connection event (two addresses).
func BenchmarkDetectNetworkEvent(b *testing.B) {
	s := loadBig(b)
	d := New(nil, nil)
	d.Swap(s)
	ev := &vigil.Event{ID: "e", Time: time.Unix(1750000000, 0), Kind: "network",
		Network: &vigil.Network{SrcIP: netip.MustParseAddr("10.0.0.7"), DstIP: netip.MustParseAddr("93.184.216.34"), DstPort: 443}}
	emit := func(vigil.Alert) {}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		d.Detect(context.Background(), 0, ev, emit)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
