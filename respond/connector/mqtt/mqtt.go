package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/respond"
)

// The dynamic-security control topics.
const (
	ControlTopic  = "$CONTROL/dynamic-security/v1"
	ResponseTopic = "$CONTROL/dynamic-security/v1/response"
)

// Modes.
const (
	ModeDisable = "disable"
	ModeRole    = "role"
)

// Options configures the connector.
type Options struct {
	// Broker is the broker URL (tcp://127.0.0.1:1883, ssl://...).
	Broker string
	// Username and Password are a dynsec account allowed on $CONTROL/dynamic-security/#.
	Username string
	Password string
	// ClientID of the connector's own connection (default "vigil-respond").
	ClientID string
	// Mode is ModeDisable (default) or ModeRole.
	Mode string
	// QuarantineRole prefixes the per-client role names in ModeRole
	// (default "vigil-quarantine": role "vigil-quarantine-<username>").
	QuarantineRole string
	// StatusTopic is the topic a quarantined client may still publish to in
	// ModeRole; "%u" is replaced by its username (default "vigil/quarantine/%u/status").
	StatusTopic string
	Logger      *slog.Logger
}

// Connector quarantines broker clients. Actions: quarantine_client and
// release_client, with the param username (or client_id, taken as the
// dynsec username: dynsec identifies clients by username).
type Connector struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	client  paho.Client
	waiters map[string]chan response
}

var _ respond.Connector = (*Connector)(nil)

type command struct {
	Command         string `json:"command"`
	Username        string `json:"username,omitempty"`
	Rolename        string `json:"rolename,omitempty"`
	Priority        *int   `json:"priority,omitempty"`
	ACLs            []acl  `json:"acls,omitempty"`
	CorrelationData string `json:"correlationData,omitempty"`
}

type acl struct {
	ACLType  string `json:"acltype"`
	Topic    string `json:"topic"`
	Priority int    `json:"priority"`
	Allow    bool   `json:"allow"`
}

type response struct {
	Command         string `json:"command"`
	Error           string `json:"error,omitempty"`
	CorrelationData string `json:"correlationData,omitempty"`
}

// New checks the options. It connects on first use.
func New(opts Options) (*Connector, error) {
	if opts.Broker == "" || opts.Username == "" {
		return nil, vigil.Errorf(vigil.EINVALID, "mqtt connector needs a broker URL and a dynsec username")
	}
	if opts.ClientID == "" {
		opts.ClientID = "vigil-respond"
	}
	switch opts.Mode {
	case "":
		opts.Mode = ModeDisable
	case ModeDisable, ModeRole:
	default:
		return nil, vigil.Errorf(vigil.EINVALID, "mqtt connector mode %q: want disable or role", opts.Mode)
	}
	if opts.QuarantineRole == "" {
		opts.QuarantineRole = "vigil-quarantine"
	}
	if opts.StatusTopic == "" {
		opts.StatusTopic = "vigil/quarantine/%u/status"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Connector{opts: opts, log: opts.Logger.With("component", "respond.mqtt"), waiters: map[string]chan response{}}, nil
}

// Name returns "mqtt".
func (c *Connector) Name() string { return "mqtt" }

// Close disconnects from the broker.
func (c *Connector) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		c.client.Disconnect(250)
		c.client = nil
	}
}

// Execute quarantines or releases the client named by the action.
func (c *Connector) Execute(ctx context.Context, a vigil.Action) (respond.Result, error) {
	user := a.Params["username"]
	if user == "" {
		user = a.Params["client_id"]
	}
	if user == "" {
		return respond.Result{}, vigil.Errorf(vigil.EINVALID, "action %s: %s needs a username or client_id param", a.ID, a.Type)
	}
	var cmds []command
	switch a.Type {
	case "quarantine_client":
		if c.opts.Mode == ModeDisable {
			cmds = []command{{Command: "disableClient", Username: user}}
		} else {
			role := c.role(user)
			if err := c.ensureRole(ctx, role, user); err != nil {
				return respond.Result{}, err
			}
			prio := 1_000_000
			cmds = []command{{Command: "addClientRole", Username: user, Rolename: role, Priority: &prio}}
		}
	case "release_client":
		if c.opts.Mode == ModeDisable {
			cmds = []command{{Command: "enableClient", Username: user}}
		} else {
			cmds = []command{{Command: "removeClientRole", Username: user, Rolename: c.role(user)}}
		}
	default:
		return respond.Result{}, vigil.Errorf(vigil.EINVALID, "mqtt connector cannot carry out %q", a.Type)
	}
	rs, err := c.do(ctx, cmds)
	if err != nil {
		return respond.Result{}, err
	}
	ack := time.Now()
	for _, r := range rs {
		if r.Error != "" {
			return respond.Result{Acknowledged: ack, Output: r.Error}, fmt.Errorf("broker refused %s for %s: %s", r.Command, user, r.Error)
		}
	}
	return respond.Result{Acknowledged: ack, Output: fmt.Sprintf("%s %s on %s (%s)", cmds[0].Command, user, c.opts.Broker, c.opts.Mode)}, nil
}

