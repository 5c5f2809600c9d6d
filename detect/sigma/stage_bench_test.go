package sigma

import (
	"bytes"
	"runtime"
	"syscall"
	"testing"
)

// cpuTime is the process's user+system CPU time in nanoseconds: unlike
// wall time it does not count time other processes hold the core.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkStages splits the per-event cost: JSON scan only, then field
// prefilter scans, then keyword scans, then rule evaluation.
func BenchmarkStages(b *testing.B) {
	rs := benchRules(b)
	data := benchEvents(b)
	lines := bytes.Split(bytes.TrimSpace(data), []byte{'\n'})
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	m := rs.NewMatcher()
	c := m.ctx
	for _, stage := range []string{"scan", "route", "prefilter", "eval"} {
		b.Run(stage, func(b *testing.B) {
			t0 := cpuTime()
			defer func() { b.ReportMetric(float64(cpuTime()-t0)/float64(b.N), "cpu-ns/op") }()
			for i := 0; i < b.N; i++ {
				line := lines[i%len(lines)]
				c.reset(len(rs.fieldNames))
				if err := rs.scanEvent(c, line); err != nil {
					b.Fatal(err)
				}
				if stage == "scan" {
					continue
				}
				m.js.rs, m.js.line = rs, line
				c.src = &m.js
				ls := Logsource{Product: m.str(slotProduct), Category: m.str(slotCategory), Service: m.str(slotService)}
				rt := m.lastRoute(ls)
				if stage == "route" {
					continue
				}
				prefilter(c, rs, rt)
				if stage == "prefilter" {
					continue
				}
				evalRules(c, rs, rt, 1, nil)
			}
		})
	}
}
