package main

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/agent/collect"
	"github.com/vigil-iot/vigil/sim"
	"github.com/vigil-iot/vigil/store"
)

// demoDoSCounters are a device's kernel counters (/proc/net of its network
// namespace) recorded before and during a real SYN flood from forged
// sources (agent/collect's TestDoSSYNFloodInNamespace, recorded with
// VIGIL_TEST_DOS_RECORD): the demo cannot flood a device on the machine it
// runs on, so it plays what the kernel showed.
//
//go:embed demodata/dos
var demoDoSCounters embed.FS

// dosDevice is the device the demo floods: the first one after the
// attacked camera and the device whose MQTT account a bot abuses that is
// not the beaconing gateway (nil in a small fleet).
func (d *demoRun) dosDevice() *sim.Device {
	for _, dev := range d.fleet.Devices[min(2, len(d.fleet.Devices)):] {
		if dev != d.gateway {
			return dev
		}
	}
	return nil
}

// dos runs the agent's own dos collector on dev's counters: once before
// the flood (it only records), once on the counters the kernel showed
// during it; the events it emits go to the server in dev's report, as its
// agent sends them.
func (d *demoRun) dos(ctx context.Context, dev *sim.Device, root string, at time.Duration) {
	now := d.start
	col := &collect.DoS{Env: collect.Env{Root: root, Now: func() time.Time { return now }}}
	collectAt := func(name string) ([]string, error) {
		if err := playCounters(root, name); err != nil {
			return nil, err
		}
		d.mu.Lock() // the simulation is not concurrent
		rep := d.fleet.Report(dev, now)
		d.mu.Unlock()
		rep.Health, rep.Network, rep.Events = nil, nil, nil
		if err := col.Collect(ctx, rep); err != nil {
			return nil, err
		}
		var actions []string
		for _, e := range rep.Events {
			actions = append(actions, e.Action)
		}
		if len(rep.Events) > 0 {
			d.post(ctx, d.clientOf(dev), "application/json", encodeReport("application/json", rep))
		}
		return actions, nil
	}
	if _, err := collectAt("before"); err != nil {
		d.printf("(no DoS story: %v)\n", err)
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Until(d.start.Add(at))):
	}
	now = time.Now()
	evs, err := collectAt("syn")
	if err != nil {
		d.printf("(no DoS story: %v)\n", err)
		return
	}
	d.printf("attack   %s: SYN flood from forged sources; its agent's dos collector read the kernel's counters (recorded in a real flood) and reported %s\n",
		dev.ID, strings.Join(evs, ", "))
}

// playCounters writes the recorded counters name ("before", "syn") as
// root's /proc/net.
func playCounters(root, name string) error {
	dst := filepath.Join(root, "proc", "net")
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("cannot play the recorded counters: %w", err)
	}
	src := "demodata/dos/" + name + "/proc/net"
	ents, err := fs.ReadDir(demoDoSCounters, src)
	if err != nil {
		return fmt.Errorf("cannot play the recorded counters: %w", err)
	}
	for _, e := range ents {
		b, err := fs.ReadFile(demoDoSCounters, src+"/"+e.Name())
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600)
		}
		if err != nil {
			return fmt.Errorf("cannot play the recorded counters: %w", err)
		}
	}
	return nil
}

// dosSummary says whether the flood was detected, and by which rule.
func (d *demoRun) dosSummary(ctx context.Context, dev *sim.Device) {
	if dev == nil {
		return
	}
	alerts, _, err := d.admin.ListAlerts(ctx, store.AlertFilter{DeviceID: dev.ID, Page: store.Page{Limit: 100}})
	if err != nil {
		return
	}
	for _, al := range alerts {
		if strings.Contains(al.RuleID, "f5808a7b") || strings.Contains(strings.ToLower(al.Title), "syn flood") {
			fmt.Fprintf(d.out, "\nDenial of service on %s detected from its agent's kernel counters: %s %s (%s)\n",
				dev.ID, al.Severity, al.Title, strings.Join(al.Techniques, " "))
			return
		}
	}
	fmt.Fprintf(d.out, "\nThe SYN flood on %s was not detected.\n", dev.ID)
}
