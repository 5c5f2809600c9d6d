package node

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/alert"
	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/respond"
	agentconn "github.com/vigil-iot/vigil/respond/connector/agent"
	"github.com/vigil-iot/vigil/respond/connector/email"
	"github.com/vigil-iot/vigil/respond/connector/mqtt"
	"github.com/vigil-iot/vigil/respond/connector/revoke"
	"github.com/vigil-iot/vigil/respond/connector/syslog"
	"github.com/vigil-iot/vigil/respond/connector/webhook"
	"github.com/vigil-iot/vigil/respond/playbook"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// builtinPlaybooks are the playbooks shipped in the binary, run when no
// playbooks_dir is configured.
//
//go:embed playbooks/*.yaml
var builtinPlaybooks embed.FS

// ResponseConfig configures the response engine's guards and its optional
// connectors (config key "response"). The agent and revoke connectors are
// always there; the others only when configured.
type ResponseConfig struct {
	// DryRun makes every playbook record what it would do, and do nothing.
	DryRun bool `yaml:"dry_run"`
	// MaxActions automatic actions per Window across all playbooks
	// (default 20 per 10m); more wait for approval.
	MaxActions int      `yaml:"max_actions"`
	Window     Duration `yaml:"window"`
	// AckTimeout is how long a sent action waits for its target (default 2m).
	AckTimeout Duration `yaml:"ack_timeout"`
	// ApprovalTimeout is the deadline of actions held by a guard (default 1h).
	ApprovalTimeout Duration `yaml:"approval_timeout"`

	Webhook *WebhookConfig `yaml:"webhook"`
	Slack   *WebhookConfig `yaml:"slack"`
	Email   *EmailConfig   `yaml:"email"`
	Syslog  *SyslogConfig  `yaml:"syslog"`
	// MQTT is the broker quarantine on Mosquitto's dynamic-security plugin.
	MQTT *MQTTConfig `yaml:"mqtt"`
}

// WebhookConfig is response.webhook: the webhook connector.
type WebhookConfig struct {
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"`
	Secret  string            `yaml:"secret"`
}

// EmailConfig is response.email: the SMTP connector.
type EmailConfig struct {
	Addr     string   `yaml:"addr"`
	From     string   `yaml:"from"`
	To       []string `yaml:"to"`
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
}

// SyslogConfig is response.syslog: the syslog connector.
type SyslogConfig struct {
	Network string `yaml:"network"`
	Addr    string `yaml:"addr"`
}

