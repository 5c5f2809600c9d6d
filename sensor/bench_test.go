package sensor

import (
	"context"
	"io"
	"path/filepath"
	"testing"
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
	b.ReportMetric(float64(pkts)/s, "packets/s")
	b.ReportMetric(float64(bytes)*8/s/1e9, "Gbit/s")
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
