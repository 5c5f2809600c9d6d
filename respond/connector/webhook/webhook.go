package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/internal/egress"
	"github.com/vigil-iot/vigil/respond"
)

// Formats.
const (
	FormatJSON  = "json"
	FormatSlack = "slack"
)

// Options configures a webhook.
type Options struct {
	// Name is the connector name playbooks use (default "webhook", or
	// "slack" for FormatSlack).
	Name string
	URL  string
	// Format is FormatJSON (default) or FormatSlack.
	Format string
	// Headers are added to every request (e.g. Authorization).
	Headers map[string]string
	// Secret, when set, signs the body: X-Vigil-Signature: sha256=<hex HMAC>.
	Secret string
	// Client defaults to a client of the default outbound policy
	// (egress: public addresses only) with a 10 s timeout.
	Client *http.Client
}

// Connector posts notify actions to a URL.
type Connector struct{ opts Options }

var _ respond.Connector = (*Connector)(nil)

// New checks the options.
func New(opts Options) (*Connector, error) {
	if opts.URL == "" {
		return nil, vigil.Errorf(vigil.EINVALID, "webhook connector needs a URL")
	}
	switch opts.Format {
	case "":
		opts.Format = FormatJSON
	case FormatJSON, FormatSlack:
	default:
		return nil, vigil.Errorf(vigil.EINVALID, "webhook format %q: want json or slack", opts.Format)
	}
	if opts.Name == "" {
		opts.Name = "webhook"
		if opts.Format == FormatSlack {
			opts.Name = "slack"
		}
	}
	if opts.Client == nil {
		opts.Client = (*egress.Policy)(nil).Client(10 * time.Second)
	}
	return &Connector{opts: opts}, nil
}

// Name returns the configured name.
func (c *Connector) Name() string { return c.opts.Name }

// Message is the generic JSON document.
type Message struct {
	Text   string       `json:"text"`
	Action vigil.Action `json:"action"`
}

// Text returns the action's "text" param, or a one-line summary of it.
func Text(a vigil.Action) string {
	if t := a.Params["text"]; t != "" {
		return t
	}
	s := "Vigil: " + a.Type
	if a.DeviceID != "" {
		s += " on device " + a.DeviceID
	}
	if a.Playbook != "" {
		s += " (playbook " + a.Playbook + ")"
	}
	if a.IncidentID != "" {
		s += " incident " + a.IncidentID
	}
	return s
}

// Execute posts the action. A 2xx answer acknowledges it; any other
// status is an error (acknowledged: the endpoint answered).
func (c *Connector) Execute(ctx context.Context, a vigil.Action) (respond.Result, error) {
	var body any = Message{Text: Text(a), Action: a}
	if c.opts.Format == FormatSlack {
		body = map[string]string{"text": Text(a)}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return respond.Result{}, fmt.Errorf("cannot encode webhook body: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.opts.URL, bytes.NewReader(b))
	if err != nil {
		return respond.Result{}, fmt.Errorf("cannot build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", a.ID)
	for k, v := range c.opts.Headers {
		req.Header.Set(k, v)
	}
	if c.opts.Secret != "" {
		m := hmac.New(sha256.New, []byte(c.opts.Secret))
		m.Write(b)
		req.Header.Set("X-Vigil-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
	}
	resp, err := c.opts.Client.Do(req)
	if err != nil {
		return respond.Result{}, fmt.Errorf("cannot post webhook: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	res := respond.Result{Acknowledged: time.Now(), Output: fmt.Sprintf("%s %d", c.opts.Name, resp.StatusCode)}
	if resp.StatusCode/100 != 2 {
		return res, fmt.Errorf("webhook answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return res, nil
}
