package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-iot/vigil/agent/collect"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/agent/httpc"
	"github.com/vigil-iot/vigil/agent/mqtt"
	"github.com/vigil-iot/vigil/agent/protocol"
	"github.com/vigil-iot/vigil/agent/spool"
	"github.com/vigil-iot/vigil/wire"
)

// Version is the agent's version, set at build time with
// -ldflags "-X github.com/vigil-iot/vigil/agent.Version=...".
var Version = "dev"

// Agent is one running device agent.
type Agent struct {
	cfg    Config
	id     *Identity
	log    *slog.Logger
	spool  *spool.Spool
	server string
	client *httpc.Client // reports, results, renewal
	poller *httpc.Client // long polls
	now    func() time.Time

	periodic []collect.Collector
	events   []collect.Collector
	seq      atomic.Uint64
	flush    chan struct{}
	// inventoryNow asks Run for a full report at once (after an update or
	// a rollback, so the server sees the new software list).
	inventoryNow chan struct{}

	verifier *command.Verifier
	exec     command.Executor
	// updatePin is the config's update_key (nil when not set).
	updatePin ed25519.PublicKey

	idle func()

	lastInv   [32]byte  // hash of the last inventory sent
	lastInvAt time.Time // and when

	mqttMu sync.Mutex
	mq     *mqtt.Client

	mu          sync.Mutex
	lastContact time.Time
	isolatedAt  time.Time // zero when not isolated
}

// Options are the agent's collaborators besides its config.
type Options struct {
	// Logger receives the agent's logs (component=agent is added).
	Logger *slog.Logger
	// Now tells the time (default time.Now).
	Now func() time.Time
	// Executor runs verified commands (default command.System).
	Executor command.Executor
	// Interfaces overrides the network interface lister (tests).
	Interfaces func() ([]wire.Interface, error)
	// Idle is called by Run each time a collection and the sending it
	// caused are over and the agent is about to wait: cmd/vigil-agent
	// returns the freed memory to the system there. Nil does nothing.
	Idle func()
}