// role is the quarantine role of one client: each has its own, whose ACL
// names its status topic literally (Mosquitto 2.0's dynsec does not
// substitute %u in role ACLs).
func (c *Connector) role(user string) string { return c.opts.QuarantineRole + "-" + user }

// ensureRole creates a client's quarantine role; "already exists" is fine.
func (c *Connector) ensureRole(ctx context.Context, role, user string) error {
	status := strings.ReplaceAll(c.opts.StatusTopic, "%u", user)
	rs, err := c.do(ctx, []command{{Command: "createRole", Rolename: role, ACLs: []acl{
		{ACLType: "publishClientSend", Topic: status, Priority: 10, Allow: true},
		{ACLType: "publishClientSend", Topic: "#", Priority: 0, Allow: false},
		{ACLType: "publishClientReceive", Topic: "#", Priority: 0, Allow: false},
		{ACLType: "subscribePattern", Topic: "#", Priority: 0, Allow: false},
	}}})
	if err != nil {
		return err
	}
	if e := rs[0].Error; e != "" && !strings.Contains(strings.ToLower(e), "already exists") {
		return fmt.Errorf("cannot create quarantine role %s: %s", role, e)
	}
	return nil
}

// do sends commands and waits for the broker's responses, matched by
// correlation data.
func (c *Connector) do(ctx context.Context, cmds []command) ([]response, error) {
	cl, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	chans := make([]chan response, len(cmds))
	c.mu.Lock()
	for i := range cmds {
		cmds[i].CorrelationData = vigil.NewID()
		chans[i] = make(chan response, 1)
		c.waiters[cmds[i].CorrelationData] = chans[i]
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		for _, cmd := range cmds {
			delete(c.waiters, cmd.CorrelationData)
		}
		c.mu.Unlock()
	}()
	body, _ := json.Marshal(map[string]any{"commands": cmds})
	t := cl.Publish(ControlTopic, 1, false, body)
	if err := wait(ctx, t); err != nil {
		return nil, fmt.Errorf("cannot publish dynsec command: %w", err)
	}
	out := make([]response, len(cmds))
	for i, ch := range chans {
		select {
		case out[i] = <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("no dynsec response for %s: %w", cmds[i].Command, ctx.Err())
		}
	}
	return out, nil
}

func (c *Connector) connect(ctx context.Context) (paho.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil && c.client.IsConnectionOpen() {
		return c.client, nil
	}
	o := paho.NewClientOptions().AddBroker(c.opts.Broker).SetClientID(c.opts.ClientID).
		SetUsername(c.opts.Username).SetPassword(c.opts.Password).SetCleanSession(true).
		SetAutoReconnect(true).SetConnectTimeout(10 * time.Second).SetOrderMatters(false)
	o.SetOnConnectHandler(func(cl paho.Client) {
		cl.Subscribe(ResponseTopic, 1, c.onResponse) // resubscribe after a reconnect
	})
	cl := paho.NewClient(o)
	if err := wait(ctx, cl.Connect()); err != nil {
		return nil, fmt.Errorf("cannot connect to broker %s: %w", c.opts.Broker, err)
	}
	if err := wait(ctx, cl.Subscribe(ResponseTopic, 1, c.onResponse)); err != nil {
		cl.Disconnect(0)
		return nil, fmt.Errorf("cannot subscribe to %s: %w", ResponseTopic, err)
	}
	c.client = cl
	return cl, nil
}

func (c *Connector) onResponse(_ paho.Client, m paho.Message) {
	var body struct {
		Responses []response `json:"responses"`
	}
	if err := json.Unmarshal(m.Payload(), &body); err != nil {
		c.log.Warn("bad dynsec response", "err", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range body.Responses {
		if ch, ok := c.waiters[r.CorrelationData]; ok {
			ch <- r
			delete(c.waiters, r.CorrelationData)
		}
	}
}

func wait(ctx context.Context, t paho.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
