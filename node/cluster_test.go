package node

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/store"
)

// TestThreeNodesInOneProcess runs a cluster of three nodes in this
// process, on one external NATS (a bus prefix of its own) and one
// PostgreSQL (a schema of its own): every detection partition and the
// alert stage are owned by exactly one node, and so is each periodic job
// (retention, audit anchors, hunt sealer, update plans), each node sees
// the three,
// the events posted to each node are stored once, and a brute force posted
// to each node raises each rule's alert once, whichever node detects it.
// Skips without VIGIL_TEST_NATS_URL or VIGIL_TEST_POSTGRES_URL.
func TestThreeNodesInOneProcess(t *testing.T) {
	cl := newPGCluster(t, "three")
	nodes := make([]*Node, 3)
	for i := range nodes {
		cfg := cl.Config()
		cfg.Cluster.Enabled = true
		cfg.Cluster.Node = fmt.Sprintf("n%d", i+1)
		cfg.Cluster.LeaseTTL = Duration(2 * time.Second)
		cfg.Partitions = 6
		nodes[i] = runTestApp(t, cfg)
	}
	parts := nodes[0].Config().Partitions

	// Ownership settles: the partitions and the alert stage are each held
	// by one node, and every node sees three members.
	owned := func() (string, bool) {
		return ownedBy(t, nodes, parts)
	}
	waitFor(t, "partitions owned once", func() (bool, string) { d, ok := owned(); return ok, d })
	// And stays so (no node takes what another holds).
	time.Sleep(time.Second)
	if d, ok := owned(); !ok {
		t.Fatalf("ownership moved: %s", d)
	}

	// Events posted to each node, concurrently: each stored once.
	const perNode = 200
	var wg sync.WaitGroup
	clients := make([]*client.Client, len(nodes))
	for i, n := range nodes {
		c, err := client.New(n.URL(), n.AdminToken(), client.TLSConfig(n.CAPool()))
		if n.AdminToken() == "" {
			// The bootstrap token is made once per store: the first node's.
			c, err = client.New(n.URL(), nodes[0].AdminToken(), client.TLSConfig(n.CAPool()))
		}
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = c
		wg.Go(func() {
			var b strings.Builder
			now := time.Now().UTC()
			for j := range perNode {
				fmt.Fprintf(&b, `{"time":%q,"device_id":"n%d-dev-%d","kind":"network","action":"connection"}`+"\n",
					now.Add(time.Duration(j)*time.Millisecond).Format(time.RFC3339Nano), i+1, j%10)
			}
			if res, err := c.PostEvents(t.Context(), []byte(b.String())); err != nil || res.Accepted != perNode {
				t.Errorf("post to n%d: %+v %v", i+1, res, err)
			}
		})
	}
	wg.Wait()
	st := nodes[0].Store()
	waitFor(t, "events stored", func() (bool, string) {
		c, err := st.CountEvents(t.Context())
		return err == nil && c >= 3*perNode, fmt.Sprint(c, err)
	})
	time.Sleep(500 * time.Millisecond) // a duplicate would land now
	if c, err := st.CountEvents(t.Context()); err != nil || c != 3*perNode {
		t.Fatalf("events stored: %d %v, want %d", c, err, 3*perNode)
	}
	for i := range nodes {
		evs, _, err := st.ListEvents(t.Context(), store.EventFilter{DeviceID: fmt.Sprintf("n%d-dev-3", i+1), Page: store.Page{Limit: 1000}})
		if err != nil || len(evs) != perNode/10 {
			t.Errorf("events of n%d-dev-3: %d %v, want %d", i+1, len(evs), err, perNode/10)
		}
	}

	// A brute force posted to each node: one alert per device, from the
	// node that owns its partition, seen through any node.
	for i, c := range clients {
		bruteForce(t, c, fmt.Sprintf("cam-%d", i+1), i)
	}
	for i := range nodes {
		dev := fmt.Sprintf("cam-%d", i+1)
		waitFor(t, "alert of "+dev, func() (bool, string) {
			as, _, err := clients[(i+1)%3].ListAlerts(t.Context(), store.AlertFilter{DeviceID: dev})
			return err == nil && len(as) > 0, fmt.Sprint(len(as), err)
		})
	}
	time.Sleep(500 * time.Millisecond) // a duplicate would land now
	for i := range nodes {
		dev := fmt.Sprintf("cam-%d", i+1)
		as, _, err := st.ListAlerts(t.Context(), store.AlertFilter{DeviceID: dev})
		if err != nil {
			t.Fatal(err)
		}
		// The threshold rule and the Sigma rule of the pack each fire once.
		rules := map[string]int{}
		for _, a := range as {
			rules[a.RuleID]++
		}
		if rules["vigil-auth-bruteforce"] != 1 {
			t.Errorf("alerts of %s: %v, want vigil-auth-bruteforce once", dev, rules)
		}
		for r, n := range rules {
			if n != 1 {
				t.Errorf("alerts of %s: rule %s fired %d times, want once", dev, r, n)
			}
		}
	}

	// The node that anchors the audit trail stops: the two others take
	// its partitions and its jobs over, each job on one of them.
	for i, n := range nodes {
		if gauge(t, n.Gatherer(), "vigil_cluster_owned", "resource", jobAnchors) == 1 {
			if err := n.Shutdown(); err != nil {
				t.Fatal(err)
			}
			nodes = append(nodes[:i:i], nodes[i+1:]...)
			break
		}
	}
	if len(nodes) != 2 {
		t.Fatalf("no node anchored the audit trail")
	}
	waitFor(t, "jobs taken over", func() (bool, string) { d, ok := ownedBy(t, nodes, parts); return ok, d })
}

// jobs are the resources of one partition the nodes of a cluster own:
// the alert stage and the periodic jobs (singleton.go).
var jobs = []string{"alerts", jobRetention, jobAnchors, jobSealer, jobUpdatePlans}

// ownedBy describes who owns what among nodes, and says whether every
// detection partition and every job is owned by exactly one of them and
// every node sees them all as members.
func ownedBy(t *testing.T, nodes []*Node, parts int) (string, bool) {
	t.Helper()
	var desc []string
	sums := map[string]float64{}
	ok := true
	for _, n := range nodes {
		d := fmt.Sprintf("%s: members=%g", n.Config().Cluster.Node, gauge(t, n.Gatherer(), "vigil_cluster_members", "", ""))
		ok = ok && gauge(t, n.Gatherer(), "vigil_cluster_members", "", "") == float64(len(nodes))
		for _, r := range append([]string{"detect"}, jobs...) {
			v := gauge(t, n.Gatherer(), "vigil_cluster_owned", "resource", r)
			sums[r] += v
			d += fmt.Sprintf(" %s=%g", r, v)
		}
		desc = append(desc, d)
	}
	ok = ok && sums["detect"] == float64(parts)
	for _, j := range jobs {
		ok = ok && sums[j] == 1
	}
	return strings.Join(desc, "; "), ok
}

// gauge returns the value of the gauge name of g whose label is value
// (the first gauge of that name when label is empty); 0 when absent.
func gauge(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" {
				return m.GetGauge().GetValue()
			}
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