// New loads the identity from the config's state directory and opens the
// spool.
func New(cfg Config, opts Options) (*Agent, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	id, err := LoadIdentity(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	server := cfg.Server
	if server == "" {
		server = id.Server
	}
	if server == "" {
		return nil, errors.New("no server: set \"server\" in the config or enroll first")
	}
	sp, err := spool.Open(filepath.Join(cfg.StateDir, "spool"), spool.Options{MaxBytes: cfg.SpoolMaxBytes})
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Agent{cfg: cfg, id: id, log: log.With("component", "agent", "device_id", id.DeviceID), spool: sp,
		server: strings.TrimRight(server, "/"), now: opts.Now, idle: opts.Idle, flush: make(chan struct{}, 1), inventoryNow: make(chan struct{}, 1)}
	if a.idle == nil {
		a.idle = func() {}
	}
	if a.now == nil {
		a.now = time.Now
	}
	ua := "vigil-agent/" + Version
	a.client = &httpc.Client{TLS: id.TLSConfig(), Timeout: time.Minute, UserAgent: ua}
	a.poller = &httpc.Client{TLS: id.TLSConfig(), Timeout: time.Duration(cfg.PollWait) + time.Minute, UserAgent: ua}

	env := collect.Env{Root: cfg.Root, Now: a.now}
	add := func(list *[]collect.Collector, name string, c collect.Collector) {
		if cfg.enabled(name) {
			*list = append(*list, c)
		}
	}
	add(&a.periodic, "system", &collect.System{Env: env, Class: cfg.Class, Vendor: cfg.Vendor, Model: cfg.Model,
		FirmwareFile: cfg.FirmwareFile, FirmwareCommand: cfg.FirmwareCommand})
	add(&a.periodic, "packages", &collect.Packages{Env: env})
	add(&a.periodic, "health", &collect.Health{Env: env, Mounts: cfg.DiskMounts})
	add(&a.periodic, "network", &collect.Network{Env: env, Interfaces: opts.Interfaces})
	add(&a.periodic, "hardware", &collect.Hardware{Env: env, StateFile: filepath.Join(cfg.StateDir, "boot.json"),
		ClockJump: time.Duration(cfg.ClockJump), WearLevel: cfg.FlashWearLevel})
	add(&a.periodic, "smart", &collect.SMART{Env: env})
	if len(cfg.FIMPaths) > 0 {
		add(&a.periodic, "fim", &collect.FIM{Env: env, Paths: cfg.FIMPaths, StateFile: filepath.Join(cfg.StateDir, "fim.json")})
	}
	if cfg.MetricsFile != "" || len(cfg.MetricsCommand) > 0 {
		add(&a.periodic, "metrics", &collect.Metrics{File: cfg.MetricsFile, Command: cfg.MetricsCommand})
	}
	add(&a.events, "processes", &collect.Processes{Env: env, Connector: cfg.ProcessEvents == "connector"})
	add(&a.events, "authlog", &collect.AuthLog{Env: env, Files: cfg.AuthLogs})
	add(&a.events, "dos", &collect.DoS{Env: env, Thresholds: cfg.DoSThresholds})

	if cfg.Commands {
		rc, err := command.OpenReplayCache(filepath.Join(cfg.StateDir, "replay"), a.now)
		if err != nil {
			return nil, err
		}
		pol, err := command.LoadPolicy(cfg.PolicyFile)
		if err != nil {
			a.log.Warn("no usable command policy: every command will be refused", "err", err)
			pol = nil
		}
		a.verifier = &command.Verifier{Key: id.CommandKey, DeviceID: id.DeviceID, Policy: pol, Replay: rc, Now: a.now}
		if a.updatePin, err = cfg.updateKey(); err != nil {
			return nil, err
		}
		if _, err := a.UpdateKey(); err != nil {
			a.log.Warn("updates will be refused", "err", err)
		}
		a.exec = opts.Executor
		if a.exec == nil {
			a.exec = &command.System{Firewall: cfg.Firewall, ServiceCommand: cfg.ServiceCommand, ParamFile: cfg.ParamFile,
				Installer: cfg.Installer, Rollback: cfg.Rollback, RebootCommand: cfg.RebootCommand,
				ShutdownCommand: cfg.ShutdownCommand, ShutdownDelay: 5 * time.Second, UpdateKeys: a.UpdateKey, Fetch: a.fetch}
		}
		if sys, ok := a.exec.(*command.System); ok && cfg.Update != nil && sys.Updater == nil {
			if sys.Updater, err = command.NewInstaller(*cfg.Update, nil); err != nil {
				return nil, err
			}
			sys.Kept = command.Kept{Dir: filepath.Join(cfg.StateDir, "updates")}
		}
		if sys, ok := a.exec.(*command.System); ok && sys.Policy == nil {
			sys.Policy = pol // how stop_service and shutdown run is the policy's
		}
	}
	return a, nil
}

// ErrNoUpdateKey and ErrUpdateKeyMismatch are the reasons UpdateKey
// refuses updates.
var (
	// ErrNoUpdateKey: the server handed no update key at enrollment or
	// renewal, and the configuration pins none.
	ErrNoUpdateKey = errors.New("no update key: the server handed none at enrollment or renewal, and the config pins none (update_key, from `vigil update key`); updates are refused")
	// ErrUpdateKeyMismatch: the key the server handed is not the one the
	// configuration pins.
	ErrUpdateKeyMismatch = errors.New("the server's update key (state update.pub, from enrollment or renewal) is not the update_key the config pins; updates are refused")
)

// UpdateKey returns the key update artifacts must be signed with: the
// server's update key from enrollment or renewal, which must equal the
// config's update_key when that is set; the pin alone for an agent
// enrolled before its server handed a key. Never the command key. A
// mismatch (ErrUpdateKeyMismatch) is logged at each call, which is at
// each update and at start.
func (a *Agent) UpdateKey() (ed25519.PublicKey, error) {
	got := a.id.UpdateKey()
	switch {
	case got == nil && a.updatePin == nil:
		return nil, ErrNoUpdateKey
	case got == nil:
		return a.updatePin, nil
	case a.updatePin != nil && !got.Equal(a.updatePin):
		a.log.Error("update key mismatch: updates refused", "server_key", base64.StdEncoding.EncodeToString(got),
			"pinned_key", base64.StdEncoding.EncodeToString(a.updatePin))
		return nil, ErrUpdateKeyMismatch
	}
	return got, nil
}

// DeviceID returns the enrolled device id.
func (a *Agent) DeviceID() string { return a.id.DeviceID }

// Spool returns the agent's spool (for status and tests).
func (a *Agent) Spool() *spool.Spool { return a.spool }

// Close releases the spool and the collectors' resources.
func (a *Agent) Close() error {
	for _, c := range append(a.periodic, a.events...) {
		if cl, ok := c.(io.Closer); ok {
			cl.Close()
		}
	}
	if a.verifier != nil && a.verifier.Replay != nil {
		a.verifier.Replay.Close()
	}
	a.client.Close()
	a.poller.Close()
	a.mqttMu.Lock()
	if a.mq != nil {
		a.mq.Close()
	}
	a.mqttMu.Unlock()
	return a.spool.Close()
}

// Collect runs collectors into a new report; a failing collector is
// logged and the others still count. Events get random ids.
func (a *Agent) Collect(ctx context.Context, cs []collect.Collector) *wire.Report {
	r := &wire.Report{Version: wire.Version, DeviceID: a.id.DeviceID, Time: a.now().UTC(), Sequence: a.seq.Add(1),
		Agent: wire.Agent{Version: Version}}
	for _, c := range cs {
		if err := c.Collect(ctx, r); err != nil {
			a.log.Warn("collector failed", "collector", c.Name(), "err", err)
		}
	}
	for i := range r.Events {
		if r.Events[i].ID == "" {
			r.Events[i].ID = newEventID()
		}
	}
	return r
}

func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Enqueue spools a report for sending.
func (a *Agent) Enqueue(r *wire.Report) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("cannot encode report: %w", err)
	}
	return a.spool.Append(b)
}

