package sensor

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// benchPcap runs the sensor over one capture per iteration with every
// decoder and flows on, events encoded as NDJSON to io.Discard when json
// is set (else counted and dropped), and reports packets/s and Gbit/s.
func benchPcap(b *testing.B, file string, json bool) {
	cfg := Config{Pcaps: []string{file}, OUI: testOUI()}
	if json {
		cfg.Output = io.Discard
	}
	var st Stats
	var pkts, bytes uint64
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		var err error
		st, err = Run(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		pkts += st.Packets
		bytes += st.Bytes
	}
	s := b.Elapsed().Seconds()
	cpu := (cpuTime() - cpu0).Seconds()
	b.ReportMetric(float64(pkts)/s, "packets/s")
	b.ReportMetric(float64(bytes)*8/s/1e9, "Gbit/s")
	// Per CPU second of the whole process (garbage collection on other
	// cores included): steadier than the wall clock on a shared machine.
	if cpu > 0 {
		b.ReportMetric(float64(bytes)*8/cpu/1e9, "Gbit/cpu-s")
	}
	b.ReportMetric(float64(st.Events), "events/op")
}

// BenchmarkModbusBig is the largest corpus capture (Zeek's
// Traces/modbus/modbusBig.pcap, 13.6k packets).
func BenchmarkModbusBig(b *testing.B) {
	f := filepath.Join(corpusDir(b, "pcap/zeek"), "Traces", "modbus", "modbusBig.pcap")
	b.Run("events", func(b *testing.B) { benchPcap(b, f, false) })
	b.Run("ndjson", func(b *testing.B) { benchPcap(b, f, true) })
}

// BenchmarkMQTT runs Zeek's Traces/mqtt.pcap.
func BenchmarkMQTT(b *testing.B) {
	benchPcap(b, filepath.Join(corpusDir(b, "pcap/zeek"), "Traces", "mqtt.pcap"), false)
}

// BenchmarkFlowTable1M fills a flow table of one million flows (one SYN
// each, discovery off) and reports the heap it holds per flow. With
// MaxFlows at 1M, a second million of flows evicts the first: memory stays
// bounded.
func BenchmarkFlowTable1M(b *testing.B) {
	if s := os.Getenv("VIGIL_BENCH_FLOWS"); s != "" {
		flowBenchN, _ = strconv.Atoi(s)
	}
	n := flowBenchN
	pkt := frame(LinkEthernet, ipv4TCP(cliIP, srvIP, 1, 80, 1, tcpSYN, nil))
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		e := newEngine(context.Background(), Config{MaxFlows: n, DisableDiscovery: true}.withDefaults(), nil)
		ts := time.Unix(1700000000, 0)
		for i := 0; i < 2*n; i++ {
			// A new client address and port per flow.
			binary.BigEndian.PutUint32(pkt[14+12:], uint32(0x0a000000+i))
			binary.BigEndian.PutUint16(pkt[14+20:], uint16(i))
			e.packet(LinkEthernet, pkt, ts, len(pkt))
			if len(e.batch) > 0 {
				e.batch = e.batch[:0]
				e.arena.Reset() // as flush does
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if len(e.table.m) != n || e.stats.FlowsEvicted != uint64(n) {
			b.Fatalf("flows %d, evicted %d", len(e.table.m), e.stats.FlowsEvicted)
		}
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/float64(n), "heap-bytes/flow")
		runtime.KeepAlive(e)
	}
}

// flowBenchN is the table size of BenchmarkFlowTable1M.
var flowBenchN = 1 << 20
