package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/agent/protocol"
	"github.com/vigil-iot/vigil/alert"
	"github.com/vigil-iot/vigil/bus"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/cluster"
	"github.com/vigil-iot/vigil/enroll"
	"github.com/vigil-iot/vigil/pki"
)

// TestClusterFailover runs the scale-out for real: a three-node NATS
// JetStream cluster (nats-server processes, streams replicated three
// times), PostgreSQL, and three `vigil serve --cluster` processes built
// from this tree, under load from three `vigil bench ingest` processes,
// one per node. It SIGKILLs the Vigil node that owns the partition of a
// brute force in progress, then a NATS node, and checks that no
// acknowledged event is lost, every event is evaluated, the brute force
// split across the failover is detected exactly once, no incident is
// duplicated, the audit chain verifies, and an agent enrolled on the
// killed node keeps working through the others. The failover time (kill
// to every partition owned again) is logged, not asserted.
//
// It takes about two minutes, so it runs only with VIGIL_TEST_CLUSTER=1
// (.ci/run sets it).
func TestClusterFailover(t *testing.T) {
	if os.Getenv("VIGIL_TEST_CLUSTER") == "" {
		t.Skip("VIGIL_TEST_CLUSTER is not set: the three-node failover test runs in .ci/run (it also needs nats-server and VIGIL_TEST_POSTGRES_URL)")
	}
	natsBin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("nats-server is not on PATH (apt-get install nats-server): no NATS cluster to run")
	}
	pgURL := os.Getenv("VIGIL_TEST_POSTGRES_URL")
	if pgURL == "" {
		t.Skip("VIGIL_TEST_POSTGRES_URL is not set: no PostgreSQL to run on")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()

	bin := filepath.Join(dir, "vigil")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("cannot build vigil: %v\n%s", err, out)
	}

	// PostgreSQL: a schema of our own.
	var rnd [4]byte
	rand.Read(rnd[:])
	schema := "t_cluster_" + hex.EncodeToString(rnd[:])
	pg, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pg.Exec(cctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Log(err)
		}
		pg.Close(cctx)
	})

	// Three NATS servers in one cluster.
	const nn = 3
	var clientPorts, routePorts [nn]int
	for i := range nn {
		clientPorts[i], routePorts[i] = freePort(t), freePort(t)
	}
	var urls []string
	for i := range nn {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
	}
	natsURL := strings.Join(urls, ",")
	natsProcs := make([]*exec.Cmd, nn)
	for i := range nn {
		var routes []string
		for j := range nn {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", routePorts[j]))
			}
		}
		conf := fmt.Sprintf("server_name: n%d\nlisten: 127.0.0.1:%d\njetstream { store_dir: %q }\ncluster { name: vigiltest, listen: 127.0.0.1:%d, routes: [%s] }\n",
			i+1, clientPorts[i], filepath.Join(dir, fmt.Sprintf("nats%d", i+1)), routePorts[i], strings.Join(routes, ", "))
		path := filepath.Join(dir, fmt.Sprintf("nats%d.conf", i+1))
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		natsProcs[i] = startProc(t, dir, fmt.Sprintf("nats%d", i+1), natsBin, "-c", path)
	}
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true), nats.ReconnectWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the NATS cluster's JetStream to be ready", 90*time.Second, func() error {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := js.AccountInfo(rctx)
		return err
	})

	// Three Vigil nodes. The first makes the CA, the audit key and the
	// bootstrap admin token; the others get its PKI (the operator copies
	// it, docs/scaling.md).
	const partitions = 8
	const prefix = "vigilfo"
	type node struct {
		name, url, dataDir string
		proc               *exec.Cmd
	}
	nodes := make([]*node, nn)
	secretsKey := testSecretsKey(t) // one operator key for every node: the CA and keys are shared sealed
	startNode := func(i int) {
		n := &node{name: fmt.Sprintf("v%d", i+1), dataDir: filepath.Join(dir, fmt.Sprintf("vigil%d", i+1))}
		port := freePort(t)
		n.url = fmt.Sprintf("https://127.0.0.1:%d", port)
		conf := fmt.Sprintf(`data_dir: %q
listen: 127.0.0.1:%d
nats_url: %q
bus_prefix: %s
bus_replicas: 3
partitions: %d
log_level: info
store: {driver: postgres, url: %q, schema: %s}
secrets_key_file: %q
cluster: {enabled: true, node: %s, lease_ttl: 6s}
`, n.dataDir, port, natsURL, prefix, partitions, pgURL, schema, secretsKey, n.name)
		path := filepath.Join(dir, n.name+".yaml")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		n.proc = startProc(t, dir, n.name, bin, "serve", "-c", path)
		nodes[i] = n
	}
	startNode(0)
	var pool *x509.CertPool
	eventually(t, "node v1 to make its CA", 60*time.Second, func() error {
		var err error
		pool, err = client.LoadCAFile(filepath.Join(nodes[0].dataDir, "pki", pki.CACertFile))
		return err
	})
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: client.TLSConfig(pool)}}
	ready := func(n *node) func() error {
		return func() error {
			resp, err := hc.Get(n.url + "/readyz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("readyz: HTTP %d", resp.StatusCode)
			}
			return nil
		}
	}
	eventually(t, "node v1 to be ready", 90*time.Second, ready(nodes[0]))
	tokenBytes, err := os.ReadFile(filepath.Join(nodes[0].dataDir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokenBytes))
	startNode(1)
	startNode(2)
	for _, n := range nodes[1:] {
		eventually(t, "node "+n.name+" to be ready", 90*time.Second, ready(n))
	}
	owned := func(ns []*node, resource string) (int, error) {
		total := 0
		for _, n := range ns {
			v, err := scrapeGauge(hc, n.url, token, "vigil_cluster_owned", resource)
			if err != nil {
				return 0, err
			}
			total += int(v)
		}
		return total, nil
	}
	allOwned := func(ns []*node) func() error {
		return func() error {
			d, err := owned(ns, "detect")
			if err != nil {
				return err
			}
			a, err := owned(ns, "alerts")
			if err != nil {
				return err
			}
			if d != partitions || a != 1 {
				return fmt.Errorf("%d of %d detect partitions and %d of 1 alert stage owned", d, partitions, a)
			}
			return nil
		}
	}
	eventually(t, "the three nodes to own every partition", 60*time.Second, allOwned(nodes))

	// The victim owns the partition of the brute-force device.
	members := []string{"v1", "v2", "v3"}
	victim := nodes[2]
	var bfDevice string
	for i := 0; bfDevice == ""; i++ {
		d := fmt.Sprintf("bf-cam-%d", i)
		if cluster.Owner(members, "detect", bus.Partition(d, partitions)) == victim.name {
			bfDevice = d
		}
	}
	bfPart := bus.Partition(bfDevice, partitions)
	survivors := []*node{nodes[0], nodes[1]}
	admin, err := client.New(nodes[0].url, token, client.TLSConfig(pool))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	// An agent enrolls on the victim.
	tok, err := admin.CreateEnrollToken(ctx, "camera", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr := func() string {
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "cam"}}, key)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	}
	post := func(c *http.Client, url string, body any, out any) int {
		t.Helper()
		buf, _ := json.Marshal(body)
		resp, err := c.Post(url, "application/json", bytes.NewReader(buf))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if out != nil && resp.StatusCode < 300 {
			if err := json.Unmarshal(data, out); err != nil {
				t.Fatalf("%s: %v: %s", url, err, data)
			}
		}
		return resp.StatusCode
	}
	var enrolled protocol.EnrollResponse
	if code := post(hc, victim.url+protocol.PathEnroll, protocol.EnrollRequest{Token: tok.Token, CSR: csr(), Hostname: "cam"}, &enrolled); code != http.StatusOK && code != http.StatusCreated {
		t.Fatalf("enroll on %s: HTTP %d", victim.name, code)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	cert, err := tls.X509KeyPair([]byte(enrolled.Certificate), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	dcfg := client.TLSConfig(pool)
	dcfg.Certificates = []tls.Certificate{cert}
	device := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: dcfg}}
	// An isolate for that agent, queued through the victim before it dies:
	// the queue is in the store, so the agent polling a survivor gets it.
	cmdBody, _ := json.Marshal(enroll.CommandRequest{Action: command.ActionIsolate, TTL: "10m"})
	req, _ := http.NewRequest("POST", victim.url+"/api/v1/devices/"+enrolled.DeviceID+"/commands", bytes.NewReader(cmdBody))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var queued enroll.CommandAnswer
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(data, &queued) != nil {
		t.Fatalf("queue an isolate through %s: HTTP %d: %s", victim.name, resp.StatusCode, data)
	}
	pollIDs := func(n *node) []string {
		t.Helper()
		resp, err := device.Get(n.url + protocol.PathCommands + "?wait=1s")
		if err != nil {
			t.Fatalf("poll %s: %v", n.name, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNoContent { // nothing queued
			return nil
		}
		var p command.Poll
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("poll %s: HTTP %d: %v", n.name, resp.StatusCode, err)
		}
		var ids []string
		for _, sc := range p.Commands {
			var c command.Command
			if err := json.Unmarshal(sc.Payload, &c); err == nil {
				ids = append(ids, c.ID)
			}
		}
		return ids
	}

	// Load: one bench per node, distinct event ids.
	caFile := filepath.Join(nodes[0].dataDir, "pki", pki.CACertFile)
	benchOut := make([]*bytes.Buffer, nn)
	var benchWG sync.WaitGroup
	for i, n := range nodes {
		benchOut[i] = &bytes.Buffer{}
		cmd := exec.CommandContext(ctx, bin, "bench", "ingest", "--url", n.url, "--token", token, "--ca", caFile,
			"--duration", "60s", "--rate", "800", "--batch", "200", "--devices", "300", "--concurrency", "2",
			"--report-rate", "0", "--drain-timeout", "0", "--id-base", strconv.FormatUint(uint64(i+1)<<44, 10))
		cmd.Stdout, cmd.Stderr = benchOut[i], benchOut[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		benchWG.Go(func() {
			if err := cmd.Wait(); err != nil {
				t.Logf("bench against %s: %v", n.name, err)
			}
		})
	}

	// Brute force, first part: three failures on the victim's partition,
	// evaluated and checkpointed before the kill.
	t0 := time.Now().UTC().Truncate(time.Second)
	bf := func(target *node, from, to int) {
		t.Helper()
		var b bytes.Buffer
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, `{"id":"xbf-%d","time":%q,"device_id":%q,"source":"syslog","kind":"auth","action":"login","outcome":"failure","network":{"src_ip":"203.0.113.66","src_port":51234},"fields":{"user.name":"root","service.name":"telnetd"}}`+"\n",
				i, t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano), bfDevice)
		}
		c, err := client.New(target.url, token, client.TLSConfig(pool))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		eventually(t, "brute-force events to be accepted", 60*time.Second, func() error {
			res, err := c.PostEvents(ctx, b.Bytes())
			if err == nil && res.Accepted != to-from {
				err = fmt.Errorf("accepted %d of %d", res.Accepted, to-from)
			}
			return err
		})
	}
	bf(nodes[0], 0, 3)
	cpKV, err := js.KeyValue(ctx, strings.ToUpper(prefix)+"_"+cluster.CheckpointBucket)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first part of the brute force to be checkpointed", 2*time.Minute, func() error {
		e, err := cpKV.Get(ctx, fmt.Sprintf("detect.p%d", bfPart))
		if err != nil {
			return err
		}
		if !bytes.Contains(e.Value(), []byte("xbf-2")) {
			return fmt.Errorf("checkpoint without xbf-2")
		}
		return nil
	})

	// Kill the victim under load, once every bench posts (bench i's ids
	// start b000<i>); the rest of the brute force goes to a survivor.
	for i := range nn {
		eventually(t, fmt.Sprintf("events of the bench against %s to be stored", nodes[i].name), 2*time.Minute, func() error {
			var k int
			err := pg.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, "events"}.Sanitize()+" WHERE id LIKE $1", fmt.Sprintf("b000%d%%", i+1)).Scan(&k)
			if err == nil && k == 0 {
				err = fmt.Errorf("none yet")
			}
			return err
		})
	}
	time.Sleep(3 * time.Second)
	if err := victim.proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	t.Logf("SIGKILL %s (owner of partition %d, device %s)", victim.name, bfPart, bfDevice)
	bf(nodes[1], 3, 5)
	eventually(t, "the survivors to own every partition", 90*time.Second, allOwned(survivors))
	failover := time.Since(killed)
	t.Logf("failover: %s from SIGKILL until the survivors owned every partition (lease TTL 6s; target <= 10s)", failover.Round(100*time.Millisecond))

	// The agent enrolled on the victim works through the survivors.
	for _, n := range survivors {
		if code := post(device, n.url+protocol.PathRenew, protocol.RenewRequest{CSR: csr()}, nil); code != http.StatusOK {
			t.Errorf("agent enrolled on %s: renew through %s: HTTP %d, want 200", victim.name, n.name, code)
		}
	}

	// The isolate queued through the victim reaches the agent through a
	// survivor, once.
	if ids := pollIDs(survivors[0]); !slices.Contains(ids, queued.Command.ID) {
		t.Errorf("the isolate queued through %s before its death did not reach the agent polling %s: got %v", victim.name, survivors[0].name, ids)
	}
	if ids := pollIDs(survivors[1]); slices.Contains(ids, queued.Command.ID) {
		t.Errorf("the isolate was delivered twice (again through %s)", survivors[1].name)
	}

	// Then a NATS node dies.
	time.Sleep(5 * time.Second)
	if err := natsProcs[2].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Log("SIGKILL nats n3")
	benchWG.Wait()

	// No node panicked (a handler's panic is recovered by net/http and
	// shows only as a closed connection).
	for _, n := range nodes {
		b, _ := os.ReadFile(filepath.Join(dir, n.name+".log"))
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "panic") {
				t.Errorf("%s: %s", n.name, line)
			}
		}
	}
	accepted := 0
	re := regexp.MustCompile(`bulk events accepted=(\d+)`)
	for i, out := range benchOut {
		m := re.FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("bench against %s printed no accepted count:\n%s", nodes[i].name, out)
		}
		n, _ := strconv.Atoi(m[1])
		t.Logf("bench against %s: %s", nodes[i].name, strings.TrimSpace(out.String()))
		accepted += n
	}

	// Every event evaluated and stored: the detect and store consumers of
	// every partition have nothing pending or unacknowledged.
	stream := strings.ToUpper(prefix) + "_EVENTS"
	eventually(t, "every event to be evaluated and stored", 4*time.Minute, func() error {
		for _, group := range []string{"detect", "store"} { // the consumer groups (node/app.go)
			for p := range partitions {
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				c, err := js.Consumer(rctx, stream, fmt.Sprintf("%s-p%d", group, p))
				var info *jetstream.ConsumerInfo
				if err == nil {
					info, err = c.Info(rctx)
				}
				cancel()
				if err != nil {
					return err
				}
				if info.NumPending > 0 || info.NumAckPending > 0 {
					return fmt.Errorf("%s-p%d: %d pending, %d unacknowledged", group, p, info.NumPending, info.NumAckPending)
				}
			}
		}
		// And every alert handled by the alert stage. A message that a
		// consumer's leader handed out as its NATS node died is delivered
		// again only after the consumer's ack wait (10 s), and the stream may be
		// electing a leader meanwhile: minutes are given here.
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		c, err := js.Consumer(rctx, strings.ToUpper(prefix)+"_ALERTS", alert.DefaultGroup)
		var info *jetstream.ConsumerInfo
		if err == nil {
			info, err = c.Info(rctx)
		}
		if err != nil {
			return err
		}
		if info.NumPending > 0 || info.NumAckPending > 0 {
			return fmt.Errorf("alerts: %d pending, %d unacknowledged", info.NumPending, info.NumAckPending)
		}
		return nil
	})

	var stored int
	if err := pg.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, "events"}.Sanitize()+" WHERE id LIKE 'b%'").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	t.Logf("bench events: %d acknowledged, %d stored", accepted, stored)
	if accepted == 0 {
		t.Fatal("no bench event was accepted")
	}
	if stored < accepted {
		t.Errorf("%d acknowledged events, %d stored: acknowledged events lost", accepted, stored)
	}

	// The brute force split across the failover is detected once.
	alertsStream := strings.ToUpper(prefix) + "_ALERTS"
	defer func() {
		if t.Failed() {
			logPublishedAlerts(t, js, alertsStream, bfDevice)
		}
	}()
	eventually(t, "the brute force alert", 60*time.Second, func() error {
		var n int
		err := pg.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, "alerts"}.Sanitize()+" WHERE device_id = $1 AND rule_id = 'vigil-auth-bruteforce'", bfDevice).Scan(&n)
		if err == nil && n == 0 {
			err = fmt.Errorf("no alert yet")
		}
		return err
	})
	rows, err := pg.Query(ctx, "SELECT body FROM "+pgx.Identifier{schema, "alerts"}.Sanitize()+" WHERE device_id = $1", bfDevice)
	if err != nil {
		t.Fatal(err)
	}
	raised := map[string]int{}
	for rows.Next() {
		var a struct {
			RuleID string `json:"rule_id"`
			Count  int    `json:"count"`
		}
		var body []byte
		if err := rows.Scan(&body); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatal(err)
		}
		raised[a.RuleID] += max(a.Count, 1)
	}
	rows.Close()
	t.Logf("alerts on %s by rule: %v", bfDevice, raised)
	if raised["vigil-auth-bruteforce"] != 1 {
		t.Errorf("brute force split across the failover raised %d times, want once", raised["vigil-auth-bruteforce"])
	}

	// No incident duplicated: a device is in at most one open incident.
	rows, err = pg.Query(ctx, "SELECT body FROM "+pgx.Identifier{schema, "incidents"}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	byDevice := map[string][]string{}
	incidents := 0
	for rows.Next() {
		var inc struct {
			ID        string   `json:"id"`
			Status    string   `json:"status"`
			DeviceIDs []string `json:"device_ids"`
		}
		var body []byte
		if err := rows.Scan(&body); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(body, &inc); err != nil {
			t.Fatal(err)
		}
		incidents++
		if inc.Status != "open" {
			continue
		}
		for _, d := range inc.DeviceIDs {
			byDevice[d] = append(byDevice[d], inc.ID)
		}
	}
	rows.Close()
	t.Logf("%d incidents on %d devices", incidents, len(byDevice))
	if len(byDevice[bfDevice]) != 1 {
		t.Errorf("device %s is in %d open incidents, want 1", bfDevice, len(byDevice[bfDevice]))
	}
	for d, ids := range byDevice {
		if len(ids) > 1 {
			t.Errorf("device %s is in %d open incidents: %v", d, len(ids), ids)
		}
	}

	// The audit chain verifies (through a survivor).
	rep, err := admin.VerifyAudit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Errorf("audit chain does not verify: %+v", rep)
	}
	t.Logf("audit: %d records verify", rep.Records)
}

