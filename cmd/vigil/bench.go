package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/node"
	"github.com/vigil-iot/vigil/sim"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Load generators that measure a Vigil server"}
	cmd.AddCommand(newBenchIngestCmd())
	return cmd
}

type benchOptions struct {
	url, token, caFile string
	duration           time.Duration
	rate               int
	batch              int
	devices            int
	concurrency        int
	reportRate         int
	probeEvery         int
	partitions         int
	cpuProfile         string
	baseline           bool
	store              node.StoreConfig // of the in-process server

	drainTimeout time.Duration // 0: report what was accepted without waiting for the server
	idBase       uint64        // first event id number; 0: from the clock
}

func newBenchIngestCmd() *cobra.Command {
	o := benchOptions{duration: 30 * time.Second, batch: 1000, devices: 1000, concurrency: 4, reportRate: 50, probeEvery: 200, partitions: 8, baseline: true, drainTimeout: 5 * time.Minute}
	cmd := &cobra.Command{
		Use:   "ingest",
		Short: "Post bulk events and agent reports over HTTPS; report events/s and ingest→alert latency",
		Long: `Post bulk NDJSON events (about 480 bytes each) and agent reports to a Vigil server over
HTTPS for --duration, at --rate events/s (0: as fast as the server takes them), then wait until
every accepted event is stored and evaluated, and report the sustained rate and the p50/p99
ingest→alert latency read from the server's vigil_detect_latency_seconds histogram. Every
--probe-every-th event is a telnet listener that the default rules alert on.

Without --url it starts a server on embedded defaults (embedded NATS on file storage, SQLite)
in a temporary data dir in this process; with --url it measures that server, reading its
/metrics with --token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBenchIngest(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "server URL (default: start one in this process)")
	f.StringVar(&o.token, "token", "", "API token (admin, or agent plus metrics access) for --url")
	f.StringVar(&o.caFile, "ca", "", "CA certificate of the server for --url")
	f.DurationVar(&o.duration, "duration", o.duration, "how long to post")
	f.IntVar(&o.rate, "rate", 0, "target events/s (0: as fast as possible)")
	f.IntVar(&o.batch, "batch", o.batch, "events per bulk request")
	f.IntVar(&o.devices, "devices", o.devices, "distinct devices in the events")
	f.IntVar(&o.concurrency, "concurrency", o.concurrency, "concurrent bulk posters")
	f.IntVar(&o.reportRate, "report-rate", o.reportRate, "agent reports per second, besides the bulk events")
	f.IntVar(&o.probeEvery, "probe-every", o.probeEvery, "one event in this many raises an alert")
	f.IntVar(&o.partitions, "partitions", o.partitions, "bus partitions of the in-process server")
	f.BoolVar(&o.baseline, "baseline", o.baseline, "run the learned-behaviour detector in the in-process server (--baseline=false measures without it)")
	f.StringVar(&o.store.Driver, "store-driver", "", "store of the in-process server: sqlite (default) or postgres")
	f.StringVar(&o.store.URL, "store-url", "", "PostgreSQL URL of the in-process server's store (--store-driver postgres)")
	f.StringVar(&o.store.Schema, "store-schema", "", "PostgreSQL schema of the in-process server's store")

	f.DurationVar(&o.drainTimeout, "drain-timeout", o.drainTimeout, "how long to wait for the server to store and evaluate what it accepted (0: report the accepted events at once; for a node of a cluster, or one that is killed)")
	f.Uint64Var(&o.idBase, "id-base", 0, "first event id number (default: from the clock); give several concurrent benches distinct bases")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (server included when in-process) to this file")
	return cmd
}

func runBenchIngest(ctx context.Context, o benchOptions, out io.Writer) error {
	stop, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	var (
		base   string
		token  string
		pool   *x509.CertPool
		gather func() ([]*dto.MetricFamily, error)
	)
	if o.url == "" {
		dir, err := os.MkdirTemp("", "vigil-bench-")
		if err != nil {
			return fmt.Errorf("cannot create bench data dir: %w", err)
		}
		defer os.RemoveAll(dir)
		logf, err := os.Create(filepath.Join(dir, "vigil.log"))
		if err != nil {
			return err
		}
		defer logf.Close()
		cfg := node.DefaultConfig()
		cfg.DataDir, cfg.Listen, cfg.Partitions = dir, "127.0.0.1:0", o.partitions
		cfg.Baseline.Enabled = o.baseline
		if o.store.Driver != "" {
			cfg.Store = o.store
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
		a, err := node.Open(ctx, cfg, newLogger(logf, "warn"))
		if err != nil {
			return err
		}
		if err := a.Start(ctx); err != nil {
			a.Close()
			return err
		}
		defer a.Close()
		base, token, gather = a.URL(), a.AdminToken(), a.Gatherer().Gather
		pool = a.CAPool()
		fmt.Fprintf(out, "bench: server in this process at %s (embedded NATS, %s, %d partitions, baseline %v)\n", base, cfg.Store.Describe(dir), o.partitions, o.baseline)
	} else {
		base, token = o.url, o.token
		if o.caFile != "" {
			var err error
			if pool, err = client.LoadCAFile(o.caFile); err != nil {
				return err
			}
		}
		hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: client.TLSConfig(pool)}}
		gather = func() ([]*dto.MetricFamily, error) { return scrapeMetrics(ctx, hc, base, token) }
	}
	c, err := client.New(base, token, client.TLSConfig(pool), client.WithMaxConns(o.concurrency+2))
	if err != nil {
		return err
	}
	defer c.Close()

	before, err := gather()
	if err != nil {
		return fmt.Errorf("cannot read server metrics: %w", err)
	}
	// Pre-generate batches; each post reuses one with fresh event ids.
	now := time.Now()
	fleet := sim.NewFleet(o.devices, 7, now)
	templates := make([][]byte, 16)
	for i := range templates {
		templates[i] = fleet.BulkBatch(o.batch, now, o.probeEvery, uint64(i*o.batch))
	}
	idOffsets := make([][]int, len(templates))
	timeOffsets := make([][]int, len(templates))
	for i, t := range templates {
		idOffsets[i] = findAfter(t, `"id":"`+sim.BulkIDPrefix)
		timeOffsets[i] = findAfter(t, `"time":"`)
	}

	var (
		nextID          atomic.Uint64
		batches         atomic.Int64
		accepted        atomic.Int64
		rejected        atomic.Int64
		busy, failed    atomic.Int64
		reportsAccepted atomic.Int64
		firstFailure    atomic.Value // string
	)
	nextID.Store(uint64(time.Now().UnixNano()) & 0xffffffffff)
	if o.idBase != 0 {
		nextID.Store(o.idBase)
	}
	start := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var wg sync.WaitGroup
	for w := range o.concurrency {
		wg.Go(func() {
			body := make([]byte, 0, len(templates[0])+1024)
			for i := w; runCtx.Err() == nil; i += o.concurrency {
				n := batches.Add(1) - 1
				if o.rate > 0 {
					due := start.Add(time.Duration(float64(n*int64(o.batch)) / float64(o.rate) * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						select {
						case <-runCtx.Done():
							return
						case <-time.After(d):
						}
					}
				}
				k := i % len(templates)
				body = append(body[:0], templates[k]...)
				id := nextID.Add(uint64(len(idOffsets[k])))
				for j, off := range idOffsets[k] {
					writeHex15(body[off:], id+uint64(j))
				}
				// Events carry the time they are sent, as real sources do:
				// time-keyed indexes then grow at their end.
				now := time.Now().UTC()
				for j, off := range timeOffsets[k] {
					now.Add(time.Duration(j)*time.Microsecond).AppendFormat(body[off:off], sim.BulkTimeLayout)
				}
				res, err := c.PostEvents(runCtx, body)
				switch {
				case err == nil:
					accepted.Add(int64(res.Accepted))
					rejected.Add(int64(len(res.Rejected)))
				case isBusy(err):
					busy.Add(1)
					time.Sleep(100 * time.Millisecond)
				case runCtx.Err() == nil:
					if failed.Add(1) == 1 {
						firstFailure.Store(err.Error())
					}
				}
			}
		})
	}
	if o.reportRate > 0 {
		wg.Go(func() {
			t := time.NewTicker(time.Second / time.Duration(o.reportRate))
			defer t.Stop()
			i := 0
			for runCtx.Err() == nil {
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
				}
				d := fleet.Devices[i%len(fleet.Devices)]
				i++
				if _, err := c.PostReport(runCtx, "application/json", encodeReport("application/json", fleet.Report(d, time.Now()))); err == nil {
					reportsAccepted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	posted := time.Since(start)
	if o.drainTimeout <= 0 {
		fmt.Fprintf(out, "bench: posted for %s\n", posted.Round(time.Millisecond))
		fmt.Fprintf(out, "bench: bulk events accepted=%d rejected=%d, agent reports=%d, 429 answers=%d, failed requests=%d\n",
			accepted.Load(), rejected.Load(), reportsAccepted.Load(), busy.Load(), failed.Load())
		fmt.Fprintf(out, "bench: ingest_events_per_second=%.0f\n", float64(accepted.Load())/posted.Seconds())
		if f, ok := firstFailure.Load().(string); ok {
			fmt.Fprintf(out, "bench: first failed request: %s\n", f)
		}
		return nil
	}

	// Wait until the server has stored and evaluated everything the bus took.
	var after []*dto.MetricFamily
	deadline := time.Now().Add(o.drainTimeout)
	for {
		if after, err = gather(); err != nil {
			return fmt.Errorf("cannot read server metrics: %w", err)
		}
		pub := delta(before, after, "vigil_bus_published_total", "kind", "events")
		stored := delta(before, after, "vigil_store_events_stored_total", "", "") + delta(before, after, "vigil_store_events_duplicate_total", "", "")
		evaluated := delta(before, after, "vigil_detect_events_total", "", "")
		if (stored >= pub && evaluated >= pub) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	total := time.Since(start)
	pub := delta(before, after, "vigil_bus_published_total", "kind", "events")
	stored := delta(before, after, "vigil_store_events_stored_total", "", "")
	evaluated := delta(before, after, "vigil_detect_events_total", "", "")
	p50, p99, n := histQuantiles(before, after, "vigil_detect_latency_seconds")

	fmt.Fprintf(out, "bench: posted for %s, drained after %s\n", posted.Round(time.Millisecond), total.Round(time.Millisecond))
	fmt.Fprintf(out, "bench: bulk events accepted=%d rejected=%d, agent reports=%d, 429 answers=%d, failed requests=%d\n",
		accepted.Load(), rejected.Load(), reportsAccepted.Load(), busy.Load(), failed.Load())
	fmt.Fprintf(out, "bench: bus events=%.0f stored=%.0f evaluated=%.0f alerts(latency samples)=%.0f\n", pub, stored, evaluated, n)
	fmt.Fprintf(out, "bench: events=%.0f seconds=%.2f ingest_events_per_second=%.0f stored_evaluated_events_per_second=%.0f latency_p50=%s latency_p99=%s\n",
		pub, total.Seconds(), float64(accepted.Load())/posted.Seconds(), math.Min(stored, evaluated)/total.Seconds(),
		secs(p50), secs(p99))
	return nil
}

// findAfter returns the offsets just after each occurrence of pat in an
// NDJSON batch made by sim.BulkBatch: where the fixed-width id digits and
// times start.
func findAfter(b []byte, p string) []int {
	var offs []int
	pat := []byte(p)
	for i := 0; ; {
		j := bytes.Index(b[i:], pat)
		if j < 0 {
			return offs
		}
		offs = append(offs, i+j+len(pat))
		i += j + len(pat)
	}
}

func writeHex15(b []byte, v uint64) {
	const hex = "0123456789abcdef"
	for i := 14; i >= 0; i-- {
		b[i] = hex[v&0xf]
		v >>= 4
	}
}

func secs(s float64) string {
	if math.IsNaN(s) {
		return "n/a"
	}
	return time.Duration(s * float64(time.Second)).Round(100 * time.Microsecond).String()
}

// scrapeMetrics reads a server's /metrics.
func scrapeMetrics(ctx context.Context, hc *http.Client, base, token string) ([]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, err
	}
	out := make([]*dto.MetricFamily, 0, len(fams))
	for _, f := range fams {
		out = append(out, f)
	}
	return out, nil
}

// metricSum sums a counter family's samples whose label has the value
// (all samples when label is empty).
func metricSum(fams []*dto.MetricFamily, name, label, value string) float64 {
	s := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label != "" && !hasLabel(m, label, value) {
				continue
			}
			switch {
			case m.Counter != nil:
				s += m.Counter.GetValue()
			case m.Gauge != nil:
				s += m.Gauge.GetValue()
			}
		}
	}
	return s
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue() == value
		}
	}
	return false
}

func delta(before, after []*dto.MetricFamily, name, label, value string) float64 {
	return metricSum(after, name, label, value) - metricSum(before, name, label, value)
}

// histQuantiles returns the p50 and p99 of the observations a histogram
// gained between two scrapes, interpolated within buckets, and their count.
func histQuantiles(before, after []*dto.MetricFamily, name string) (p50, p99, count float64) {
	b, a := buckets(before, name), buckets(after, name)
	if len(a) == 0 {
		return math.NaN(), math.NaN(), 0
	}
	type bk struct{ le, n float64 }
	var d []bk
	for le, n := range a {
		d = append(d, bk{le, n - b[le]})
	}
	sort.Slice(d, func(i, j int) bool { return d[i].le < d[j].le })
	count = d[len(d)-1].n
	q := func(p float64) float64 {
		if count == 0 {
			return math.NaN()
		}
		rank := p * count
		prevLe, prevN := 0.0, 0.0
		for _, x := range d {
			if x.n >= rank {
				if math.IsInf(x.le, 1) {
					return prevLe
				}
				if x.n == prevN {
					return x.le
				}
				return prevLe + (x.le-prevLe)*(rank-prevN)/(x.n-prevN)
			}
			prevLe, prevN = x.le, x.n
		}
		return prevLe
	}
	return q(0.5), q(0.99), count
}

// buckets returns a histogram's cumulative bucket counts by upper bound,
// summed over label sets, with +Inf holding the total.
func buckets(fams []*dto.MetricFamily, name string) map[float64]float64 {
	out := map[float64]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			h := m.GetHistogram()
			if h == nil {
				continue
			}
			for _, bu := range h.GetBucket() {
				out[bu.GetUpperBound()] += float64(bu.GetCumulativeCount())
			}
			out[math.Inf(1)] += float64(h.GetSampleCount())
		}
	}
	return out
}

func isBusy(err error) bool {
	_, ok := client.IsBusy(err)
	return ok
}

// startCPUProfile writes a CPU profile to path until stop is called
// (nothing when path is empty).
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cannot create profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot start profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
