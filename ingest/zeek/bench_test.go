package zeek

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/proto"
)

// benchConn returns a TSV conn log of n records of varied connections.
func benchConn(n int) []byte {
	var b bytes.Buffer
	b.WriteString(tsvConn[:bytes.Index([]byte(tsvConn), []byte("\n1709287200"))+1])
	states := []string{"SF\tT\tT\t0\tShADadFf", "S0\tT\tF\t0\tS", "RSTO\tT\tT\t0\tShADaR", "SF\tT\tF\t0\tDd"}
	for i := 0; i < n; i++ {
		proto, svc := "tcp", "mqtt"
		if i%4 == 3 {
			proto, svc = "udp", "dns"
		}
		fmt.Fprintf(&b, "%d.%06d\tC%xq8zK2\t192.168.%d.%d\t%d\t10.0.%d.%d\t%d\t%s\t%s\t%d.%06d\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t-\n",
			1709287200+i/100, i%1000000, i, i>>8&255, i&255, 32768+i%28000, i>>10&255, i>>3&255, []int{1883, 502, 443, 53}[i%4],
			proto, svc, i%7, i%999999, 100+i%900, 40+i%5000, states[i%4], 3+i%20, 300+i%9000, 2+i%18, 200+i%90000)
	}
	return b.Bytes()
}

// BenchmarkConnTSV converts Zeek conn records (TSV) into events: the
// records/s metric is per core (-cpu 1). docs/benchmarks.md has the
// figure.
func BenchmarkConnTSV(b *testing.B) {
	benchRead(b, benchConn(100_000), false)
}

// BenchmarkConnTSVToNDJSON converts and encodes the events as the NDJSON
// vigil ingest --output writes.
func BenchmarkConnTSVToNDJSON(b *testing.B) {
	benchRead(b, benchConn(100_000), true)
}

func benchRead(b *testing.B, log []byte, encode bool) {
	var arena proto.FieldArena
	var out []byte
	b.SetBytes(int64(len(log)))
	b.ReportAllocs()
	records := 0
	var cpu time.Duration
	for b.Loop() {
		cpu0 := cpuTime()
		r := NewReader(bytes.NewReader(log), Options{Name: "conn.log", Arena: &arena})
		evs := make([]proto.Event, 0, 256)
		for {
			var err error
			evs, err = r.Next(evs)
			if len(evs) >= 256 || err != nil {
				if encode {
					out = out[:0]
					for i := range evs {
						out, _ = evs[i].AppendJSON(out)
						out = append(out, '\n')
					}
				}
				evs = evs[:0]
				arena.Reset()
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		records += r.Stats().Records
		cpu += cpuTime() - cpu0
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	if cpu > 0 {
		b.ReportMetric(float64(records)/cpu.Seconds(), "records/cpu-s")
	}
}