// logPublishedAlerts logs the alerts about device still in the alerts
// stream: when an alert is missing from the store, whether detection
// raised it at all.
func logPublishedAlerts(t *testing.T, js jetstream.JetStream, stream, device string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Logf("cannot read the alerts stream: %v", err)
		return
	}
	n := 0
	for {
		batch, err := c.FetchNoWait(256)
		if err != nil {
			t.Logf("cannot read the alerts stream: %v", err)
			return
		}
		got := 0
		for m := range batch.Messages() {
			got++
			if bytes.Contains(m.Data(), []byte(device)) {
				n++
				md, _ := m.Metadata()
				seq := uint64(0)
				if md != nil {
					seq = md.Sequence.Stream
				}
				t.Logf("alerts stream seq %d mentions %s: %.300s", seq, device, m.Data())
			}
		}
		if got == 0 {
			break
		}
	}
	t.Logf("%d messages of the alerts stream mention %s", n, device)
}

// startProc starts a process whose output goes to dir/name.log (printed
// when the test fails) and kills it when the test ends.
func startProc(t *testing.T, dir, name, bin string, args ...string) *exec.Cmd {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		f.Close()
		if t.Failed() {
			tailLog(t, logPath)
		}
		// VIGIL_TEST_KEEP_LOGS=DIR keeps every process's whole log.
		if keep := os.Getenv("VIGIL_TEST_KEEP_LOGS"); keep != "" {
			if b, err := os.ReadFile(logPath); err == nil {
				_ = os.MkdirAll(keep, 0o700)
				_ = os.WriteFile(filepath.Join(keep, name+".log"), b, 0o600)
			}
		}
	})
	return cmd
}

// tailLog logs the last lines of a process's log.
func tailLog(t *testing.T, path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	t.Logf("--- %s (last %d lines)\n%s", filepath.Base(path), len(lines), strings.Join(lines, "\n"))
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// eventually calls f until it returns nil, failing the test after d.
func eventually(t *testing.T, what string, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", d, what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scrapeGauge reads the sum of a metric with label resource from a
// node's /metrics.
func scrapeGauge(hc *http.Client, base, token, name, resource string) (float64, error) {
	req, err := http.NewRequest("GET", base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("metrics: HTTP %d", resp.StatusCode)
	}
	prefix := name + `{resource="` + resource + `"} `
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), prefix); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, s.Err()
}
