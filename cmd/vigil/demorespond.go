package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/internal/localagent"
	"github.com/vigil-iot/vigil/node"
	"github.com/vigil-iot/vigil/sim"
	"github.com/vigil-iot/vigil/store"
)

// startDemoAgent makes the attacked camera a real enrolled agent: it
// enrolls over HTTPS with a one-time token, long-polls the signed command
// channel with its client certificate, verifies each command and its local
// policy (isolate and restore allowed), and answers; its executor records
// the command instead of touching the firewall of the machine the demo
// runs on. The simulated device takes the enrolled device id. On failure
// the demo goes on without containment.
func (d *demoRun) startDemoAgent(ctx context.Context, a *node.Node, target *sim.Device, dir string, log *slog.Logger) *localagent.Agent {
	host := strings.TrimPrefix(target.ID, target.Profile.Class+"-")
	ag, err := localagent.Start(ctx, a, a.CAFile(), target.Profile.Class, host, dir, []string{"isolate", "restore"}, log)
	if err != nil {
		fmt.Fprintf(d.out, "(automatic containment off: %v)\n", err)
		return nil
	}
	ag.Exec.OnExecute(func(c command.Command) {
		// From here on the bot's steps are blocked. What the server
		// detected and decided is printed first: the cause before its
		// effect.
		d.stepMu.Lock()
		defer d.stepMu.Unlock()
		if c.Action == "isolate" {
			d.isolated = true
		}
		d.printNew(ctx, d.admin)
		d.printf("AGENT    %s: verified the signed %q command and ran it (demo executor: recorded, host firewall untouched)\n", c.DeviceID, c.Action)
	})
	d.mu.Lock()
	target.ID = ag.DeviceID
	d.mu.Unlock()
	return ag
}

// printActions prints response actions as they change state. Callers
// hold d.pollMu.
func (d *demoRun) printActions(ctx context.Context, admin *client.Client) {
	acts, _, err := admin.ListActions(ctx, store.ActionFilter{Page: store.Page{Limit: 100}})
	if err != nil {
		return
	}
	for i := len(acts) - 1; i >= 0; i-- { // oldest first
		x := acts[i]
		if d.actions[x.ID] == x.State {
			continue
		}
		d.actions[x.ID] = x.State
		by, sent := "its agent", "signed command sent to its agent"
		if x.Engine.Connector == "mqtt" {
			by, sent = "the broker", "dynamic-security command sent to the broker"
		}
		switch x.State {
		case vigil.ActionSucceeded:
			d.printf("CONTAINED %s %s by playbook %s: acknowledged by %s (%s)\n", x.Type, x.DeviceID, x.Playbook, by, x.Result)
		case vigil.ActionPendingApproval:
			d.printf("RESPOND  %s %s by playbook %s waits for approval: %s\n", x.Type, x.DeviceID, x.Playbook, x.Engine.Held)
		case vigil.ActionFailed, vigil.ActionTimedOut, vigil.ActionDenied:
			d.printf("RESPOND  %s %s by playbook %s %s: %s\n", x.Type, x.DeviceID, x.Playbook, x.State, x.Result)
		case vigil.ActionSent:
			d.printf("RESPOND  %s %s by playbook %s: %s\n", x.Type, x.DeviceID, x.Playbook, sent)
		}
	}
}

// waitContained waits up to max for the incident of the target to be
// contained, so a slow acknowledgement still shows in the summary; it
// never blocks longer than max.
func (d *demoRun) waitContained(ctx context.Context, admin *client.Client, deviceID string, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		incs, _, err := admin.ListIncidents(ctx, store.IncidentFilter{DeviceID: deviceID, Page: store.Page{Limit: 10}})
		if err == nil {
			for _, in := range incs {
				if !in.Incident.Contained.IsZero() {
					d.printNew(ctx, admin)
					return
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	d.printNew(ctx, admin)
}

// containedSummary is the end of the demo's summary line.
func containedSummary(w io.Writer, hit *vigil.Incident) {
	ttc := time.Duration(0)
	if hit != nil {
		ttc = hit.TimeToContain().Round(time.Millisecond)
	}
	fmt.Fprintf(w, " contained=%s time_to_contain=%s", yesNo(hit != nil && !hit.Contained.IsZero()), ttc)
}