// ErrRejected is returned by SendPending for a report the server refused
// as invalid; the report is dropped, not retried.
var ErrRejected = errors.New("report rejected by the server")

// sendOne sends one spooled report. A permanent refusal (400, 413, 415)
// drops it and returns ErrRejected; another failure keeps it.
func (a *Agent) sendOne(ctx context.Context, rec []byte) error {
	var body bytes.Buffer
	zw := gzip.NewWriter(&body)
	ct := wire.ContentTypeJSON
	if a.cfg.Format == string(wire.FormatXML) {
		ct = wire.ContentTypeXML
		var r wire.Report
		if err := json.Unmarshal(rec, &r); err != nil {
			return fmt.Errorf("%w: unreadable spool record: %v", ErrRejected, err)
		}
		if err := wire.EncodeReportFormat(zw, wire.FormatXML, &r); err != nil {
			return fmt.Errorf("%w: %v", ErrRejected, err)
		}
	} else if _, err := zw.Write(rec); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if a.cfg.Transport == "mqtt" {
		// MQTT has no answer but the broker's acknowledgement: once the
		// broker holds the report, it is delivered.
		if err := a.mqttPublish(ctx, "report", body.Bytes()); err != nil {
			return fmt.Errorf("cannot send report: %w", err)
		}
		a.contact()
		return nil
	}
	resp, err := a.client.Do(ctx, "POST", a.server+protocol.PathReport,
		map[string]string{"Content-Type": ct, "Content-Encoding": "gzip"}, body.Bytes())
	if err != nil {
		return fmt.Errorf("cannot send report: %w", err)
	}
	data := resp.Body
	switch {
	case resp.Status == 200:
		a.contact()
		var wr wire.Response
		if json.Unmarshal(data, &wr) == nil && wr.RejectedCount > 0 {
			a.log.Warn("server rejected parts of a report", "rejected", wr.RejectedCount, "first", firstRejection(wr))
		}
		return nil
	case resp.Status == 400 || resp.Status == 413 || resp.Status == 415:
		a.contact()
		return fmt.Errorf("%w: %w", ErrRejected, &StatusError{Status: resp.Status, Body: data})
	}
	return &StatusError{Status: resp.Status, Body: data}
}

