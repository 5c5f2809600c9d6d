package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-iot/vigil/bus/natsbus/natstest"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/pki"
)

// TestClusterScaling measures `vigil bench ingest` against one, two and
// three `vigil serve --cluster` processes on the NATS server of
// VIGIL_TEST_NATS_URL and the PostgreSQL of VIGIL_TEST_POSTGRES_URL: one
// bench process per node, VIGIL_CLUSTER_BENCH_RATE events/s in all, split
// evenly over the nodes (default 0: each as fast as its node takes them), for
// VIGIL_CLUSTER_BENCH_SECONDS (default 20), then until every event is
// stored and evaluated. It logs the events/s stored and evaluated, the
// CPU time of the vigil serve processes per event (from /proc) and the
// efficiency of the added nodes (CPU per event of one node over that of
// n). A measurement, not a test: it runs only with VIGIL_CLUSTER_BENCH=1
// (docs/benchmarks.md has the command and figures).
func TestClusterScaling(t *testing.T) {
	if os.Getenv("VIGIL_CLUSTER_BENCH") == "" {
		t.Skip("VIGIL_CLUSTER_BENCH is not set: a measurement of one, two and three nodes (docs/benchmarks.md)")
	}
	natsURL := natstest.URL(t)
	pgURL := os.Getenv("VIGIL_TEST_POSTGRES_URL")
	if pgURL == "" {
		t.Skip("VIGIL_TEST_POSTGRES_URL is not set: no PostgreSQL to run on")
	}
	seconds := 20
	if s := os.Getenv("VIGIL_CLUSTER_BENCH_SECONDS"); s != "" {
		seconds, _ = strconv.Atoi(s)
	}
	total, _ := strconv.Atoi(os.Getenv("VIGIL_CLUSTER_BENCH_RATE"))
	dir := t.TempDir()
	bin := filepath.Join(dir, "vigil")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("cannot build vigil: %v\n%s", err, out)
	}
	counts := []int{1, 2, 3}
	if s := os.Getenv("VIGIL_CLUSTER_BENCH_NODES"); s != "" { // e.g. "3": one count only
		k, _ := strconv.Atoi(s)
		counts = []int{k}
	}
	var cpu1 float64
	for _, n := range counts {
		r := benchCluster(t, bin, filepath.Join(dir, strconv.Itoa(n)), natsURL, pgURL, n, seconds, strconv.Itoa(total/n))
		if cpu1 == 0 {
			cpu1 = r.cpuPerEvent // efficiency is relative to the first count run
		}
		t.Logf("nodes=%d events=%d seconds=%.1f stored_evaluated_events_per_second=%.0f cpu_seconds=%.1f cpu_us_per_event=%.1f efficiency=%.2f",
			n, r.events, r.seconds, float64(r.events)/r.seconds, r.cpu, r.cpuPerEvent*1e6, cpu1/r.cpuPerEvent)
	}
}

type clusterBenchResult struct {
	events      int
	seconds     float64
	cpu         float64 // CPU seconds of the vigil serve processes
	cpuPerEvent float64
}

