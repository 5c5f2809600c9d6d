// Package detect is the detection stage: it consumes events from the bus,
// runs every Detector over them and publishes the alerts they raise.
// Detectors live in sub-packages (threshold, sigma, ...); this package owns
// only the Detector contract and the stage that drives them.
package detect

import (
	"context"
	"time"

	"github.com/vigil-iot/vigil"
)

// Detector turns events into alerts.
//
// Contract: Detect is called once per event, in the event's partition
// order. Calls for different partitions may run concurrently, so a
// stateful detector keeps its state per partition (or locks); all events
// of one device are in one partition. Detect must not keep ev after it
// returns, must not block on I/O, and reports alerts by calling emit zero
// or more times before returning. Windows use event time (ev.Time), never
// the wall clock, so a replay detects the same thing.
type Detector interface {
	// Name is the detector's name, stored in Alert.Detector.
	Name() string
	Detect(ctx context.Context, partition int, ev *vigil.Event, emit func(vigil.Alert))
}

// Ticker is implemented by detectors that raise alerts on the passage of
// time rather than on an event (a device that stops reporting). The stage
// calls Tick periodically with the current time.
type Ticker interface {
	Tick(ctx context.Context, now time.Time, emit func(vigil.Alert))
}

// Stateful is implemented by detectors whose state of a partition must
// move with the partition when a cluster node hands it to another
// (threshold and correlation windows).
//
// Contract: the stage calls these between the Detect calls of the
// partition, never concurrently with them. SnapshotPartition returns the
// partition's state when it changed since the last SnapshotPartition or RestorePartition of
// that partition (changed false and nil state otherwise). RestorePartition replaces
// the partition's state with one SnapshotPartition returned (nil: empty); state of
// rules that no longer exist is dropped. DropPartition forgets the partition.
type Stateful interface {
	SnapshotPartition(partition int) (state []byte, changed bool, err error)
	RestorePartition(partition int, state []byte) error
	DropPartition(partition int)
}

// Owner hands out the partitions of a cluster: cluster.Membership.Own.
//
// Contract: Own calls run in a goroutine for each partition of 0..n-1
// this node acquires, with a context that ends when the node must give
// the partition up, and does not let another node have it until run
// returned. It returns when ctx ends, after every run returned.
type Owner interface {
	Own(ctx context.Context, resource string, n int, run func(ctx context.Context, partition int)) error
}

// Checkpoints keeps the checkpoint of each partition where every node
// finds it: cluster.Checkpoints. The stage saves one value per partition
// under its group's name (the Stateful detectors' states and the ids of
// the batch they include last). Load returns nil when none was saved.
type Checkpoints interface {
	Load(ctx context.Context, detector string, partition int) ([]byte, error)
	Save(ctx context.Context, detector string, partition int, state []byte) error
}
