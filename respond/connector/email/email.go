package email

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/internal/egress"
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
	// Dial connects to Addr; nil dials through the default outbound
	// policy (egress: public addresses only), so an SMTP server on
	// loopback or a private network must be allowed (outbound.allow).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
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
	if err := c.send(ctx, auth, to, []byte(b.String())); err != nil {
		return respond.Result{}, fmt.Errorf("cannot send mail to %s: %w", strings.Join(to, ", "), err)
	}
	return respond.Result{Acknowledged: time.Now(), Output: "mailed " + strings.Join(to, ", ")}, nil
}

// send is smtp.SendMail with the connection dialed through opts.Dial:
// STARTTLS when the server offers it, AUTH when configured, one message.
func (c *Connector) send(ctx context.Context, auth smtp.Auth, to []string, msg []byte) error {
	host, _, err := net.SplitHostPort(c.opts.Addr)
	if err != nil {
		return fmt.Errorf("cannot read SMTP address %s: %w", c.opts.Addr, err)
	}
	dial := c.opts.Dial
	if dial == nil {
		dial = (*egress.Policy)(nil).DialContext
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := dial(dctx, "tcp", c.opts.Addr)
	if err != nil {
		return fmt.Errorf("cannot dial SMTP server %s: %w", c.opts.Addr, err)
	}
	conn.SetDeadline(deadline)
	cl, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return err
	}
	defer cl.Close()
	if ok, _ := cl.Extension("STARTTLS"); ok {
		if err := cl.StartTLS(&tls.Config{ServerName: host}); err != nil {
			return err
		}
	}
	if auth != nil {
		if ok, _ := cl.Extension("AUTH"); !ok {
			return fmt.Errorf("cannot authenticate: the server offers no AUTH")
		}
		if err := cl.Auth(auth); err != nil {
			return err
		}
	}
	if err := cl.Mail(c.opts.From); err != nil {
		return err
	}
	for _, addr := range to {
		if err := cl.Rcpt(addr); err != nil {
			return err
		}
	}
	w, err := cl.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return cl.Quit()
}
