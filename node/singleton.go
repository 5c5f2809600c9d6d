package node

import (
	"context"
	"time"
)

// The periodic jobs a cluster needs done once, not once per node: each
// is a resource of one partition under a cluster lease
// (cluster.Membership.Own), so one node at a time runs it and another
// takes it over when that node stops (at once) or dies (within lease_ttl).
// Its owner shows in vigil_cluster_owned{resource=...}.
const (
	jobRetention   = "retention"     // deletes the events older than retention
	jobAnchors     = "audit-anchors" // anchors the audit trail to its sinks
	jobSealer      = "hunt-sealer"   // seals the event history into hunt segments
	jobUpdatePlans = "update-plans"  // proposes update plans and advances them
	jobUpdateRepos = "update-repos"  // fetches artifacts from the update repositories
)

// runSingleton runs job until ctx ends: on a single node at once; on a
// cluster node only while it holds the job's lease. A job that fails
// under a lease is logged and gives the lease back, and is tried again a
// second later here or on another node; on a single node its failure is
// the node's.
func (a *Node) runSingleton(ctx context.Context, job string, run func(ctx context.Context) error) error {
	if a.cluster == nil {
		return run(ctx)
	}
	return a.cluster.m.Own(ctx, job, 1, func(ctx context.Context, _ int) {
		a.log.Info("periodic job runs on this node", "component", "cluster", "job", job)
		err := run(ctx)
		if err == nil || ctx.Err() != nil {
			return
		}
		a.log.Error("periodic job failed; giving it back", "component", "cluster", "job", job, "err", err)
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	})
}
