package sigma

import (
	"encoding/json"
	"fmt"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect"
)

var _ detect.Stateful = (*Detector)(nil)

// SnapshotPartition returns the correlation windows of one partition (JSON, as
// Checkpoint writes each partition) when an event fed a correlation there
// since the last SnapshotPartition or RestorePartition.
func (d *Detector) SnapshotPartition(partition int) ([]byte, bool, error) {
	d.mu.Lock()
	ps := d.parts[partition]
	d.mu.Unlock()
	if ps == nil {
		return nil, false, nil
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if !ps.dirty || ps.corr == nil {
		return nil, false, nil
	}
	ps.dirty = false
	b, err := json.Marshal(ps.corr.snapshot())
	if err != nil {
		return nil, false, fmt.Errorf("cannot encode sigma state: %w", err)
	}
	return b, true, nil
}

// RestorePartition replaces the correlation windows of one partition with a
// Snapshot's; windows of rules that no longer exist are dropped. Nil
// state empties the partition.
func (d *Detector) RestorePartition(partition int, state []byte) error {
	d.DropPartition(partition)
	if len(state) == 0 {
		return nil
	}
	var cp checkpoint
	if err := json.Unmarshal(state, &cp); err != nil {
		return vigil.Errorf(vigil.EINVALID, "cannot read sigma state: %v", err)
	}
	rs := d.rs.Load()
	p := d.part(partition)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rs, p.m = rs, rs.NewMatcher()
	p.m.keepIDs = true
	p.corr = newCorrelator(d.opts.MaxGroups, d.opts.MaxEntries, &d.dropped)
	p.corr.restore(rs, cp)
	return nil
}

// DropPartition forgets the correlation windows of one partition.
func (d *Detector) DropPartition(partition int) {
	d.mu.Lock()
	delete(d.parts, partition)
	d.mu.Unlock()
}