func firstRejection(r wire.Response) string {
	if len(r.Rejected) == 0 {
		return ""
	}
	return r.Rejected[0].Field + ": " + r.Rejected[0].Error
}

// SendPending sends spooled reports, oldest first, pausing
// BackfillInterval between two, until the spool is empty or a send fails.
// It reports the spool's drop count first, when there is one.
func (a *Agent) SendPending(ctx context.Context) (int, error) {
	if n := a.spool.Dropped(); n > 0 {
		r := &wire.Report{Version: wire.Version, DeviceID: a.id.DeviceID, Time: a.now().UTC(), Agent: wire.Agent{Version: Version},
			Events: []wire.SecurityEvent{{ID: newEventID(), Time: a.now().UTC(), Kind: collect.KindSystem, Category: "host",
				Action: "agent_spool_dropped", Outcome: "failure", Severity: "medium",
				Fields: wire.Fields{"agent.spool.dropped_reports": strconv.FormatUint(n, 10)}}}}
		b, _ := json.Marshal(r)
		if err := a.sendOne(ctx, b); err != nil && !errors.Is(err, ErrRejected) {
			return 0, err
		}
		a.log.Warn("reported reports dropped from the full spool", "dropped", n)
		if err := a.spool.ResetDropped(n); err != nil {
			return 0, err
		}
	}
	sent := 0
	for {
		rec, err := a.spool.Peek()
		if errors.Is(err, spool.ErrEmpty) {
			return sent, nil
		}
		if err != nil {
			return sent, err
		}
		if sent > 0 {
			if err := sleep(ctx, time.Duration(a.cfg.BackfillInterval)); err != nil {
				return sent, err
			}
		}
		err = a.sendOne(ctx, rec)
		if err != nil && !errors.Is(err, ErrRejected) {
			return sent, err
		}
		if err != nil {
			a.log.Error("report dropped", "err", err)
		}
		if err := a.spool.Ack(); err != nil {
			a.log.Warn("cannot acknowledge spooled report", "err", err)
		}
		sent++
	}
}

// Once collects everything, spools it and sends every spooled report.
func (a *Agent) Once(ctx context.Context) error {
	for _, c := range a.events {
		if p, ok := c.(*collect.Processes); ok {
			p.Connector = false // one collection reports no process start either way
		}
	}
	r := a.Collect(ctx, append(append([]collect.Collector{}, a.periodic...), a.events...))
	if err := a.Enqueue(r); err != nil {
		return err
	}
	_, err := a.SendPending(ctx)
	return err
}

// Run reports until ctx ends: a full report every Interval, the event
// collectors every EventInterval (their events sent at once), the sender
// with jittered exponential backoff, renewal, and the command poller when
// enabled.
func (a *Agent) Run(ctx context.Context) error {
	a.log.Info("agent started", "server", a.server, "interval", time.Duration(a.cfg.Interval), "format", a.cfg.Format, "spooled", a.spool.Len())
	// Baselines for the event collectors, then a first full report.
	_ = a.Collect(ctx, a.events)
	for _, c := range a.events {
		if p, ok := c.(*collect.Processes); ok {
			a.log.Info("process events", "source", p.Source())
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.sender(ctx) }()
	go func() { defer wg.Done(); a.maintenance(ctx) }()
	if a.verifier != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.commands(ctx) }()
	}
	full := time.NewTicker(time.Duration(a.cfg.Interval))
	fast := time.NewTicker(time.Duration(a.cfg.EventInterval))
	defer full.Stop()
	defer fast.Stop()
	a.collectAndQueue(ctx, a.periodic, false)
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-full.C:
			a.collectAndQueue(ctx, a.periodic, false)
		case <-a.inventoryNow:
			a.lastInvAt = time.Time{} // send the inventory even when unchanged
			a.collectAndQueue(ctx, a.periodic, false)
		case <-fast.C:
			if !a.collectAndQueue(ctx, a.events, true) {
				a.idle() // nothing to send: the sender will not call it
			}
		}
	}
}

