package main

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/sim"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/wire"
)

// The demo's second attack is one only the learned baseline catches: a PLC
// gateway that polls its PLC (reported by its agent as a connection each
// report) opens a connection to a host and port it never used. No rule of
// the pack names the host or the port; the baseline knows the gateway has
// only ever talked to its PLC.

// demoLearn is how long the demo's baseline learns: half the time before
// the attack (the default, a day, would hold every alert of a demo back).
func demoLearn(attackAt time.Duration) time.Duration {
	return max(attackAt/2, time.Second)
}

// beaconDevice is the fleet's first PLC gateway, or nil.
func (d *demoRun) beaconDevice() *sim.Device {
	for _, dev := range d.fleet.Devices {
		if dev.Profile.Class == vigil.ClassPLCGateway {
			return dev
		}
	}
	return nil
}

// pollEvents are the events the beacon device's routine report carries: its
// connection to the PLC.
func (d *demoRun) pollEvents(dev *sim.Device, now time.Time) []wire.SecurityEvent {
	if dev != d.gateway {
		return nil
	}
	return []wire.SecurityEvent{sim.ConnectEvent(now, dev.IP, sim.PLC, 502)}
}

// beacon sends the gateway's connection to the new peer at at, and again
// every 2 s (a beacon) until the demo ends.
func (d *demoRun) beacon(ctx context.Context, at time.Duration) {
	dev := d.gateway
	next := d.start.Add(at)
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		d.mu.Lock()
		now := time.Now()
		r := d.fleet.Report(dev, now)
		r.Health, r.Network, r.Inventory = nil, nil, nil
		r.Events = []wire.SecurityEvent{sim.ConnectEvent(now, dev.IP, sim.NewPeer, sim.BeaconPort)}
		body := encodeReport("application/json", r)
		d.mu.Unlock()
		if i == 0 {
			d.printf("attack   %s: beacons to %s:%d, a peer and port it never used (no rule names them: only the learned baseline can tell)\n",
				dev.ID, sim.NewPeer, sim.BeaconPort)
		}
		d.post(ctx, d.agents, "application/json", body)
		next = next.Add(2 * time.Second)
	}
}

// baselineOnly prints the learned baseline's alerts on the gateway: what
// only it caught.
func (d *demoRun) baselineOnly(ctx context.Context) {
	if d.gateway == nil {
		return
	}
	alerts, _, err := d.admin.ListAlerts(ctx, store.AlertFilter{Page: store.Page{Limit: 1000}})
	if err != nil {
		return
	}
	found := false
	for _, al := range alerts {
		if al.DeviceID != d.gateway.ID {
			continue
		}
		if al.Detector != "baseline" {
			fmt.Fprintf(d.out, "\nnot only the baseline: %s raised %s\n", al.Detector, al.Title)
			continue
		}
		if !found {
			fmt.Fprintf(d.out, "\nCaught only by the learned baseline (%s beaconing to %s:%d):\n", d.gateway.ID, sim.NewPeer, sim.BeaconPort)
			found = true
		}
		fmt.Fprintf(d.out, "  %s %s [%s]: %v\n", al.Severity, al.Title, al.RuleID, al.Fields["explanation"])
	}
	if !found {
		fmt.Fprintf(d.out, "\nThe learned baseline raised nothing on %s's beacon.\n", d.gateway.ID)
	}
}
