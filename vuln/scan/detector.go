package scan

import (
	"context"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect"
	"github.com/vigil-iot/vigil/ingest/agent"
)

// Detector feeds the pipeline's events into a DB: an inventory event
// updates its device's software, and with it the device's findings; any
// event may show exposure (a listener, traffic to a port) or a server
// banner. It raises nothing through emit: findings also change when a feed
// is updated, with no event at all, so the DB reports new findings'
// alerts through Config.Alert.
type Detector struct{ db *DB }

var _ detect.Detector = (*Detector)(nil)

// NewDetector returns a detector feeding db.
func NewDetector(db *DB) *Detector { return &Detector{db: db} }

// Name returns "vuln".
func (d *Detector) Name() string { return "vuln" }

// Detect updates the DB from ev.
func (d *Detector) Detect(_ context.Context, _ int, ev *vigil.Event, _ func(vigil.Alert)) {
	d.db.Observe(ev)
	if ev.Kind != vigil.KindInventory {
		return
	}
	if _, ok := ev.Fields["software"]; !ok {
		// An inventory event of network interfaces only (the agent sends
		// its software list when it changes, and hourly): it says nothing
		// of what the device runs, so it must not empty its findings.
		return
	}
	if dev, err := agent.DeviceFromInventory(ev); err == nil {
		d.db.UpdateDevice(dev)
	}
}
