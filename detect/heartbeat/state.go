package heartbeat

import "github.com/vigil-iot/vigil/detect"

var _ detect.Stateful = (*Detector)(nil)

// SnapshotPartition reports no state: what a node knows of the devices of
// a partition is not carried to the next owner, which learns them from
// their next health sample (a device that went silent exactly across a
// failover is not reported).
func (d *Detector) SnapshotPartition(int) ([]byte, bool, error) { return nil, false, nil }

// RestorePartition starts the partition empty.
func (d *Detector) RestorePartition(partition int, _ []byte) error {
	d.DropPartition(partition)
	return nil
}

// DropPartition forgets the devices of a partition this node gave up, so
// that Tick does not report them silent.
func (d *Detector) DropPartition(partition int) { d.parts.Delete(partition) }
