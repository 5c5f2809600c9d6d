package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/cluster"
	"github.com/vigil-iot/vigil/detect"
)

// ClusterConfig is the `cluster:` section: several `vigil serve` nodes on
// one NATS JetStream cluster and one PostgreSQL (docs/scaling.md).
type ClusterConfig struct {
	// Enabled makes this node share the stateful work with the other
	// nodes on the same bus: each detection partition, and the alert
	// stage, is processed by one node at a time. Needs nats_url.
	Enabled bool `yaml:"enabled"`
	// Node names this node, unique in the cluster and stable across
	// restarts; default the host name and the listen port.
	Node string `yaml:"node"`
	// LeaseTTL is how long a dead node's partitions wait before the
	// others take them (cluster.DefaultTTL when zero).
	LeaseTTL Duration `yaml:"lease_ttl"`
}

func (c ClusterConfig) validate(natsURL string) error {
	if !c.Enabled {
		return nil
	}
	if natsURL == "" {
		return fmt.Errorf("cluster.enabled: needs nats_url (the nodes share an external NATS JetStream cluster)")
	}
	if c.LeaseTTL != 0 && time.Duration(c.LeaseTTL) < 2*time.Second {
		return fmt.Errorf("cluster.lease_ttl: must be at least 2s")
	}
	return nil
}

// nodeName returns the configured node name or host name:listen port.
func (c ClusterConfig) nodeName(listen string) string {
	if c.Node != "" {
		return c.Node
	}
	host, _ := os.Hostname()
	_, port, _ := net.SplitHostPort(listen)
	return host + "-" + port
}

// clusterState is the running node's membership (nil when not a cluster).
type clusterState struct {
	m           *cluster.Membership
	checkpoints cluster.Checkpoints
}

var _ detect.Owner = (*cluster.Membership)(nil)
var _ detect.Checkpoints = cluster.Checkpoints{}

// openCluster joins the cluster when cluster.enabled: the lease bucket
// (TTL the lease TTL) and the checkpoint bucket on the bus.
func (a *Node) openCluster(ctx context.Context) error {
	cc := a.cfg.Cluster
	if !cc.Enabled {
		return nil
	}
	ttl := time.Duration(cc.LeaseTTL)
	if ttl == 0 {
		ttl = cluster.DefaultTTL
	}
	leases, err := a.bus.KeyValue(ctx, cluster.Bucket, ttl)
	if err != nil {
		return err
	}
	cps, err := a.bus.KeyValue(ctx, cluster.CheckpointBucket, 0)
	if err != nil {
		return err
	}
	m, err := cluster.New(cluster.Config{KV: leases, Node: cc.nodeName(a.cfg.Listen), TTL: ttl, Renew: ttl / 4,
		Logger: a.log, Registerer: a.registry})
	if err != nil {
		return err
	}
	a.cluster = &clusterState{m: m, checkpoints: cluster.Checkpoints{KV: cps}}
	a.log.Info("cluster node", "component", "cluster", "node", m.Node(), "lease_ttl", ttl)
	return nil
}

// clusterDetect sets the detection stage's options of a cluster node:
// the partitions it owns, their checkpoints, and the baseline's restore
// and save on hand-over.
func (a *Node) clusterDetect(o *detect.StageOptions) {
	if a.cluster == nil {
		return
	}
	o.Owner, o.Checkpoints = a.cluster.m, a.cluster.checkpoints
	o.OnAcquire = func(ctx context.Context, p int) error {
		if a.baseline == nil {
			return nil
		}
		b, err := a.store.GetBaseline(ctx, p)
		if vigil.ErrorCode(err) == vigil.ENOTFOUND {
			return nil
		}
		if err != nil {
			return fmt.Errorf("cannot read the baseline checkpoint of partition %d: %w", p, err)
		}
		state, err := gunzip(b.State)
		if err == nil {
			err = a.baseline.det.Restore(p, state)
		}
		if err != nil {
			a.log.Error("baseline checkpoint not restored: the partition learns afresh", "component", "baseline", "partition", p, "err", err)
		}
		return nil
	}
	o.OnRelease = func(ctx context.Context, p int) {
		if a.baseline == nil {
			return
		}
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := a.baseline.saveParts(sctx, []int{p}); err != nil {
			a.log.Error("cannot save the baseline of a partition given up", "component", "baseline", "partition", p, "err", err)
		}
	}
}

// runAlerts runs the alert stage: on a cluster node only while it holds
// the stage's lease, so that one node at a time deduplicates alerts and
// assigns them to incidents, after reloading the incidents the previous
// owner opened.
func (a *Node) runAlerts(ctx context.Context) error {
	if a.cluster == nil {
		return a.alerts.Run(ctx)
	}
	// Under a lease, a failure of the alert stage (its consumer cannot be
	// made while a NATS server is down and the stream elects a leader)
	// gives the lease back, as a detection partition does: the stage
	// runs again here or on another node, and the server stays up.
	return a.cluster.m.Own(ctx, "alerts", 1, func(ctx context.Context, _ int) {
		if err := a.incident.Reload(ctx); err != nil {
			a.log.Error("cannot reload incidents; giving the alert stage back", "component", "cluster", "err", err)
		} else if err := a.alerts.Run(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("alert stage failed; giving it back", "component", "cluster", "err", err)
		} else {
			return
		}
		t := time.NewTimer(time.Second) // let the owner try again a little later
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	})
}
