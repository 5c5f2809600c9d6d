package sigma

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// benchRules loads the SigmaHQ subset the benchmark uses: rules
// whose logsource is product linux or a network product, category
// webserver/proxy/dns/firewall, or service apache/nginx/netflow (the same
// selection as `sigbase select`).
func benchRules(tb testing.TB) *RuleSet {
	c := corpusDir(tb)
	tmp := tb.TempDir()
	net := map[string]bool{"zeek": true, "cisco": true, "fortigate": true, "fortios": true, "huawei": true, "juniper": true, "paloalto": true}
	n := 0
	for _, d := range []string{"rules", "rules-emerging-threats", "rules-threat-hunting"} {
		filepath.Walk(filepath.Join(c, "sigma", d), func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() || !strings.HasSuffix(p, ".yml") {
				return nil
			}
			b, _ := os.ReadFile(p)
			var h struct {
				Logsource struct{ Product, Category, Service string }
			}
			if yaml.Unmarshal(b, &h) != nil {
				return nil
			}
			l := h.Logsource
			if !(l.Product == "linux" || net[l.Product] || l.Category == "webserver" || l.Category == "proxy" || l.Category == "dns" || l.Category == "firewall" || l.Service == "apache" || l.Service == "nginx" || l.Service == "netflow") {
				return nil
			}
			n++
			return os.WriteFile(filepath.Join(tmp, filepath.Base(p)), b, 0o644)
		})
	}
	rs, errs := LoadDirs([]string{tmp}, nil)
	if len(errs) > 0 {
		tb.Fatalf("subset does not compile: %v", errs[0])
	}
	if n != 459 {
		tb.Logf("subset has %d rules (the issue's figure is 459)", n)
	}
	return rs
}

// benchEvents reads the NDJSON file named by VIGIL_SIGMA_BENCH_EVENTS
// (made with `sigbase gen`), or skips.
func benchEvents(tb testing.TB) []byte {
	f := os.Getenv("VIGIL_SIGMA_BENCH_EVENTS")
	if f == "" {
		tb.Skip("VIGIL_SIGMA_BENCH_EVENTS not set (an NDJSON file from `sigbase gen -n 200000`); skipping")
	}
	b, err := os.ReadFile(f)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkDetectStream measures offline detection, JSON decode included,
// on one core: b.N is the number of events.
func BenchmarkDetectStream(b *testing.B) {
	rs := benchRules(b)
	data := benchEvents(b)
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	lines := bytes.Count(data, []byte{'\n'})
	b.SetBytes(int64(len(data) / lines))
	b.ResetTimer()
	t0 := cpuTime()
	var st Stats
	for done := 0; done < b.N; {
		chunk := data
		if rem := b.N - done; rem < lines {
			idx := 0
			for i := 0; i < rem; i++ {
				idx += bytes.IndexByte(data[idx:], '\n') + 1
			}
			chunk = data[:idx]
		}
		s, err := DetectStream(bytes.NewReader(chunk), io.Discard, rs)
		if err != nil {
			b.Fatal(err)
		}
		st.Events += s.Events
		st.Matches += s.Matches
		done += s.Events
		if s.Events == 0 {
			break
		}
	}
	b.ReportMetric(float64(st.Events)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(st.Events)/(float64(cpuTime()-t0)/1e9), "events/cpu-s")
	b.ReportMetric(float64(st.Matches)/float64(st.Events), "matches/event")
}

// TestDetectFile runs DetectStream like `vigil detect` on the file named by
// VIGIL_SIGMA_DETECT_INPUT with the rules under VIGIL_SIGMA_DETECT_RULES
// (default: the benchmark subset), GOMAXPROCS=1, and logs the summary line.
// It is a harness for comparing with `sigbase baseline`, not a timed test.
func TestDetectFile(t *testing.T) {
	in := os.Getenv("VIGIL_SIGMA_DETECT_INPUT")
	if in == "" {
		t.Skip("VIGIL_SIGMA_DETECT_INPUT not set; skipping")
	}
	var rs *RuleSet
	if d := os.Getenv("VIGIL_SIGMA_DETECT_RULES"); d != "" {
		var errs []FileError
		rs, errs = LoadDirs([]string{d}, nil)
		t.Logf("rules: total=%d compiled=%d rejected=%d (%d errors)", rs.Total, rs.Compiled(), rs.Rejected, len(errs))
	} else {
		rs = benchRules(t)
	}
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	c0 := cpuTime()
	st, err := DetectStream(f, io.Discard, rs)
	if err != nil {
		t.Fatal(err)
	}
	cpu := float64(cpuTime()-c0) / 1e9
	t.Logf("%s cpu_seconds=%.3f events_per_cpu_second=%.0f", st, cpu, float64(st.Events)/cpu)
}

// BenchmarkCorrelation measures event_count and value_count correlation
// through DetectStream (JSON decode included) with 100,000 distinct group
// keys, one core. b.N is the number of events. Each DetectStream run
// starts with no open window: over a stream of 1M events every key comes
// back ten times (a tenth of the events open a group), over 200k events
// twice (half of them do).
func BenchmarkCorrelation(b *testing.B) {
	rules := `title: Failed
name: failed
logsource:
    product: test
detection:
    selection:
        outcome: failure
    condition: selection
---
title: Brute force
correlation:
    type: event_count
    rules: [failed]
    group-by: [src]
    timespan: 5m
    condition:
        gte: 1000000
---
title: Spray
correlation:
    type: value_count
    rules: [failed]
    group-by: [src]
    timespan: 5m
    condition:
        field: user
        gte: 1000000
`
	rs, errs := LoadBytes("corr.yml", []byte(rules), nil)
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	for _, n := range []int{1000000, 200000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			var buf bytes.Buffer
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for i := 0; i < n; i++ {
				fmt.Fprintf(&buf, `{"logsource.product":"test","@timestamp":%q,"outcome":"failure","src":"10.%d.%d.%d","user":"u%d"}`+"\n",
					t0.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), (i%100000)>>16, (i%100000)>>8&255, (i%100000)&255, i%7)
			}
			data := buf.Bytes()
			prev := runtime.GOMAXPROCS(1)
			defer runtime.GOMAXPROCS(prev)
			b.ResetTimer()
			c0 := cpuTime()
			done := 0
			for done < b.N {
				st, err := DetectStream(bytes.NewReader(data), io.Discard, rs)
				if err != nil {
					b.Fatal(err)
				}
				done += st.Events
			}
			b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(done)/(float64(cpuTime()-c0)/1e9), "events/cpu-s")
		})
	}
}
