package email

import (
	"context"
	"fmt"
	"net/smtp"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/respond"
	"github.com/vigil-iot/vigil/respond/connector/webhook"
)

// Options configures the SMTP connector.
type Options struct {
	// Addr is the SMTP server, host:port.
	Addr string
	From string
	// To are the default recipients; an action's "to" param (comma
	// separated) replaces them.
	To []string
	// Username and Password enable PLAIN auth (net/smtp sends them only
	// over TLS or to localhost).
	Username string
	Password string
	// Name defaults to "email".
	Name string
}

// Connector mails notify actions.
type Connector struct{ opts Options }

var _ respond.Connector = (*Connector)(nil)

// New checks the options.
func New(opts Options) (*Connector, error) {
	if opts.Addr == "" || opts.From == "" {
		return nil, vigil.Errorf(vigil.EINVALID, "email connector needs an SMTP address and a From address")
	}
	if opts.Name == "" {
		opts.Name = "email"
	}
	return &Connector{opts: opts}, nil
}

// Name returns the configured name.
func (c *Connector) Name() string { return c.opts.Name }

// Execute sends the mail: subject from the "subject" param (default
// "Vigil: <type> <device>"), body from "text" and the action's ids. The
// server accepting the message acknowledges it. The ctx deadline is not
// honoured inside net/smtp beyond its own dial.
func (c *Connector) Execute(ctx context.Context, a vigil.Action) (respond.Result, error) {
	to := c.opts.To
	if p := a.Params["to"]; p != "" {
		to = strings.Split(p, ",")
		for i := range to {
			to[i] = strings.TrimSpace(to[i])
		}
	}
	if len(to) == 0 {
		return respond.Result{}, vigil.Errorf(vigil.EINVALID, "action %s: no recipient (set To or a to param)", a.ID)
	}
	subject := a.Params["subject"]
	if subject == "" {
		subject = strings.TrimSpace("Vigil: " + a.Type + " " + a.DeviceID)
	}
	var b strings.Builder
	hdr := func(k, v string) {
		b.WriteString(k + ": " + strings.NewReplacer("\r", " ", "\n", " ").Replace(v) + "\r\n")
	}
	hdr("From", c.opts.From)
	hdr("To", strings.Join(to, ", "))
	hdr("Subject", subject)
	hdr("Date", time.Now().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+a.ID+"@vigil>")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	b.WriteString("\r\n")
	body := webhook.Text(a) + "\n\naction: " + a.ID + "\ntype: " + a.Type + "\ndevice: " + a.DeviceID +
		"\nincident: " + a.IncidentID + "\nalert: " + a.AlertID + "\nplaybook: " + a.Playbook + "\n"
	for _, line := range strings.Split(body, "\n") {
		b.WriteString(line + "\r\n") // net/smtp dot-stuffs
	}
	var auth smtp.Auth
	if c.opts.Username != "" {
		host, _, _ := strings.Cut(c.opts.Addr, ":")
		auth = smtp.PlainAuth("", c.opts.Username, c.opts.Password, host)
	}
	if err := ctx.Err(); err != nil {
		return respond.Result{}, err
	}
	if err := smtp.SendMail(c.opts.Addr, auth, c.opts.From, to, []byte(b.String())); err != nil {
		return respond.Result{}, fmt.Errorf("cannot send mail to %s: %w", strings.Join(to, ", "), err)
	}
	return respond.Result{Acknowledged: time.Now(), Output: "mailed " + strings.Join(to, ", ")}, nil
}