// InventoryEvery is how often an unchanged inventory is sent again.
const InventoryEvery = time.Hour

// collectAndQueue runs collectors and spools their report; it tells
// whether the sender was woken to send it.
func (a *Agent) collectAndQueue(ctx context.Context, cs []collect.Collector, eventsOnly bool) bool {
	r := a.Collect(ctx, cs)
	if eventsOnly && len(r.Events) == 0 {
		return false
	}
	if r.Inventory != nil {
		// The inventory (hundreds of packages) goes out when it changed,
		// and hourly; other reports leave it out.
		b, _ := json.Marshal(r.Inventory)
		sum := sha256.Sum256(b)
		if sum == a.lastInv && a.now().Sub(a.lastInvAt) < InventoryEvery {
			r.Inventory = nil
		} else {
			a.lastInv, a.lastInvAt = sum, a.now()
		}
	}
	if err := a.Enqueue(r); err != nil {
		a.log.Error("cannot spool report", "err", err)
		return false
	}
	select {
	case a.flush <- struct{}{}:
	default:
	}
	return true
}

// Backoff returns the wait before retry n (from 0): base·2ⁿ capped at
// max, times a random factor in [0.5, 1.5).
func Backoff(n int, base, max time.Duration) time.Duration {
	d := float64(base) * math.Pow(2, float64(min(n, 30)))
	d = min(d, float64(max))
	return time.Duration(d * (0.5 + mrand.Float64()))
}

func (a *Agent) sender(ctx context.Context) {
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.flush:
		}
		for {
			n, err := a.SendPending(ctx)
			if ctx.Err() != nil {
				return
			}
			a.idle()
			if err == nil {
				if failures > 0 {
					a.log.Info("server reachable again", "sent", n)
				}
				failures = 0
				break
			}
			wait := Backoff(failures, time.Second, time.Duration(a.cfg.MaxBackoff))
			failures++
			a.log.Warn("cannot send reports; retrying", "err", err, "in", wait.Round(time.Millisecond), "spooled", a.spool.Len())
			if sleep(ctx, wait) != nil {
				return
			}
		}
	}
}

