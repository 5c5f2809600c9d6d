package node

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
	"github.com/vigil-iot/vigil/detect/intel"
	"github.com/vigil-iot/vigil/feeds/catalog"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/vuln/scan"
)

// openIntel opens the threat-intel catalog (its indicators feed the IOC
// detector it returns) and the vulnerability DB (seeded with the stored
// devices, so findings survive a restart; its alerts go to the bus).
func (a *Node) openIntel(ctx context.Context) (*intel.Detector, error) {
	det := intel.New(a.log, a.registry)
	var err error
	if a.intel, err = catalog.Open(ctx, a.store, a.cfg.DataDir, a.log, vigil.SystemClock{}, a.onIndicators(det.Load)); err != nil {
		return nil, err
	}
	out := a.cfg.egress().Client(0) // feeds are large: bounded by size, not time
	a.intel.HTTP = out
	a.vulnAlerts = newAlertPublisher(a.bus, a.log.With("component", "vuln"))
	if a.vuln, err = scan.Open(scan.Config{Store: a.store, Dir: a.cfg.DataDir, Log: a.log, Clock: vigil.SystemClock{}, Registerer: a.registry, HTTP: out, Alert: a.vulnAlerts.add}); err != nil {
		return nil, err
	}
	for cursor := ""; ; {
		ds, next, err := a.store.ListDevices(ctx, store.DeviceFilter{Page: store.Page{Limit: 1000, Cursor: cursor}})
		if err != nil {
			return nil, fmt.Errorf("cannot load devices for vulnerability matching: %w", err)
		}
		for _, d := range ds {
			a.vuln.UpdateDevice(d)
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	return det, nil
}

// alertPublisher takes alerts raised outside the detection stage (new
// vulnerability findings after a feed update) and publishes them on the
// bus, so that they go through dedup, incidents and response like the
// others. add never blocks on the bus; it blocks only when a thousand
// alerts wait, which is back-pressure on the feed import.
type alertPublisher struct {
	b   bus.Bus
	ch  chan vigil.Alert
	log *slog.Logger
}

func newAlertPublisher(b bus.Bus, log *slog.Logger) *alertPublisher {
	return &alertPublisher{b: b, ch: make(chan vigil.Alert, 1000), log: log}
}

func (p *alertPublisher) add(a vigil.Alert) {
	if a.ID == "" {
		a.ID = vigil.NewID()
	}
	if a.Created.IsZero() {
		a.Created = time.Now().UTC()
	}
	p.ch <- a
}

// run publishes queued alerts in batches until ctx ends, retrying while
// the bus refuses them.
func (p *alertPublisher) run(ctx context.Context) error {
	for {
		var batch []vigil.Alert
		select {
		case <-ctx.Done():
			return nil
		case a := <-p.ch:
			batch = append(batch, a)
		}
	more:
		for len(batch) < 100 {
			select {
			case a := <-p.ch:
				batch = append(batch, a)
			default:
				break more
			}
		}
		for {
			err := p.b.PublishAlerts(ctx, batch)
			if err == nil {
				break
			}
			p.log.Warn("cannot publish alerts, retrying", "alerts", len(batch), "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
}
