package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/respond"
)

// CommandSender queues a signed command for a device's agent and returns
// the command's id, which its result will carry. enroll.Handler.Send is
// one, behind an adapter:
//
//	func (s sender) Send(_ context.Context, dev, action string, p map[string]string) (string, error) {
//		c, err := s.h.Send(dev, action, p, 0)
//		return c.ID, err
//	}
//
// Send must not call HandleResult itself (the connector holds its lock
// across Send, so that a result arriving at once finds its waiter).
//
// The ctx Send receives names the action it carries out (ActionID).
type CommandSender interface {
	Send(ctx context.Context, deviceID, action string, params map[string]string) (commandID string, err error)
}

type actionKey struct{}

// ActionID returns the id of the action a CommandSender's Send is called
// for, from its ctx ("" when none): the sender may keep it with the
// command, so that the device's command history links the two.
func ActionID(ctx context.Context) string {
	id, _ := ctx.Value(actionKey{}).(string)
	return id
}

// Ack is an agent's report on one command (agent/command.Result).
type Ack struct {
	CommandID string
	// Status is succeeded, failed or refused.
	Status string
	// Reason is the refusal reason (not_allowed, replayed, ...).
	Reason   string
	Output   string
	Error    string
	Finished time.Time
}

// Actions the agent connector carries out.
var Actions = []string{"isolate", "restore", "kill_process", "stop_service", "restart_service",
	"update", "set_param", "reboot", "block", "unblock", "shutdown"}

// DefaultBlockTimeout and MaxBlockTimeout bound a block's expiry.
const (
	DefaultBlockTimeout = time.Hour
	MaxBlockTimeout     = 24 * time.Hour
)

// Connector sends actions to agents and waits for their results.
type Connector struct {
	sender CommandSender

	mu      sync.Mutex
	waiters map[string]chan Ack
	early   map[string]Ack // results that came before Send returned
}

var _ respond.Connector = (*Connector)(nil)

// New returns a connector on s.
func New(s CommandSender) *Connector {
	return &Connector{sender: s, waiters: map[string]chan Ack{}, early: map[string]Ack{}}
}

// Name returns "agent".
func (c *Connector) Name() string { return "agent" }

// HandleResult delivers an agent's result to the Execute waiting for it.
// Wire it to enroll.Options.OnResult. Results nobody waits for are kept
// briefly (they may arrive before Send returned), then dropped.
func (c *Connector) HandleResult(a Ack) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.waiters[a.CommandID]; ok {
		ch <- a
		delete(c.waiters, a.CommandID)
		return
	}
	if len(c.early) > 1000 {
		clear(c.early)
	}
	c.early[a.CommandID] = a
}

// Command returns the device, agent action and params a Vigil action
// becomes. block and unblock go to the gateway named by the "gateway"
// param (default: the action's device) with "addr" (an address or prefix)
// and, for block, "timeout" (a Go duration, default 1h, at most 24h, sent
// as whole seconds in "timeout_s").
func Command(a vigil.Action) (device, action string, params map[string]string, err error) {
	if !slices.Contains(Actions, a.Type) {
		return "", "", nil, vigil.Errorf(vigil.EINVALID, "the agent connector cannot carry out %q", a.Type)
	}
	device, params = a.DeviceID, map[string]string{}
	for k, v := range a.Params {
		params[k] = v
	}
	if a.Type == "block" || a.Type == "unblock" {
		if g := params["gateway"]; g != "" {
			device = g
		}
		delete(params, "gateway")
		addr := params["addr"]
		if _, err := netip.ParsePrefix(addr); err != nil {
			if _, err := netip.ParseAddr(addr); err != nil {
				return "", "", nil, vigil.Errorf(vigil.EINVALID, "action %s: addr %q is not an IP address or prefix", a.ID, addr)
			}
		}
		if a.Type == "block" {
			d := DefaultBlockTimeout
			if s := params["timeout"]; s != "" {
				if d, err = time.ParseDuration(s); err != nil || d <= 0 || d > MaxBlockTimeout {
					return "", "", nil, vigil.Errorf(vigil.EINVALID, "action %s: block timeout %q is not a duration in (0, %s]", a.ID, s, MaxBlockTimeout)
				}
			}
			delete(params, "timeout")
			params["timeout_s"] = strconv.Itoa(int(d.Seconds()))
		}
	}
	if device == "" {
		return "", "", nil, vigil.Errorf(vigil.EINVALID, "action %s: no device to send %s to", a.ID, a.Type)
	}
	return device, a.Type, params, nil
}

// Execute sends the command and waits for the agent's result (or ctx).
// The agent's succeeded result acknowledges and completes the action;
// failed and refused results acknowledge it and fail it.
func (c *Connector) Execute(ctx context.Context, a vigil.Action) (respond.Result, error) {
	dev, action, params, err := Command(a)
	if err != nil {
		return respond.Result{}, err
	}
	ch := make(chan Ack, 1)
	c.mu.Lock() // held across Send so that a fast result finds its waiter or the early map
	id, err := c.sender.Send(context.WithValue(ctx, actionKey{}, a.ID), dev, action, params)
	if err != nil {
		c.mu.Unlock()
		return respond.Result{}, fmt.Errorf("cannot send %s to device %s: %w", action, dev, err)
	}
	if ack, ok := c.early[id]; ok {
		delete(c.early, id)
		ch <- ack
	} else {
		c.waiters[id] = ch
	}
	c.mu.Unlock()
	select {
	case ack := <-ch:
		return result(ack)
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.waiters, id)
		c.mu.Unlock()
		return respond.Result{}, fmt.Errorf("no result from device %s for command %s: %w", dev, id, ctx.Err())
	}
}

func result(a Ack) (respond.Result, error) {
	at := a.Finished
	if at.IsZero() {
		at = time.Now()
	}
	res := respond.Result{Acknowledged: at, Output: a.Output}
	switch a.Status {
	case "succeeded":
		return res, nil
	case "refused":
		res.Output = "refused: " + a.Reason
		return res, fmt.Errorf("the agent refused command %s: %s %s", a.CommandID, a.Reason, a.Error)
	default:
		if res.Output == "" {
			res.Output = a.Error
		}
		return res, fmt.Errorf("the agent failed command %s: %s", a.CommandID, a.Error)
	}
}