// maintenance renews the certificate and undoes an unconfirmed isolation.
func (a *Agent) maintenance(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	lastRenewTry := time.Time{}
	for {
		now := a.now()
		if a.id.NeedsRenewal(now) && now.Sub(lastRenewTry) > time.Hour {
			lastRenewTry = now
			before := a.id.UpdateKey()
			if err := a.id.Renew(ctx, a.client, a.server); err != nil {
				a.log.Warn("certificate renewal failed", "err", err)
			} else {
				a.log.Info("certificate renewed", "not_after", a.id.Certificate().Leaf.NotAfter)
			}
			if k := a.id.UpdateKey(); !k.Equal(before) {
				a.log.Warn("the server handed a new update key", "update_key", base64.StdEncoding.EncodeToString(k))
			}
		}
		a.checkIsolation(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *Agent) contact() {
	a.mu.Lock()
	a.lastContact = a.now()
	a.mu.Unlock()
}

// checkIsolation restores the network when the device was isolated and
// no exchange with the server succeeded within IsolateTimeout since.
func (a *Agent) checkIsolation(ctx context.Context) {
	a.mu.Lock()
	iso, last := a.isolatedAt, a.lastContact
	a.mu.Unlock()
	if iso.IsZero() || last.After(iso) || a.now().Sub(iso) < time.Duration(a.cfg.IsolateTimeout) {
		return
	}
	a.log.Error("isolation not confirmed by the server in time: restoring the network", "isolated_at", iso)
	if _, err := a.exec.Execute(ctx, command.Command{Action: command.ActionRestore}); err != nil {
		a.log.Error("cannot restore network", "err", err)
		return
	}
	a.mu.Lock()
	a.isolatedAt = time.Time{}
	a.mu.Unlock()
	r := a.Collect(ctx, nil)
	r.Events = append(r.Events, wire.SecurityEvent{ID: newEventID(), Time: a.now().UTC(), Kind: collect.KindSystem,
		Category: "host", Action: "isolation_auto_restored", Outcome: "success", Severity: "high"})
	_ = a.Enqueue(r)
}

// commands long-polls the server (or listens on MQTT) for commands and
// runs them.
func (a *Agent) commands(ctx context.Context) {
	failures := 0
	poll := a.PollCommands
	if a.cfg.Transport == "mqtt" {
		poll = a.mqttCommands
	}
	for ctx.Err() == nil {
		if err := poll(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := Backoff(failures, time.Second, time.Duration(a.cfg.MaxBackoff))
			failures++
			a.log.Warn("command poll failed", "err", err, "retry_in", wait.Round(time.Millisecond))
			_ = sleep(ctx, wait)
			continue
		}
		failures = 0
	}
}

// PollCommands waits up to PollWait for commands, then verifies, runs and
// answers each.
func (a *Agent) PollCommands(ctx context.Context) error {
	u := a.server + protocol.PathCommands + "?wait=" + url.QueryEscape(time.Duration(a.cfg.PollWait).String())
	resp, err := a.poller.Do(ctx, "GET", u, nil, nil)
	if err != nil {
		return fmt.Errorf("cannot poll commands: %w", err)
	}
	data := resp.Body
	switch resp.Status {
	case 204:
		a.contact()
		return nil
	case 200:
		a.contact()
	default:
		return &StatusError{Status: resp.Status, Body: data}
	}
	var p command.Poll
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("cannot decode commands: %w", err)
	}
	for _, s := range p.Commands {
		res := a.Handle(ctx, s)
		if err := postJSON(ctx, a.client, a.server+protocol.PathResults, res, &struct{}{}); err != nil {
			a.log.Warn("cannot send command result", "command_id", res.CommandID, "err", err)
		}
	}
	return nil
}

// Handle verifies and executes one signed command and returns its result
// (a refusal when verification fails).
func (a *Agent) Handle(ctx context.Context, s command.Signed) command.Result {
	start := a.now().UTC()
	c, err := a.verifier.Verify(s)
	res := command.Result{CommandID: c.ID, DeviceID: a.id.DeviceID, Action: c.Action, Started: start}
	var ref *command.Refusal
	if errors.As(err, &ref) {
		res.Status, res.Reason, res.Error, res.Finished = command.StatusRefused, ref.Reason, ref.Error(), a.now().UTC()
		a.log.Warn("command refused", "command_id", c.ID, "action", c.Action, "reason", ref.Reason, "detail", ref.Detail)
		return res
	}
	if c.Action == command.ActionIsolate || c.Action == command.ActionBlock {
		// Isolation keeps the server reachable; a block never cuts it off.
		if sys, ok := a.exec.(*command.System); ok {
			sys.ServerAddrs = a.serverAddrs(ctx)
		}
	}
	a.log.Info("running command", "command_id", c.ID, "action", c.Action)
	out, err := a.exec.Execute(ctx, c)
	res.Output, res.Finished = truncateOutput(out), a.now().UTC()
	if err != nil {
		res.Status, res.Error = command.StatusFailed, err.Error()
		a.log.Warn("command failed", "command_id", c.ID, "action", c.Action, "err", err)
		a.afterUpdate(c.Action)
		return res
	}
	res.Status = command.StatusSucceeded
	a.afterUpdate(c.Action)
	a.mu.Lock()
	switch c.Action {
	case command.ActionIsolate:
		a.isolatedAt = a.now()
	case command.ActionRestore:
		a.isolatedAt = time.Time{}
	}
	a.mu.Unlock()
	return res
}

// afterUpdate asks for a full report (with the inventory) after an update
// or a rollback, whatever its outcome: the software list may have changed.
func (a *Agent) afterUpdate(action string) {
	if action != command.ActionUpdate && action != command.ActionRollback {
		return
	}
	select {
	case a.inventoryNow <- struct{}{}:
	default:
	}
}

// serverAddrs resolves the server's host, for the isolation allow list.
func (a *Agent) serverAddrs(ctx context.Context) []netip.Addr {
	u, err := url.Parse(a.server)
	if err != nil {
		return nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		a.log.Warn("cannot resolve the server for isolation", "host", host, "err", err)
	}
	return ips
}

func (a *Agent) fetch(ctx context.Context, path string) (io.ReadCloser, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("artifact url %q must be a path on the Vigil server", path)
	}
	resp, err := a.client.Do(ctx, "GET", a.server+path, nil, nil)
	if err != nil {
		return nil, err
	}
	if resp.Status != 200 {
		return nil, &StatusError{Status: resp.Status, Body: resp.Body}
	}
	return io.NopCloser(bytes.NewReader(resp.Body)), nil
}

