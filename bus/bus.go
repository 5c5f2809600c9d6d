// Package bus carries events and alerts between Vigil's stages. The
// interface hides NATS JetStream so stages can be tested and reasoned about
// without it; natsbus is the implementation, with an embedded server by
// default or an external cluster.
//
// Events are partitioned by device: every event of one device lands in the
// same partition, in order, so a stateful detector that owns a partition
// sees all of that device's events.
package bus

import (
	"context"
	"errors"
	"hash/fnv"

	"github.com/vigil-iot/vigil"
)

// ErrBackpressure is returned by Publish* when the bus cannot take more
// right now (stream full, too many publishes in flight). None of the batch
// should be assumed stored (part of a batch that spans several messages
// may have been); the caller should ask its client to retry later, and the
// consumers deduplicate what a retry sends twice.
var ErrBackpressure = errors.New("bus is full, retry later")

// Bus is the pipeline's durable transport.
type Bus interface {
	// PublishEvents makes events durable on the bus: when it returns nil,
	// every event is stored by the bus and will be delivered to every
	// consumer group at least once. On error none should be assumed stored
	// (a retry may duplicate some; consumers deduplicate by event id).
	PublishEvents(ctx context.Context, events []vigil.Event) error
	// PublishAlerts does the same for alerts.
	PublishAlerts(ctx context.Context, alerts []vigil.Alert) error
	// ConsumeEvents delivers events to a durable consumer group until ctx
	// ends. Each group sees every event; within a group, the handler is
	// called concurrently for different partitions but never concurrently
	// for the same one, and events of one partition arrive in publish
	// order. A batch is acknowledged when the handler returns nil;
	// on error it is redelivered later. It returns when ctx is done
	// (nil) or the bus fails. Run one ConsumeEvents per group at a time:
	// two processes consuming one group would split each partition.
	ConsumeEvents(ctx context.Context, group string, h EventHandler) error
	// ConsumeAlerts does the same for alerts, with one partition.
	ConsumeAlerts(ctx context.Context, group string, h AlertHandler) error
	// Partitions is the number of event partitions.
	Partitions() int
	// Close releases the connection (and stops an embedded server).
	Close() error
}

// EventHandler handles one batch of events from one partition.
type EventHandler func(ctx context.Context, partition int, events []vigil.Event) error

// AlertHandler handles one batch of alerts.
type AlertHandler func(ctx context.Context, alerts []vigil.Alert) error

// Partition returns the partition of a device key among n partitions.
func Partition(deviceID string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(deviceID))
	return int(h.Sum32() % uint32(n))
}

// PartitionConsumer is implemented by buses that can consume one partition
// of a group on its own, so that the partitions of a stateful group are
// spread over the nodes of a cluster, each owned by one node at a time
// (cluster.Membership hands them out).
//
// Contract: ConsumeEventPartition delivers the events of one partition to
// the group's durable consumer of that partition, with the guarantees of
// ConsumeEvents, until ctx ends; it then stops fetching, gives back what it
// received and did not handle, and returns nil once no handler call is
// running. Two calls for one group and partition must not overlap, in one
// process or across processes: the caller's lease guarantees it.
type PartitionConsumer interface {
	ConsumeEventPartition(ctx context.Context, group string, partition int, h EventHandler) error
}
