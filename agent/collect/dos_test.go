package collect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/wire"
)

// dosRoot is a file tree the DoS collector reads, with a clock that moves
// 10s a tick.
type dosRoot struct {
	t    testing.TB
	root string
	now  time.Time
}

func newDoSRoot(t testing.TB) *dosRoot {
	r := &dosRoot{t: t, root: t.TempDir(), now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	return r
}

func (r *dosRoot) env() Env { return Env{Root: r.root, Now: func() time.Time { return r.now }} }

// load copies a recorded snapshot of testdata/dos.
func (r *dosRoot) load(name string) {
	for _, f := range []string{"snmp", "netstat", "tcp", "dev"} {
		b, err := os.ReadFile(filepath.Join("testdata/dos", name, "proc/net", f))
		if err != nil {
			r.t.Fatal(err)
		}
		r.write("/proc/net/"+f, string(b))
	}
}

func (r *dosRoot) write(p, content string) {
	full := filepath.Join(r.root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// setCounter changes one counter of a /proc/net/snmp-style file.
func (r *dosRoot) setCounter(file, proto, name string, v uint64) {
	b, err := os.ReadFile(filepath.Join(r.root, file))
	if err != nil {
		r.t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i++ {
		names := strings.Fields(lines[i])
		if len(names) == 0 || names[0] != proto+":" {
			continue
		}
		for j, n := range names {
			if n == name {
				vals := strings.Fields(lines[i+1])
				vals[j] = strconv.FormatUint(v, 10)
				lines[i+1] = strings.Join(vals, " ")
				r.write(file, strings.Join(lines, "\n"))
				return
			}
		}
	}
	r.t.Fatalf("no counter %s %s in %s", proto, name, file)
}

// collect runs one collection, the clock 10s after the previous one, and
// returns its events as "action/event.type" strings.
func (r *dosRoot) collect(d *DoS) ([]string, []wire.SecurityEvent) {
	r.t.Helper()
	r.now = r.now.Add(10 * time.Second)
	var rep wire.Report
	if err := d.Collect(context.Background(), &rep); err != nil {
		r.t.Fatalf("collect: %v", err)
	}
	var out []string
	for _, e := range rep.Events {
		if e.Kind != KindDoS {
			r.t.Errorf("event of kind %q", e.Kind)
		}
		out = append(out, e.Action+"/"+e.Fields["event.type"])
	}
	return out, rep.Events
}

func TestDoSFromRecordedCounters(t *testing.T) {
	r := newDoSRoot(t)
	d := &DoS{Env: r.env()}
	step := func(snapshot string, want ...string) []wire.SecurityEvent {
		t.Helper()
		r.load(snapshot)
		got, evs := r.collect(d)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: got %v, want %v", snapshot, got, want)
		}
		return evs
	}
	step("before")
	evs := step("syn", "syn_flood/start")
	f := evs[0].Fields
	for k, v := range map[string]string{"destination.port": "8080", "dos.syn_recv": "17", "dos.syn_cookies_per_sec": "298.3",
		"source.ip": "10.66.0.10", "dos.top_sources": "10.66.0.10:6,10.66.0.11:6,10.66.0.12:5"} {
		if f[k] != v {
			t.Errorf("%s = %q, want %q", k, f[k], v)
		}
	}
	// The UDP snapshot comes from another namespace: the TCP counters go
	// down (a reset), which counts as zero, not as a huge rate.
	step("udp", "udp_flood/start")
	step("udp", "syn_flood/end")
	step("udp", "udp_flood/end")
}

func TestDoSThresholds(t *testing.T) {
	f := func(name string, th DoSThresholds, change func(r *dosRoot), want ...string) {
		t.Helper()
		r := newDoSRoot(t)
		r.load("before")
		d := &DoS{Env: r.env(), Thresholds: th}
		r.collect(d)
		change(r)
		got, _ := r.collect(d)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	icmp := func(n uint64) func(*dosRoot) {
		return func(r *dosRoot) { r.setCounter("/proc/net/snmp", "Icmp", "InMsgs", n) }
	}
	f("icmp below", DoSThresholds{}, icmp(4000))
	f("icmp flood", DoSThresholds{}, icmp(6000), "icmp_flood/start")
	f("icmp threshold lowered", DoSThresholds{ICMPIn: 100}, icmp(2000), "icmp_flood/start")
	f("icmp test off", DoSThresholds{ICMPIn: -1}, icmp(600000))
	f("udp closed ports", DoSThresholds{}, func(r *dosRoot) {
		r.setCounter("/proc/net/snmp", "Udp", "NoPorts", 20000)
	}, "udp_flood/start")
	f("listen drops", DoSThresholds{}, func(r *dosRoot) {
		r.setCounter("/proc/net/netstat", "TcpExt", "TCPReqQFullDrop", 1000)
	}, "syn_flood/start")
	f("conntrack below", DoSThresholds{}, func(r *dosRoot) {
		r.write("/proc/sys/net/netfilter/nf_conntrack_count", "890\n")
		r.write("/proc/sys/net/netfilter/nf_conntrack_max", "1024\n")
	})
	f("conntrack full", DoSThresholds{}, func(r *dosRoot) {
		r.write("/proc/sys/net/netfilter/nf_conntrack_count", "1000\n")
		r.write("/proc/sys/net/netfilter/nf_conntrack_max", "1024\n")
	}, "conntrack_exhaustion/start")
}

// netDev is a /proc/net/dev with one interface besides loopback.
func netDev(bytes, packets uint64) string {
	return fmt.Sprintf("Inter-|   Receive\n face |bytes    packets errs\n    lo: 999999999 999999 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n  eth0: %d %d 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n", bytes, packets)
}

func TestDoSBandwidthAgainstNorm(t *testing.T) {
	r := newDoSRoot(t)
	r.load("before")
	d := &DoS{Env: r.env(), Thresholds: DoSThresholds{BandwidthLearn: 5}}
	var by, pk uint64
	next := func(bps, pps uint64) []string {
		by, pk = by+10*bps, pk+10*pps
		r.write("/proc/net/dev", netDev(by, pk))
		got, _ := r.collect(d)
		return got
	}
	next(0, 0)
	// Learning: 200 kB/s; even 10 times that is not reported yet.
	for i := 0; i < 4; i++ {
		if got := next(200_000, 200); len(got) != 0 {
			t.Fatalf("learning: %v", got)
		}
	}
	if got := next(3_000_000, 300); len(got) != 0 {
		t.Fatalf("still learning (5 samples make the norm): %v", got)
	}
	if got := next(300_000, 300); len(got) != 0 {
		t.Fatalf("normal traffic: %v", got)
	}
	_, evs := func() ([]string, []wire.SecurityEvent) {
		by, pk = by+10*50_000_000, pk+10*40_000
		r.write("/proc/net/dev", netDev(by, pk))
		return r.collect(d)
	}()
	if len(evs) != 1 || evs[0].Action != ActionBandwidthSpike || evs[0].Fields["event.type"] != "start" {
		t.Fatalf("50 MB/s against a norm under 1 MB/s: want a bandwidth_spike start, got %v", evs)
	}
	norm, _ := strconv.ParseFloat(evs[0].Fields["dos.norm.rx_bytes_per_sec"], 64)
	if norm < 200_000 || norm > 1_000_000 {
		t.Errorf("norm %v: want the mean of the learnt traffic", norm)
	}
	// The spike does not teach the norm: the same spike again is still on,
	// and two normal samples end it.
	if got := next(50_000_000, 40_000); len(got) != 0 {
		t.Fatalf("spike going on: %v", got)
	}
	next(200_000, 200)
	if got := next(200_000, 200); fmt.Sprint(got) != "[bandwidth_spike/end]" {
		t.Fatalf("after the spike: %v", got)
	}
	// A counter reset (interface re-created) is no spike.
	by, pk = 0, 0
	if got := next(200_000, 200); len(got) != 0 {
		t.Fatalf("after a reset: %v", got)
	}
}

func TestParseSNMP(t *testing.T) {
	b, err := os.ReadFile("testdata/dos/syn/proc/net/netstat")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	if err := ParseSNMP(b, func(p, n string, v uint64) { got[p+"."+n] = v }); err != nil {
		t.Fatal(err)
	}
	if got["TcpExt.SyncookiesSent"] == 0 || len(got) < 100 {
		t.Errorf("want SyncookiesSent and over 100 counters, got %d: %v", len(got), got["TcpExt.SyncookiesSent"])
	}
	bad := func(in, want string) {
		t.Helper()
		err := ParseSNMP([]byte(in), func(string, string, uint64) {})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error with %q", in, err, want)
		}
	}
	bad("Tcp: A B\n", "line 1: counter names without a line of values")
	bad("Tcp: A B\nTcp: 1\n", "line 2: Tcp has 2 names but 1 values")
	bad("Tcp: A B\nUdp: 1 2\n", `line 2: want a "Tcp" line of values`)
	bad("Tcp: A B\nTcp: 1 x\n", `line 2: Tcp B: "x" is not a number`)
	if err := ParseSNMP([]byte("Tcp: MaxConn\nTcp: -1\n"), func(_, _ string, v uint64) {
		if v != 0 {
			t.Errorf("negative counter: got %d, want 0", v)
		}
	}); err != nil {
		t.Error(err)
	}
}

func FuzzParseSNMP(f *testing.F) {
	for _, s := range []string{"before", "syn", "udp"} {
		for _, n := range []string{"snmp", "netstat"} {
			b, err := os.ReadFile(filepath.Join("testdata/dos", s, "proc/net", n))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte("Tcp: A\nTcp: -1\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		_ = ParseSNMP(b, func(p, name string, v uint64) {
			if name == "" {
				t.Fatalf("empty counter name in proto %q", p)
			}
			n++
		})
		if n > len(b) {
			t.Fatalf("%d counters from %d bytes", n, len(b))
		}
	})
}

func FuzzParseSNMP6(f *testing.F) {
	f.Add([]byte("Ip6InReceives                   \t12\nUdp6InDatagrams 3\nIcmp6InEchos 0\n"))
	f.Add([]byte("Udp6InErrors -1\n"))
	f.Add([]byte("Udp6NoPorts\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		_ = ParseSNMP6(b, func(name string, v uint64) {
			if name == "" {
				t.Fatal("empty counter name")
			}
			n++
		})
		if n > len(b)/3 {
			t.Fatalf("%d counters from %d bytes", n, len(b))
		}
	})
}

func TestParseSNMP6(t *testing.T) {
	got := map[string]uint64{}
	err := ParseSNMP6([]byte("Ip6InReceives \t 7\n\nUdp6RcvbufErrors 42\n"), func(n string, v uint64) { got[n] = v })
	if err != nil || got["Ip6InReceives"] != 7 || got["Udp6RcvbufErrors"] != 42 || len(got) != 2 {
		t.Fatalf("got %v, %v", got, err)
	}
	err = ParseSNMP6([]byte("Udp6InErrors 1\nUdp6NoPorts x\n"), func(string, uint64) {})
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "Udp6NoPorts") {
		t.Fatalf("want an error naming line 2 and the counter, got %v", err)
	}
}

// BenchmarkDoSCollect is one collection of the dos collector on the
// counters recorded during a SYN flood (17 half-open connections).
func BenchmarkDoSCollect(b *testing.B) {
	r := newDoSRoot(b)
	r.load("syn")
	d := &DoS{Env: r.env()}
	var rep wire.Report
	b.ReportAllocs()
	for b.Loop() {
		r.now = r.now.Add(10 * time.Second)
		rep.Events = rep.Events[:0]
		if err := d.Collect(context.Background(), &rep); err != nil {
			b.Fatal(err)
		}
	}
}
