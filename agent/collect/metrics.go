package collect

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/wire"
)

// Metrics reads custom metrics, one "name value" line each, from a file or
// the output of a command, into health.metrics. Blank lines and lines
// starting with # are skipped; a bad line is an error that names it, the
// other lines still count.
type Metrics struct {
	File    string
	Command []string
	// Timeout bounds the command (default 10s).
	Timeout time.Duration
}

// Name returns "metrics".
func (m *Metrics) Name() string { return "metrics" }

// Collect adds the metrics.
func (m *Metrics) Collect(ctx context.Context, r *wire.Report) error {
	var (
		data []byte
		err  error
		src  string
	)
	switch {
	case len(m.Command) > 0:
		src = m.Command[0]
		to := m.Timeout
		if to <= 0 {
			to = 10 * time.Second
		}
		cctx, cancel := context.WithTimeout(ctx, to)
		defer cancel()
		data, err = exec.CommandContext(cctx, m.Command[0], m.Command[1:]...).Output()
		if err != nil {
			return fmt.Errorf("cannot run metrics command %q: %w", src, err)
		}
	case m.File != "":
		src = m.File
		data, err = os.ReadFile(m.File)
		if err != nil {
			return fmt.Errorf("cannot read metrics: %w", err)
		}
	default:
		return nil
	}
	vals, err := ParseMetrics(data)
	if len(vals) > 0 {
		h := ensureHealth(r)
		if h.Metrics == nil {
			h.Metrics = wire.Metrics{}
		}
		for k, v := range vals {
			h.Metrics[k] = v
		}
	}
	if err != nil {
		return fmt.Errorf("metrics from %s: %w", src, err)
	}
	return nil
}

// ParseMetrics reads "name value" lines.
func ParseMetrics(b []byte) (map[string]float64, error) {
	out := map[string]float64{}
	var bad []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			bad = append(bad, fmt.Sprintf("line %d: want \"name value\", got %q", n, line))
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			bad = append(bad, fmt.Sprintf("line %d: %q is not a finite number", n, f[1]))
			continue
		}
		out[f[0]] = v
	}
	if len(bad) > 0 {
		return out, fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return out, nil
}