func benchCluster(t *testing.T, bin, dir, natsURL, pgURL string, n, seconds int, rate string) clusterBenchResult {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	schema := "t_scale_" + hex.EncodeToString(rnd[:])
	prefix := natstest.UniquePrefix(t, natsURL)
	pg, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := pg.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Log(err)
		}
		pg.Close(context.Background())
	}()
	const partitions = 8
	urls := make([]string, n)
	dataDirs := make([]string, n)
	procs := make([]*exec.Cmd, n)
	var stop []func()
	defer func() {
		for _, f := range stop {
			f()
		}
	}()
	var token string
	var hc *http.Client
	secretsKey := testSecretsKey(t) // one operator key for every node
	for i := range n {
		dataDirs[i] = filepath.Join(dir, fmt.Sprintf("vigil%d", i+1))
		port := freePort(t)
		urls[i] = fmt.Sprintf("https://127.0.0.1:%d", port)
		conf := fmt.Sprintf("data_dir: %q\nlisten: 127.0.0.1:%d\nnats_url: %q\nbus_prefix: %s\npartitions: %d\nlog_level: warn\nstore: {driver: postgres, url: %q, schema: %s}\nsecrets_key_file: %q\ncluster: {enabled: true, node: v%d}\n",
			dataDirs[i], port, natsURL, prefix, partitions, pgURL, schema, secretsKey, i+1)
		path := filepath.Join(dir, fmt.Sprintf("v%d.yaml", i+1))
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("v%d.log", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "serve", "-c", path)
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = cmd
		stop = append(stop, func() {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
			f.Close()
		})
		if i == 0 {
			eventually(t, "node v1 to make its CA", 60*time.Second, func() error {
				pool, err := client.LoadCAFile(filepath.Join(dataDirs[0], "pki", pki.CACertFile))
				if err == nil {
					hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: client.TLSConfig(pool)}}
				}
				return err
			})
		}
		eventually(t, fmt.Sprintf("node v%d to be ready", i+1), 90*time.Second, func() error {
			resp, err := hc.Get(urls[i] + "/readyz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("HTTP %d", resp.StatusCode)
			}
			return nil
		})
		if i == 0 {
			b, err := os.ReadFile(filepath.Join(dataDirs[0], AdminTokenFile))
			if err != nil {
				t.Fatal(err)
			}
			token = strings.TrimSpace(string(b))
		}
	}
	eventually(t, "the nodes to own every partition", 3*time.Minute, func() error {
		total := 0
		for _, u := range urls {
			v, err := scrapeGauge(hc, u, token, "vigil_cluster_owned", "detect")
			if err != nil {
				return err
			}
			total += int(v)
		}
		if total != partitions {
			return fmt.Errorf("%d of %d partitions owned", total, partitions)
		}
		return nil
	})

	cpuBefore := 0.0
	for _, p := range procs {
		cpuBefore += procCPU(t, p.Process.Pid)
	}
	start := time.Now()
	caFile := filepath.Join(dataDirs[0], "pki", pki.CACertFile)
	outs := make([]*bytes.Buffer, n)
	var wg sync.WaitGroup
	for i := range n {
		outs[i] = &bytes.Buffer{}
		cmd := exec.CommandContext(ctx, bin, "bench", "ingest", "--url", urls[i], "--token", token, "--ca", caFile,
			"--duration", fmt.Sprintf("%ds", seconds), "--rate", rate, "--report-rate", "0", "--concurrency", "2",
			"--drain-timeout", "0", "--id-base", strconv.FormatUint(uint64(i+1)<<44, 10))
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { cmd.Wait() })
	}
	wg.Wait()
	accepted := 0
	re := regexp.MustCompile(`bulk events accepted=(\d+)`)
	for i, out := range outs {
		m := re.FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("bench against v%d printed no accepted count:\n%s", i+1, out)
		}
		k, _ := strconv.Atoi(m[1])
		accepted += k
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream := strings.ToUpper(prefix) + "_EVENTS"
	eventually(t, "every event to be stored and evaluated", 5*time.Minute, func() error {
		for _, group := range []string{"detect", "store"} { // the consumer groups (node/app.go)
			for p := range partitions {
				c, err := js.Consumer(ctx, stream, fmt.Sprintf("%s-p%d", group, p))
				if err != nil {
					return err
				}
				info, err := c.Info(ctx)
				if err != nil {
					return err
				}
				if info.NumPending > 0 || info.NumAckPending > 0 {
					return fmt.Errorf("%s-p%d: %d pending", group, p, info.NumPending+uint64(info.NumAckPending))
				}
			}
		}
		return nil
	})
	elapsed := time.Since(start).Seconds()
	cpu := -cpuBefore
	for _, p := range procs {
		cpu += procCPU(t, p.Process.Pid)
	}
	return clusterBenchResult{events: accepted, seconds: elapsed, cpu: cpu, cpuPerEvent: cpu / float64(max(accepted, 1))}
}

// procCPU returns the user and system CPU seconds of a process.
func procCPU(t *testing.T, pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name (which may hold spaces): utime and
	// stime are the 14th and 15th fields, in clock ticks (100 per second).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}
