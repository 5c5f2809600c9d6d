package sigma

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"testing"
)

func TestDebugTop(t *testing.T) {
	f := os.Getenv("VIGIL_SIGMA_BENCH_EVENTS")
	if f == "" {
		t.Skip("no events")
	}
	rs := benchRules(t)
	data, _ := os.ReadFile(f)
	st, _ := DetectStream(bytes.NewReader(data), io.Discard, rs)
	fmt.Println(st)
	s := rs.Stats()
	sort.Slice(s, func(i, j int) bool { return s[i].Matches > s[j].Matches })
	for _, x := range s[:15] {
		fmt.Println(x.Matches, x.Evals, x.Title)
	}
	sort.Slice(s, func(i, j int) bool { return s[i].EvalNanos > s[j].EvalNanos })
	for _, x := range s[:15] {
		fmt.Println(x.EvalNanos/1e6, "ms", x.Evals, x.Title)
	}
	kw := 0
	for _, r := range rs.Rules {
		if r.keywords {
			kw++
			fmt.Println("kw:", r.Logsource, r.Title, len(r.prefilt))
		}
	}
}
