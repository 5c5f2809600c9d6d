// Package cluster makes several `vigil serve` nodes on one NATS JetStream
// cluster share the stateful work: each partition of a stateful consumer
// group (detection windows, learned baselines) and each singleton stage
// (the alert stage, whose dedup and incident correlation must see every
// alert) is processed by exactly one node at a time.
//
// There is no master and no election of ours: membership and ownership
// live in one JetStream key-value bucket (natsbus.Bus.KeyValue) whose TTL
// is the lease time, and every change is a compare-and-set on the key's
// revision, decided by the NATS cluster (Raft), so it survives the loss of
// a NATS node like the streams do.
//
//	m.<node>              heartbeat of a live node, written every Renew
//	l.<resource>.<p>      lease of partition p of resource: the owner's name
//
// Every node computes the same assignment from the live members:
// rendezvous (highest random weight) hashing of (node, resource,
// partition), which spreads partitions evenly and moves only the
// partitions of a node that joins or leaves. A node creates the lease of a
// partition it should own when the key is free (Create fails when another
// node holds it), renews it with Update on its revision, and releases it
// (Delete on its revision) after its worker for the partition stopped. A
// node that dies stops renewing: its heartbeat and leases expire after the
// TTL and the survivors take the partitions over.
//
// # Fencing
//
// A node that cannot renew a lease (NATS unreachable, the key taken)
// cancels the partition's worker once its last successful renewal is
// older than TTL-Renew, before the key can expire at the server and be
// created by another node; the worker (natsbus.ConsumeEventPartition)
// stops fetching and returns within the bus's FetchWait. Renew must
// therefore exceed FetchWait plus the longest handler call: the defaults
// (TTL 6s, Renew 1.5s, FetchWait 1s) leave 1.5s.
//
// What the partitions' workers do on acquiring and losing a partition
// (restore a checkpoint, drop state) is theirs: Own only calls run with a
// context that ends when ownership ends, and waits for it to return
// before releasing the lease.
//
// # Metrics
//
//	vigil_cluster_members                     live nodes seen
//	vigil_cluster_owned{resource}             partitions this node owns
//	vigil_cluster_acquired_total{resource}    partitions acquired
//	vigil_cluster_released_total{resource,reason}  partitions given up: rebalance, fenced, stop
//
// # What it must not do
//
// It knows nothing of events, detectors or the store. It never runs two
// run calls for one partition of a resource in one process at once.
package cluster
