package syslog

import (
	"context"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/respond"
	"github.com/vigil-iot/vigil/respond/connector/webhook"
)

// Options configures the forwarder.
type Options struct {
	// Network is "udp" (default) or "tcp".
	Network string
	// Addr is the collector, host:port.
	Addr string
	// Hostname in the syslog header (default os.Hostname()).
	Hostname string
	// Name defaults to "syslog".
	Name string
}

// Connector forwards notify actions as CEF over syslog.
type Connector struct{ opts Options }

var _ respond.Connector = (*Connector)(nil)

// New checks the options.
func New(opts Options) (*Connector, error) {
	if opts.Network == "" {
		opts.Network = "udp"
	}
	if opts.Network != "udp" && opts.Network != "tcp" {
		return nil, vigil.Errorf(vigil.EINVALID, "syslog network %q: want udp or tcp", opts.Network)
	}
	if opts.Addr == "" {
		return nil, vigil.Errorf(vigil.EINVALID, "syslog connector needs a collector address")
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	if opts.Name == "" {
		opts.Name = "syslog"
	}
	return &Connector{opts: opts}, nil
}

// Name returns the configured name.
func (c *Connector) Name() string { return c.opts.Name }

// CEF returns the action as one CEF record. The "severity" param (0-10)
// sets the CEF severity (default 5).
func CEF(a vigil.Action) string {
	sev := a.Params["severity"]
	if sev == "" {
		sev = "5"
	}
	ext := map[string]string{
		"act": a.Type, "dvchost": a.DeviceID, "externalId": a.ID, "msg": webhook.Text(a),
		"cs1Label": "incident", "cs1": a.IncidentID, "cs2Label": "alert", "cs2": a.AlertID,
		"cs3Label": "playbook", "cs3": a.Playbook, "cs4Label": "state", "cs4": string(a.State),
		"rt": fmt.Sprint(time.Now().UnixMilli()),
	}
	keys := make([]string, 0, len(ext))
	for k, v := range ext {
		if v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "CEF:0|Vigil|Vigil|1|%s|%s|%s|", hdrEscape(a.Type), hdrEscape(webhook.Text(a)), hdrEscape(sev))
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k + "=" + extEscape(ext[k]))
	}
	return b.String()
}

func hdrEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `|`, `\|`, "\n", " ", "\r", " ").Replace(s)
}

func extEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `=`, `\=`, "\n", `\n`, "\r", `\r`).Replace(s)
}

// Execute sends one RFC 5424 message (authpriv.notice, app "vigil",
// msgid "action") whose MSG is the CEF record. For TCP the collector
// accepting the write acknowledges it; UDP has no acknowledgement beyond
// the send.
func (c *Connector) Execute(ctx context.Context, a vigil.Action) (respond.Result, error) {
	const pri = 10*8 + 5 // authpriv.notice
	msg := fmt.Sprintf("<%d>1 %s %s vigil - action - %s", pri, time.Now().UTC().Format(time.RFC3339Nano), c.opts.Hostname, CEF(a))
	var d net.Dialer
	conn, err := d.DialContext(ctx, c.opts.Network, c.opts.Addr)
	if err != nil {
		return respond.Result{}, fmt.Errorf("cannot reach syslog collector %s: %w", c.opts.Addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	frame := msg
	if c.opts.Network == "tcp" {
		frame = fmt.Sprintf("%d %s", len(msg), msg)
	}
	if _, err := conn.Write([]byte(frame)); err != nil {
		return respond.Result{}, fmt.Errorf("cannot write to syslog collector %s: %w", c.opts.Addr, err)
	}
	return respond.Result{Acknowledged: time.Now(), Output: "forwarded to " + c.opts.Network + "://" + c.opts.Addr}, nil
}
