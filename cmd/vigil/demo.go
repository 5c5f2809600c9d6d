package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/enroll"
	"github.com/vigil-iot/vigil/internal/localagent"
	"github.com/vigil-iot/vigil/node"
	"github.com/vigil-iot/vigil/sim"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/wire"
)

type demoOptions struct {
	devices  int
	duration time.Duration
	interval time.Duration
	attackAt time.Duration
	seed     uint64
	keep     bool
	cloud    bool // the story starts in the cloud console (democloud.go)
}

func newDemoCmd() *cobra.Command {
	o := demoOptions{devices: 50, duration: 30 * time.Second, interval: time.Second, seed: 1}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run Vigil on a simulated fleet and a scripted attack, and show what it detects",
		Long: `Start a Vigil server on embedded defaults in a temporary data dir, simulate a fleet
of devices (cameras, thermostats, PLC gateways, smart meters) reporting through the real HTTPS
API, run a Mirai-style attack on one camera, and print what was detected, the incident and its
time-to-detect. Exits 0 when the attack was detected, 1 when not.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.devices < 1 {
				return fmt.Errorf("--devices must be at least 1")
			}
			if o.attackAt == 0 {
				o.attackAt = o.duration / 4
			}
			ok, err := runDemo(cmd.Context(), o, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if !ok {
				return exitCode(1)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.devices, "devices", o.devices, "number of simulated devices")
	f.DurationVar(&o.duration, "duration", o.duration, "how long the fleet reports")
	f.DurationVar(&o.interval, "interval", o.interval, "report interval of each device")
	f.DurationVar(&o.attackAt, "attack-at", 0, "when the attack starts (default: a quarter of --duration)")
	f.Uint64Var(&o.seed, "seed", o.seed, "random seed of the simulation")
	f.BoolVar(&o.keep, "keep", false, "keep the server running afterwards and print its URL and token")
	f.BoolVar(&o.cloud, "from-cloud", false, "start the attack in the AWS console (CloudTrail records pushed to the server) before the camera")
	return cmd
}

// runDemo runs the demo and reports whether the attack was detected.
func runDemo(ctx context.Context, o demoOptions, out io.Writer) (bool, error) {
	dir, err := os.MkdirTemp("", "vigil-demo-")
	if err != nil {
		return false, fmt.Errorf("cannot create demo data dir: %w", err)
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	logf, err := os.Create(filepath.Join(dir, "vigil.log"))
	if err != nil {
		return false, fmt.Errorf("cannot create demo log: %w", err)
	}
	defer logf.Close()

	cfg := node.DefaultConfig()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.Baseline.Learn = node.Duration(demoLearn(o.attackAt))
	cfg.Update.Tick = node.Duration(time.Second)
	cfg.Update.Settle = node.Duration(2 * time.Second) // the demo's camera is watched briefly after its update
	if err := cfg.Validate(); err != nil {
		return false, err
	}
	start := time.Now()
	fleet := sim.NewFleet(o.devices, o.seed, start)
	target := fleet.Devices[0]
	// Broker quarantine only when a Mosquitto with dynamic security is
	// installed and the fleet has a second device, which runs no agent
	// and whose MQTT account a second bot abuses.
	var broker *demoBroker
	if len(fleet.Devices) > 1 {
		broker = startDemoBroker(dir, fleet.Devices[1].ID)
	}
	if broker != nil {
		defer broker.stop()
		cfg.Response.MQTT = broker.config()
	}
	a, err := node.Open(ctx, cfg, newLogger(logf, "info"))
	if err != nil {
		return false, err
	}
	if err := a.Start(ctx); err != nil {
		a.Close()
		return false, err
	}
	defer a.Close()

	admin, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		return false, err
	}
	defer admin.Close()
	agentToken, err := admin.CreateToken(ctx, "demo-fleet", auth.RoleAgent)
	if err != nil {
		return false, fmt.Errorf("cannot create the fleet's token: %w", err)
	}
	agents, err := client.New(a.URL(), agentToken.Secret, client.TLSConfig(a.CAPool()))
	if err != nil {
		return false, err
	}
	defer agents.Close()

	d := &demoRun{fleet: fleet, target: target, agents: agents, admin: admin, out: out, start: start,
		seen: map[string]bool{}, titles: map[string]string{}, actions: map[string]vigil.ActionState{}}
	d.gateway = d.beaconDevice()
	if ag := d.startDemoAgent(ctx, a, target, dir, newLogger(logf, "info")); ag != nil {
		defer ag.Stop()
		if d.targetClient, err = client.New(a.URL(), "", ag.TLS); err != nil {
			return false, err
		}
		defer d.targetClient.Close()
	}
	if broker != nil {
		if d.sensor, _, err = localagent.EnrollClient(ctx, a, a.CAFile(), enroll.SensorClass, "demo", dir); err != nil {
			fmt.Fprintf(out, "(no demo sensor: %v)\n", err)
		} else {
			defer d.sensor.Close()
		}
	}
	fmt.Fprintf(out, "vigil demo: %d devices report to %s every %s for %s (data dir %s)\n",
		o.devices, a.URL(), o.interval, o.duration, dir)
	fmt.Fprintf(out, "            attack on %s (%s %s) at +%s\n\n", target.ID, target.Profile.Vendor, target.Profile.Model, o.attackAt)

	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { d.report(runCtx, o.interval) })
	wg.Go(func() { d.attack(runCtx, target, o.attackAt) })
	if o.cloud {
		push := newCloudPusher(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
		wg.Go(func() { d.cloudConsole(runCtx, push, max(0, o.attackAt-2*time.Second)) })
	}
	if d.gateway != nil {
		wg.Go(func() { d.beacon(runCtx, o.attackAt+4*time.Second) })
	}
	if dev := d.dosDevice(); dev != nil {
		wg.Go(func() { d.dos(runCtx, dev, filepath.Join(dir, "dos-"+dev.ID), o.attackAt+6*time.Second) })
	}
	if broker != nil {
		wg.Go(func() { d.mqttAttack(runCtx, broker, fleet.Devices[1], o.attackAt+5*time.Second) })
	}
	wg.Go(func() { d.watch(runCtx, admin) })
	wg.Wait()
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	// Let the pipeline finish what was sent in the last moments.
	d.settle(ctx, admin, 3*time.Second)
	d.waitContained(ctx, admin, target.ID, 3*time.Second)

	detected := d.summary(ctx, admin, target)
	d.updateDemo(ctx, a, dir, newLogger(logf, "info"), 30*time.Second)
	if o.keep {
		fmt.Fprintf(out, "\nThe server keeps running (Ctrl-C to stop):\n  console: %s/ (log in with the token; the certificate is from the demo's own CA)\n  API:     %s\n  token:   %s\n  CA:      %s\n  try:     vigil ctl incidents --server %s --token %s --ca %s\n",
			a.URL(), a.URL(), a.AdminToken(), filepath.Join(dir, "pki", "ca.crt"), a.URL(), a.AdminToken(), filepath.Join(dir, "pki", "ca.crt"))
		demoTryNoise(out) // ctlexceptions.go
		printInvestigateHints(ctx, out, admin, target.ID, fmt.Sprintf("--server %s --token %s --ca %s", a.URL(), a.AdminToken(), filepath.Join(dir, "pki", "ca.crt")))
		<-ctx.Done()
	}
	return detected, nil
}

type demoRun struct {
	fleet  *sim.Fleet
	target *sim.Device // the attacked camera
	// gateway is the PLC gateway whose beacon only the learned baseline
	// catches (nil when the fleet has none).
	gateway *sim.Device
	agents  *client.Client
	// targetClient posts the target's reports with its agent's
	// certificate (nil when its agent did not start: then agents does).
	targetClient *client.Client
	// sensor posts what the demo's enrolled sensor sees on the wire (the
	// bot's MQTT publish): evidence from a sensor's certificate, which
	// automatic containment trusts.
	sensor *client.Client
	admin  *client.Client
	out    io.Writer
	start  time.Time

	mu       sync.Mutex // guards the fleet (the simulation is not concurrent) and out
	reports  atomic.Int64
	failures atomic.Int64

	// stepMu makes an attack step's check of isolated and its line one
	// step, so that no step shows as done after the isolation's line.
	stepMu   sync.Mutex
	isolated bool

	// pollMu serializes printNew: the watch loop and the agent's
	// notification both print what the server has.
	pollMu  sync.Mutex
	seen    map[string]bool              // incidents printed
	titles  map[string]string            // incident titles as first printed
	actions map[string]vigil.ActionState // response actions printed, by state
}

func (d *demoRun) printf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "  +%5.1fs  ", time.Since(d.start).Seconds())
	fmt.Fprintf(d.out, format, args...)
}

// report posts every device's routine report each interval; every fourth
// device speaks XML, the others JSON.
func (d *demoRun) report(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		d.mu.Lock()
		now := time.Now()
		bodies := make([][]byte, len(d.fleet.Devices))
		types := make([]string, len(d.fleet.Devices))
		clients := make([]*client.Client, len(d.fleet.Devices))
		for i, dev := range d.fleet.Devices {
			types[i] = "application/json"
			if i%4 == 3 {
				types[i] = "application/xml"
			}
			r := d.fleet.Report(dev, now)
			r.Events = d.pollEvents(dev, now)
			bodies[i] = encodeReport(types[i], r)
			clients[i] = d.clientOf(dev)
		}
		d.mu.Unlock()
		sem := make(chan struct{}, 8)
		var wg sync.WaitGroup
		for i := range bodies {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				d.post(ctx, clients[i], types[i], bodies[i])
			})
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// clientOf returns the client that posts dev's reports: the target's own
// certificate when its agent runs, the fleet's agent token otherwise.
func (d *demoRun) clientOf(dev *sim.Device) *client.Client {
	if dev == d.target && d.targetClient != nil {
		return d.targetClient
	}
	return d.agents
}

func (d *demoRun) post(ctx context.Context, c *client.Client, contentType string, body []byte) {
	res, err := c.PostReport(ctx, contentType, body)
	if err != nil {
		if ctx.Err() == nil {
			d.failures.Add(1)
			d.printf("report failed: %v\n", err)
		}
		return
	}
	d.reports.Add(1)
	if len(res.Rejected) > 0 {
		d.printf("report partly rejected: %+v\n", res.Rejected)
	}
}

// attack plays the scripted attack on target, each step's events sent at
// once in a report of their own, as an agent does with security events.
// Once the target is isolated, the bot cannot reach it: the remaining
// steps are shown as blocked and send nothing.
func (d *demoRun) attack(ctx context.Context, target *sim.Device, at time.Duration) {
	begin := d.start.Add(at)
	for _, s := range sim.MiraiScript() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(begin.Add(s.At))):
		}
		d.stepMu.Lock()
		if d.isolated {
			d.printf("attack   %s: blocked, the camera is isolated: %s\n", target.ID, s.Try)
			d.stepMu.Unlock()
			continue
		}
		d.mu.Lock()
		now := time.Now()
		evs := s.Apply(target, now)
		var body []byte
		if len(evs) > 0 {
			r := d.fleet.Report(target, now)
			r.Health, r.Network = nil, nil
			r.Events = evs
			body = encodeReport("application/json", r)
		}
		d.mu.Unlock()
		d.printf("attack   %s: %s\n", target.ID, s.Say)
		d.stepMu.Unlock()
		if body != nil {
			d.post(ctx, d.clientOf(target), "application/json", body)
		}
	}
}

// watch prints incidents as they appear.
func (d *demoRun) watch(ctx context.Context, admin *client.Client) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.printNew(ctx, admin)
	}
}

// printNew prints the incidents not printed yet, oldest first, then the
// response actions that changed: what was detected before what was done
// about it. An incident keeps the id and the title it was first printed
// with (its title follows its most severe alert on the server).
func (d *demoRun) printNew(ctx context.Context, admin *client.Client) {
	d.pollMu.Lock()
	defer d.pollMu.Unlock()
	defer d.printActions(ctx, admin)
	incs, _, err := admin.ListIncidents(ctx, store.IncidentFilter{Page: store.Page{Limit: 100}})
	if err != nil {
		return
	}
	for i := len(incs) - 1; i >= 0; i-- {
		inc := incs[i]
		if d.seen[inc.ID] {
			continue
		}
		d.seen[inc.ID] = true
		d.titles[inc.ID] = inc.Title
		d.printf("DETECTED incident %s: %s (severity %s, time to detect %s)\n",
			inc.ID, inc.Title, inc.Severity, inc.Incident.TimeToDetect().Round(time.Millisecond))
	}
}

// title is the incident's title as first printed (its title on the server
// follows its most severe alert), or its current one if never printed.
func (d *demoRun) title(inc *vigil.Incident) string {
	d.pollMu.Lock()
	defer d.pollMu.Unlock()
	if t, ok := d.titles[inc.ID]; ok {
		return t
	}
	return inc.Title
}

// settle waits until no new alert arrives for a second, at most max.
func (d *demoRun) settle(ctx context.Context, admin *client.Client, max time.Duration) {
	deadline := time.Now().Add(max)
	last := -1
	for time.Now().Before(deadline) {
		as, _, err := admin.ListAlerts(ctx, store.AlertFilter{Page: store.Page{Limit: 1000}})
		if err == nil && len(as) == last {
			break
		}
		last = len(as)
		time.Sleep(time.Second)
	}
	d.printNew(ctx, admin)
}

// summary prints the alerts and incidents and the summary line, and says
// whether an incident holds the attacked device.
func (d *demoRun) summary(ctx context.Context, admin *client.Client, target *sim.Device) bool {
	out := d.out
	alerts, _, err := admin.ListAlerts(ctx, store.AlertFilter{Page: store.Page{Limit: 1000}})
	if err != nil {
		fmt.Fprintf(out, "cannot list alerts: %v\n", err)
	}
	incs, _, err := admin.ListIncidents(ctx, store.IncidentFilter{Page: store.Page{Limit: 1000}})
	if err != nil {
		fmt.Fprintf(out, "cannot list incidents: %v\n", err)
	}
	fmt.Fprintf(out, "\n%d reports sent (%d failed). Alerts:\n", d.reports.Load(), d.failures.Load())
	sort.Slice(alerts, func(i, j int) bool { return alerts[i].FirstEventTime.Before(alerts[j].FirstEventTime) })
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SEVERITY\tDEVICE\tRULE\tATT&CK\tCOUNT")
	for _, al := range alerts {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\n", al.Severity, al.DeviceID, al.Title, joinOr(al.Techniques, "-"), al.Count)
	}
	tw.Flush()

	var hit *vigil.Incident
	for i := len(incs) - 1; i >= 0; i-- { // oldest first, as printed
		inc := &incs[i].Incident
		title := d.title(inc)
		fmt.Fprintf(out, "\nIncident %s: %s\n  status %s, severity %s, devices %v, %d alerts, ATT&CK %s\n  first malicious event %s, detected %s: time to detect %s\n",
			inc.ID, title, inc.Status, inc.Severity, inc.DeviceIDs, len(inc.AlertIDs), joinOr(inc.Techniques, "-"),
			inc.FirstEventTime.Format(time.StampMilli), inc.Detected.Format(time.StampMilli), inc.TimeToDetect().Round(time.Millisecond))
		if slices.Contains(inc.DeviceIDs, target.ID) && (hit == nil || inc.Detected.Before(hit.Detected)) {
			hit = inc
		}
	}
	ttd := time.Duration(0)
	if hit != nil {
		ttd = hit.TimeToDetect().Round(time.Millisecond)
	}
	d.baselineOnly(ctx)
	d.dosSummary(ctx, d.dosDevice())
	fmt.Fprintf(out, "\ndemo: detected=%s incidents=%d time_to_detect=%s", yesNo(hit != nil), len(incs), ttd)
	containedSummary(out, hit)
	fmt.Fprintln(out)
	return hit != nil
}

func encodeReport(contentType string, r *wire.Report) []byte {
	var b bytes.Buffer
	if err := wire.EncodeReport(&b, contentType, r); err != nil {
		panic(errors.New("cannot encode a simulated report: " + err.Error()))
	}
	return b.Bytes()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func joinOr(s []string, empty string) string {
	if len(s) == 0 {
		return empty
	}
	out := s[0]
	for _, x := range s[1:] {
		out += "," + x
	}
	return out
}