func truncateOutput(s string) string {
	if len(s) > 16<<10 {
		return s[:16<<10] + "\n[truncated]"
	}
	return s
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Hostname returns the machine's host name, for enrollment.
func Hostname() string {
	h, _ := os.Hostname()
	return h
}

// mqttClient returns the connected MQTT client, dialling when needed.
func (a *Agent) mqttClient(ctx context.Context) (*mqtt.Client, error) {
	a.mqttMu.Lock()
	defer a.mqttMu.Unlock()
	if a.mq != nil {
		select {
		case <-a.mq.Done():
			a.mq = nil
		default:
			return a.mq, nil
		}
	}
	c, err := mqtt.Dial(ctx, mqtt.Options{Addr: a.cfg.MQTTBroker, TLS: a.id.TLSConfig(), ClientID: a.id.DeviceID})
	if err != nil {
		return nil, err
	}
	a.mq = c
	return c, nil
}

// MQTTTopic returns the topic of a device's channel: report, cmd or result.
func MQTTTopic(deviceID, channel string) string { return "vigil/" + deviceID + "/" + channel }

func (a *Agent) mqttPublish(ctx context.Context, channel string, payload []byte) error {
	c, err := a.mqttClient(ctx)
	if err != nil {
		return err
	}
	return c.Publish(ctx, MQTTTopic(a.id.DeviceID, channel), payload, true)
}

// mqttCommands subscribes to the device's command topic and handles
// commands until the connection ends; results go to its result topic.
func (a *Agent) mqttCommands(ctx context.Context) error {
	c, err := a.mqttClient(ctx)
	if err != nil {
		return err
	}
	if err := c.Subscribe(ctx, MQTTTopic(a.id.DeviceID, "cmd")); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.Done():
			return c.Err()
		case m := <-c.Messages():
			a.contact()
			var s command.Signed
			if err := json.Unmarshal(m.Payload, &s); err != nil {
				a.log.Warn("unreadable command message", "topic", m.Topic, "err", err)
				s = command.Signed{}
			}
			res := a.Handle(ctx, s)
			b, _ := json.Marshal(res)
			if err := c.Publish(ctx, MQTTTopic(a.id.DeviceID, "result"), b, true); err != nil {
				a.log.Warn("cannot send command result", "command_id", res.CommandID, "err", err)
			}
		}
	}
}
