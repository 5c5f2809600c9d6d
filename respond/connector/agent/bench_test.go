package agent_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	vagent "github.com/vigil-iot/vigil/agent"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/enroll"
	"github.com/vigil-iot/vigil/pki"
	"github.com/vigil-iot/vigil/respond"
	"github.com/vigil-iot/vigil/respond/connector/agent"
	"github.com/vigil-iot/vigil/respond/playbook"
	"github.com/vigil-iot/vigil/store/sqlite"
)

// BenchmarkAlertToIsolation measures, with VIGIL_BENCH_AGENTS (default
// 1000) real enrolled agents long-polling the command channel over TLS on
// loopback, the time from Engine.HandleAlert to the isolation acknowledged
// by the attacked device's agent (the containment callback). It reports
// p50 and p99 over b.N sequential alerts on random devices.
//
//	go test -run '^$' -bench AlertToIsolation -benchtime 300x ./respond/connector/agent/
func BenchmarkAlertToIsolation(b *testing.B) {
	n := 1000
	if s := os.Getenv("VIGIL_BENCH_AGENTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	dir := b.TempDir()
	ca, _ := pki.EnsureCA(filepath.Join(dir, "pki"))
	serverCert, _ := ca.EnsureServerCert(filepath.Join(dir, "pki"), nil)
	toks, _ := enroll.OpenTokenStore(filepath.Join(dir, enroll.TokensFile), nil)
	revs, _ := enroll.OpenRevocations(filepath.Join(dir, enroll.RevokedFile), nil)
	key, _ := enroll.EnsureCommandKey(filepath.Join(dir, enroll.CommandKeyFile))
	var conn *agent.Connector
	h, err := enroll.New(enroll.Options{CA: ca, Tokens: toks, Revocations: revs, CommandKey: key, Commands: commandStore(b), MaxPollWait: time.Minute,
		OnResult: func(_ context.Context, r command.Result) {
			conn.HandleResult(agent.Ack{CommandID: r.CommandID, Status: r.Status, Reason: r.Reason, Output: r.Output, Error: r.Error, Finished: r.Finished})
		}})
	if err != nil {
		b.Fatal(err)
	}
	conn = agent.New(sender{h})
	srv := httptest.NewUnstartedServer(h.Front(http.NotFoundHandler()))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	defer srv.Close()

	st, err := sqlite.Open(filepath.Join(dir, "vigil.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	start := time.Now()
	devices := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			plain, _, err := toks.Create("camera", time.Hour)
			if err != nil {
				b.Error(err)
				return
			}
			state := filepath.Join(dir, fmt.Sprintf("agent-%d", i))
			id, err := vagent.Enroll(ctx, vagent.EnrollOptions{Server: srv.URL, Token: plain, StateDir: state,
				CAFile: filepath.Join(dir, "pki", pki.CACertFile), Hostname: fmt.Sprintf("cam-%d", i)})
			if err != nil {
				b.Error(err)
				return
			}
			policy := filepath.Join(state, "policy.json")
			os.WriteFile(policy, []byte(`{"allow":["isolate","restore"]}`), 0o600)
			ag, err := vagent.New(vagent.Config{StateDir: state, Format: "json", Class: "camera", Disable: []string{"processes", "packages"},
				Commands: true, PolicyFile: policy, PollWait: vagent.Duration(30 * time.Second)}, vagent.Options{Executor: &executor{}})
			if err != nil {
				b.Error(err)
				return
			}
			devices[i] = id.DeviceID
			st.PutDevice(ctx, vigil.Device{ID: id.DeviceID, Class: "camera", State: vigil.StateActive})
			go func() {
				defer ag.Close()
				for ctx.Err() == nil {
					ag.PollCommands(ctx)
				}
			}()
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	b.Logf("%d agents enrolled and polling in %s", n, time.Since(start).Round(time.Millisecond))
	time.Sleep(time.Second) // let every agent's first long poll arrive

	pb, _ := playbook.Parse("iso.yaml", []byte("name: iso\ntrigger: {device_classes: [camera]}\nsteps: [{action: isolate}]\n"))
	var (
		mu        sync.Mutex
		contained = map[string]chan time.Time{}
	)
	eng, err := respond.New(respond.Options{Store: st, Audit: audit.NewRecorder(st, nil, nil),
		Playbooks: []*playbook.Playbook{pb}, Connectors: []respond.Connector{conn}, AckTimeout: 10 * time.Second,
		OnContained: func(_ context.Context, id string, at time.Time) error {
			mu.Lock()
			contained[id] <- at
			mu.Unlock()
			return nil
		}})
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		dev := devices[(i*7919)%n]
		incID := fmt.Sprintf("inc-%d", i)
		ch := make(chan time.Time, 1)
		mu.Lock()
		contained[incID] = ch
		mu.Unlock()
		t0 := time.Now()
		if _, err := eng.HandleAlert(ctx, vigil.Alert{ID: fmt.Sprintf("al-%d", i), RuleID: "r", Severity: vigil.SeverityHigh,
			DeviceID: dev, IncidentID: incID, Provenance: []string{"device-cert:" + dev}}); err != nil {
			b.Fatal(err)
		}
		select {
		case <-ch:
			lat = append(lat, time.Since(t0))
		case <-time.After(10 * time.Second):
			b.Fatalf("alert %d: no acknowledgement", i)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	b.ReportMetric(float64(p(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	eng.Wait()
}