// MQTTConfig is response.mqtt: the broker quarantine connector.
type MQTTConfig struct {
	// Broker is tcp://host:port or ssl://host:port; Username and Password
	// a dynsec admin account.
	Broker   string `yaml:"broker"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Mode is disable (default) or role.
	Mode string `yaml:"mode"`
}

// responder is the response stage of the app: the engine, its audit
// recorder and the connectors that need wiring.
type responder struct {
	engine *respond.Engine
	audit  *audit.Recorder
	agent  *agentconn.Connector
	mqtt   *mqtt.Connector
	log    *slog.Logger
}

// agentSender sends actions through the app's command channel, which
// exists once the app has started.
type agentSender struct{ a *Node }

func (s agentSender) Send(ctx context.Context, dev, action string, p map[string]string) (string, error) {
	if s.a.enroll == nil {
		return "", errors.New("cannot send a command: the command channel is not running")
	}
	by := ""
	if id := agentconn.ActionID(ctx); id != "" {
		by = "action:" + id
	}
	c, err := s.a.enroll.SendAs(by, dev, action, p, 0)
	return c.ID, err
}

// openRespond builds the audit recorder, the connectors and the engine,
// loads the playbooks and recovers the guards. It runs in Open, before
// the alert stage, whose OnStored hands alerts to the engine.
func (a *Node) openRespond(ctx context.Context) error {
	cfg := a.cfg.Response
	log := a.log.With("component", "respond")
	r := &responder{log: log, audit: audit.NewRecorder(a.store, vigil.SystemClock{}, a.log)}
	if err := auditConfigChange(ctx, a.cfg, r.audit); err != nil {
		return fmt.Errorf("cannot audit the configuration: %w", err)
	}
	r.agent = agentconn.New(agentSender{a})
	conns := []respond.Connector{r.agent, revoke.New(a.enrollFiles.Revocations)}
	out := a.cfg.egress() // webhooks and SMTP reach only what outbound.allow lets them
	if c := cfg.Webhook; c != nil && c.URL != "" {
		w, err := webhook.New(webhook.Options{URL: c.URL, Headers: c.Headers, Secret: c.Secret, Client: out.Client(10 * time.Second)})
		if err != nil {
			return fmt.Errorf("response.webhook: %w", err)
		}
		conns = append(conns, w)
	}
	if c := cfg.Slack; c != nil && c.URL != "" {
		w, err := webhook.New(webhook.Options{URL: c.URL, Format: webhook.FormatSlack, Headers: c.Headers, Secret: c.Secret, Client: out.Client(10 * time.Second)})
		if err != nil {
			return fmt.Errorf("response.slack: %w", err)
		}
		conns = append(conns, w)
	}
	if c := cfg.Email; c != nil && c.Addr != "" {
		m, err := email.New(email.Options{Addr: c.Addr, From: c.From, To: c.To, Username: c.Username, Password: c.Password, Dial: out.DialContext})
		if err != nil {
			return fmt.Errorf("response.email: %w", err)
		}
		conns = append(conns, m)
	}
	if c := cfg.Syslog; c != nil && c.Addr != "" {
		s, err := syslog.New(syslog.Options{Network: c.Network, Addr: c.Addr})
		if err != nil {
			return fmt.Errorf("response.syslog: %w", err)
		}
		conns = append(conns, s)
	}
	if c := cfg.MQTT; c != nil && c.Broker != "" {
		m, err := mqtt.New(mqtt.Options{Broker: c.Broker, Username: c.Username, Password: c.Password, Mode: c.Mode, Logger: a.log})
		if err != nil {
			return fmt.Errorf("response.mqtt: %w", err)
		}
		r.mqtt = m
		conns = append(conns, m)
	}
	guards := playbook.Guards{MaxActions: cfg.MaxActions, Window: time.Duration(cfg.Window)}
	if guards.MaxActions == 0 {
		guards.MaxActions = 20
	}
	if guards.Window == 0 {
		guards.Window = 10 * time.Minute
	}
	eng, err := respond.New(respond.Options{
		Store:           a.store,
		Audit:           r.audit,
		Connectors:      conns,
		Guards:          guards,
		DryRun:          cfg.DryRun,
		AckTimeout:      time.Duration(cfg.AckTimeout),
		ApprovalTimeout: time.Duration(cfg.ApprovalTimeout),
		OnContained:     a.contained,
		Clock:           vigil.SystemClock{},
		Logger:          a.log,
		Registerer:      a.registry,
	})
	if err != nil {
		return err
	}
	r.engine = eng
	a.respond = r

	names := make([]string, len(conns))
	for i, c := range conns {
		names[i] = c.Name()
	}
	pbs, errs := loadPlaybooks(a.cfg.PlaybooksDir, names)
	for _, e := range errs {
		log.Error("playbook rejected", "err", e)
	}
	for _, pb := range pbs {
		if c := missingConnector(pb, names); c != "" {
			log.Warn("playbook needs a connector that is not configured: its actions will fail", "playbook", pb.Name, "file", pb.File, "connector", c)
		}
	}
	if err := eng.SetPlaybooks(ctx, pbs, "vigil"); err != nil {
		return fmt.Errorf("cannot set playbooks: %w", err)
	}
	if err := eng.Recover(ctx); err != nil {
		return fmt.Errorf("cannot recover the response engine: %w", err)
	}
	log.Info("playbooks loaded", "playbooks", len(pbs), "rejected", len(errs), "connectors", strings.Join(names, ","), "dir", cmpOr(a.cfg.PlaybooksDir, "builtin"))
	return nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// loadPlaybooks loads dir, or the built-in playbooks when dir is empty. A
// built-in playbook with a step whose connector is not configured (the
// broker quarantine without response.mqtt) is left out: it could only fail.
func loadPlaybooks(dir string, connectors []string) ([]*playbook.Playbook, []error) {
	if dir != "" {
		return playbook.Load(dir)
	}
	pbs, errs := BuiltinPlaybooks()
	out := pbs[:0]
	for _, pb := range pbs {
		if missing := missingConnector(pb, connectors); missing == "" {
			out = append(out, pb)
		}
	}
	return out, errs
}

// BuiltinPlaybooks parses the playbooks embedded in the binary (node/playbooks),
// which a node runs when playbooks_dir is not set.
func BuiltinPlaybooks() ([]*playbook.Playbook, []error) {
	var pbs []*playbook.Playbook
	var errs []error
	ents, _ := fs.ReadDir(builtinPlaybooks, "playbooks")
	for _, e := range ents {
		p := path.Join("playbooks", e.Name())
		b, err := builtinPlaybooks.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pb, es := playbook.Parse("builtin:"+p, b)
		errs = append(errs, es...)
		if pb != nil && len(es) == 0 {
			pbs = append(pbs, pb)
		}
	}
	return pbs, errs
}

// missingConnector returns the first connector pb's steps need that is not
// in have, or "".
func missingConnector(pb *playbook.Playbook, have []string) string {
	for _, st := range pb.Steps {
		c := st.Connector
		if c == "" {
			c = playbook.Actions[st.Action].Connector
		}
		if c != "" && !slices.Contains(have, c) {
			return c
		}
	}
	return ""
}

// contained marks an incident contained when a containment action was
// acknowledged, then runs the playbooks of the "contained" event.
func (a *Node) contained(ctx context.Context, id string, at time.Time) error {
	if err := a.incident.Contain(ctx, id, at); err != nil {
		return err
	}
	inc, err := a.store.GetIncident(ctx, id)
	if err != nil {
		return err
	}
	_, err = a.respond.engine.HandleIncident(ctx, inc, playbook.EventContained)
	return err
}

// respondAlert hands a stored alert to the engine (alert.Options.OnStored).
// A new alert that opened its incident also runs the playbooks of the
// "opened" incident event.
func (a *Node) respondAlert(al vigil.Alert, o alert.Outcome) {
	if a.respond == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.respond.engine.HandleAlert(ctx, al); err != nil {
		a.respond.log.Error("cannot handle alert", "alert", al.ID, "rule", al.RuleID, "err", err)
	}
	if o != alert.Created || al.IncidentID == "" || !slices.ContainsFunc(a.respond.engine.Playbooks(), func(pb *playbook.Playbook) bool {
		return pb.Enabled && pb.Trigger.MatchIncident(playbook.EventOpened)
	}) {
		return
	}
	inc, err := a.store.GetIncident(ctx, al.IncidentID)
	if err != nil || len(inc.AlertIDs) == 0 || inc.AlertIDs[0] != al.ID {
		return
	}
	if _, err := a.respond.engine.HandleIncident(ctx, inc, playbook.EventOpened); err != nil {
		a.respond.log.Error("cannot handle an opened incident", "incident", inc.ID, "err", err)
	}
}

// respondResult routes an agent's command result to the agent connector.
func (a *Node) respondResult(r command.Result) {
	if a.respond == nil {
		return
	}
	a.respond.agent.HandleResult(agentconn.Ack{CommandID: r.CommandID, Status: r.Status, Reason: r.Reason,
		Output: r.Output, Error: r.Error, Finished: r.Finished})
}

// runRespond times out approvals and unacknowledged actions until ctx ends.
func (a *Node) runRespond(ctx context.Context) error {
	if a.respond == nil {
		return nil
	}
	a.respond.engine.Run(ctx, 2*time.Second)
	if a.respond.mqtt != nil {
		a.respond.mqtt.Close()
	}
	return nil
}

// respondRoutes are the actions, playbooks and audit routes, and the
// incident resolution route that feeds rollbacks.
func (a *Node) respondRoutes() []web.Route {
	if a.respond == nil {
		return nil
	}
	rs := append(a.respond.engine.Routes(), a.trail.Routes()...)
	return append(rs, web.Route{Method: "POST", Pattern: api.Prefix + "/incidents/{id}/resolve", Perm: auth.PermWrite, Action: "incident.resolve",
		Handler: http.HandlerFunc(a.resolveIncident)})
}

// resolveRequest is the body of POST /api/v1/incidents/{id}/resolve.
type resolveRequest struct {
	// Status is resolved (default) or false_positive.
	Status vigil.IncidentStatus `json:"status"`
	// Learn, with false_positive, marks the incident's baseline alerts
	// normal for their devices (baselinestate.go).
	Learn bool `json:"learn"`
	// Reason is why it is closed, in the closer's words (optional, at
	// most incident.MaxResolution bytes): kept with the incident and
	// audited.
	Reason string `json:"reason,omitempty"`
}

// resolveIncident closes an incident as resolved or false_positive, audits
// it, and runs the playbooks of that event (rollback on a false positive).
func (a *Node) resolveIncident(w http.ResponseWriter, r *http.Request) {
	fail := func(err error) { web.WriteError(w, r, a.log, err) }
	var req resolveRequest
	b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		fail(vigil.Errorf(vigil.EINVALID, "cannot read body: %v", err))
		return
	}
	if len(b) > 0 {
		if err := json.Unmarshal(b, &req); err != nil {
			fail(vigil.Errorf(vigil.EINVALID, "cannot decode body: %v", err))
			return
		}
	}
	if req.Status == "" {
		req.Status = vigil.IncidentResolved
	}
	if req.Status != vigil.IncidentResolved && req.Status != vigil.IncidentFalsePositive {
		fail(vigil.Errorf(vigil.EINVALID, "status %q: want resolved or false_positive", req.Status))
		return
	}
	if req.Learn && (req.Status != vigil.IncidentFalsePositive || a.baseline == nil) {
		fail(vigil.Errorf(vigil.EINVALID, "learn needs status false_positive and the learned baseline enabled"))
		return
	}
	id := r.PathValue("id")
	ctx := r.Context()
	req.Reason = strings.TrimSpace(req.Reason)
	web.Audit(r, "incident:"+id, fmt.Sprintf("status=%s reason=%q", req.Status, req.Reason))
	if err := a.incident.ResolveBecause(ctx, id, req.Status, req.Reason, web.Actor(ctx), time.Now().UTC()); err != nil {
		fail(err)
		return
	}
	actor := "api"
	if t, ok := auth.FromContext(ctx); ok && t.Name != "" {
		actor = t.Name
	}
	if _, err := a.respond.audit.RecordJSON(ctx, actor, "incident.resolve", id, map[string]any{"status": req.Status, "learn": req.Learn, "reason": req.Reason}); err != nil {
		a.log.Error("cannot audit incident resolution", "component", "respond", "incident", id, "err", err)
	}
	inc, err := a.store.GetIncident(ctx, id)
	if err != nil {
		fail(err)
		return
	}
	if _, err := a.respond.engine.HandleIncident(ctx, inc, string(req.Status)); err != nil {
		fail(err)
		return
	}
	answer := client.Resolution{Incident: api.NewIncident(inc)}
	if req.Status == vigil.IncidentFalsePositive && a.baseline != nil {
		answer.Baseline = a.baseline.falsePositive(ctx, inc, req.Learn, actor, a.respond.audit)
	}
	if req.Status == vigil.IncidentFalsePositive {
		answer.Exceptions = a.suggestExceptions(ctx, inc)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}
