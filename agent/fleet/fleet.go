package fleet

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-iot/vigil/agent/httpc"
	"github.com/vigil-iot/vigil/agent/protocol"
	"github.com/vigil-iot/vigil/wire"
)

// Options configures a fleet.
type Options struct {
	// Server is the Vigil base URL (https://...). Required.
	Server string
	// RootCAs verify the server's certificate (Vigil's CA). Required.
	RootCAs *x509.CertPool
	// Count is the number of agents.
	Count int
	// Token returns the enrollment token of agent i (one per agent: they
	// are single-use). Required.
	Token func(ctx context.Context, i int) (string, error)
	// Hostname names agent i in its enrollment (default "sim-<i>").
	Hostname func(i int) string
	// Report makes agent i's report at now; DeviceID and Time are set by
	// the fleet. Nil sends a small health report.
	Report func(i int, deviceID string, now time.Time) *wire.Report
	// Interval between two reports of one agent (default 60s); the agents
	// are spread evenly over it.
	Interval time.Duration
	// Concurrency bounds enrollments and reports in flight (default 64).
	Concurrency int
	// Format is json (default) or xml.
	Format string
	Logger *slog.Logger
}

// Stats counts what the fleet did.
type Stats struct {
	Enrolled, Reports, Failures int64
}

// Agent is one enrolled virtual agent.
type Agent struct {
	Index    int
	DeviceID string
	cert     tls.Certificate
	seq      atomic.Uint64
}

// Fleet is a running set of virtual agents.
type Fleet struct {
	opts   Options
	log    *slog.Logger
	agents []*Agent

	enrolled, reports, failures atomic.Int64
}

// Enroll enrolls every agent (Concurrency at a time) and returns the
// fleet; it fails on the first agent that cannot enroll.
func Enroll(ctx context.Context, opts Options) (*Fleet, error) {
	if !strings.HasPrefix(opts.Server, "https://") || opts.RootCAs == nil || opts.Token == nil || opts.Count <= 0 {
		return nil, errors.New("cannot start fleet: Server (https), RootCAs, Token and Count > 0 are required")
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 64
	}
	if opts.Hostname == nil {
		opts.Hostname = func(i int) string { return fmt.Sprintf("sim-%d", i) }
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &Fleet{opts: opts, log: log.With("component", "fleet"), agents: make([]*Agent, opts.Count)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, opts.Concurrency)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for i := range opts.Count {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a, err := f.enrollOne(ctx, i)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("cannot enroll agent %d: %w", i, err)
					cancel()
				}
				mu.Unlock()
				return
			}
			f.agents[i] = a
			f.enrolled.Add(1)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *Fleet) client(cert *tls.Certificate) *httpc.Client {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: f.opts.RootCAs}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &httpc.Client{TLS: tc, Timeout: time.Minute, UserAgent: "vigil-agent-sim"}
}

func (f *Fleet) enrollOne(ctx context.Context, i int) (*Agent, error) {
	tok, err := f.opts.Token(ctx, i)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: f.opts.Hostname(i)}}, key)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(protocol.EnrollRequest{Token: tok, Hostname: f.opts.Hostname(i),
		CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))})
	c := f.client(nil)
	defer c.Close()
	resp, err := c.Do(ctx, "POST", strings.TrimRight(f.opts.Server, "/")+protocol.PathEnroll, map[string]string{"Content-Type": "application/json"}, body)
	if err != nil {
		return nil, err
	}
	if resp.Status != 200 {
		return nil, fmt.Errorf("server answered %d: %.200s", resp.Status, resp.Body)
	}
	var er protocol.EnrollResponse
	if err := json.Unmarshal(resp.Body, &er); err != nil {
		return nil, fmt.Errorf("cannot decode enrollment answer: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair([]byte(er.Certificate), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return nil, err
	}
	return &Agent{Index: i, DeviceID: er.DeviceID, cert: cert}, nil
}

// Agents returns the enrolled agents.
func (f *Fleet) Agents() []*Agent { return f.agents }

// Stats returns the counters so far.
func (f *Fleet) Stats() Stats {
	return Stats{Enrolled: f.enrolled.Load(), Reports: f.reports.Load(), Failures: f.failures.Load()}
}

// Run sends every agent's report once per Interval, agents spread evenly
// over it, until ctx ends.
func (f *Fleet) Run(ctx context.Context) error {
	n := len(f.agents)
	step := f.opts.Interval / time.Duration(n)
	if step <= 0 {
		step = time.Nanosecond
	}
	sem := make(chan struct{}, f.opts.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(step)
	defer t.Stop()
	for i := 0; ; i = (i + 1) % n {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		wg.Add(1)
		go func(a *Agent) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f.Send(ctx, a, time.Now()); err != nil && !ending(ctx) {
				f.failures.Add(1)
				f.log.Debug("report failed", "device_id", a.DeviceID, "err", err)
			}
		}(f.agents[i])
	}
}

// ending reports whether the run is over: its context is done, or its
// deadline has passed (a dial bounded by that deadline fails with an i/o
// timeout an instant before the context says so; that is no failure).
func ending(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// Send sends one report of an agent now, on a new connection.
func (f *Fleet) Send(ctx context.Context, a *Agent, now time.Time) error {
	var r *wire.Report
	if f.opts.Report != nil {
		r = f.opts.Report(a.Index, a.DeviceID, now)
	}
	if r == nil {
		r = &wire.Report{Health: &wire.Health{CPU: 10, Memory: 30, Disk: 40, Uptime: uint64(now.Unix() % 86400)}}
	}
	r.Version, r.DeviceID, r.Time, r.Sequence = wire.Version, a.DeviceID, now.UTC(), a.seq.Add(1)
	ct, format := wire.ContentTypeJSON, wire.FormatJSON
	if f.opts.Format == "xml" {
		ct, format = wire.ContentTypeXML, wire.FormatXML
	}
	var body bytes.Buffer
	zw := gzip.NewWriter(&body)
	if err := wire.EncodeReportFormat(zw, format, r); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	c := f.client(&a.cert)
	defer c.Close()
	resp, err := c.Do(ctx, "POST", strings.TrimRight(f.opts.Server, "/")+protocol.PathReport,
		map[string]string{"Content-Type": ct, "Content-Encoding": "gzip"}, body.Bytes())
	if err != nil {
		return err
	}
	if resp.Status != 200 {
		return fmt.Errorf("server answered %d: %.200s", resp.Status, resp.Body)
	}
	f.reports.Add(1)
	return nil
}
