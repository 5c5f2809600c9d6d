package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/internal/egress"
)

// appliedConfigFile keeps, in the data dir, the configuration the server
// last started with (secrets replaced by a digest), to audit changes.
const appliedConfigFile = "config-applied.json"

// auditConfig records a config.change audit record when the configuration
// differs from the one the server last started with in this data dir
// (the first start counts as a change), naming the top-level keys that
// changed. Secrets never reach the trail: only a digest of each.
func auditConfigChange(ctx context.Context, cfg Config, rec *audit.Recorder) error {
	cur, err := redactedConfig(cfg)
	if err != nil {
		return err
	}
	b, err := json.Marshal(cur)
	if err != nil {
		return fmt.Errorf("cannot encode the configuration: %w", err)
	}
	file := filepath.Join(cfg.DataDir, appliedConfigFile)
	old, err := os.ReadFile(file)
	if err == nil && bytes.Equal(old, b) {
		return nil
	}
	var prev map[string]any
	_ = json.Unmarshal(old, &prev)
	var changed []string
	for k, v := range cur {
		if pv, ok := prev[k]; !ok || !reflect.DeepEqual(pv, v) {
			changed = append(changed, k)
		}
	}
	for k := range prev {
		if _, ok := cur[k]; !ok {
			changed = append(changed, k)
		}
	}
	sort.Strings(changed)
	sum := sha256.Sum256(b)
	if _, err := rec.RecordJSON(ctx, "vigil", audit.ConfigChange, "config",
		map[string]any{"changed": changed, "sha256": hex.EncodeToString(sum[:]), "first": prev == nil}); err != nil {
		return err
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return fmt.Errorf("cannot record the applied configuration: %w", err)
	}
	return nil
}

// redactedConfig returns cfg as its YAML keys, with every password, secret
// and header value replaced by "sha256:<12 hex>".
func redactedConfig(cfg Config) (map[string]any, error) {
	y, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the configuration: %w", err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(y, &m); err != nil {
		return nil, fmt.Errorf("cannot encode the configuration: %w", err)
	}
	redact(m, false)
	// Through JSON, so that comparing with the stored copy compares like types.
	j, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("cannot encode the configuration: %w", err)
	}
	var out map[string]any
	err = json.Unmarshal(j, &out)
	return out, err
}

func redact(v any, secret bool) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			lk := strings.ToLower(k)
			x[k] = redact(e, secret || strings.Contains(lk, "password") || strings.Contains(lk, "secret") || strings.Contains(lk, "token") || lk == "headers")
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = redact(e, secret)
		}
		return x
	case string:
		if secret && x != "" {
			s := sha256.Sum256([]byte(x))
			return "sha256:" + hex.EncodeToString(s[:6])
		}
		return redactURL(x)
	default:
		return v
	}
}

// AuditConfig is the config key "audit": how often the trail is anchored and
// where the anchors go. Anchors always go to the log (msg "audit anchor");
// each sink set here gets them too.
type AuditConfig struct {
	// AnchorInterval is how often the newest record is anchored when the
	// trail grew (default 30s), and once more at shutdown.
	AnchorInterval Duration `yaml:"anchor_interval"`
	Anchors        struct {
		// File gets one JSON line per anchor (created 0600). Keep it out
		// of the data dir, ideally on another machine's mount: `vigil audit
		// verify` reads its last line to detect a truncated trail.
		File string `yaml:"file"`
		// Syslog sends RFC 5424 messages (msgid audit-anchor) to a
		// collector (network udp or tcp, addr host:port).
		Syslog *SyslogConfig `yaml:"syslog"`
		// Webhook posts each anchor as JSON (headers, optional HMAC
		// signature with secret, as the response webhook).
		Webhook *WebhookConfig `yaml:"webhook"`
	} `yaml:"anchors"`
}

// sinks checks the anchor sinks and returns them. The webhook posts
// through the outbound policy out, as every other webhook of the server.
func (c AuditConfig) sinks(pol *egress.Policy) ([]audit.Sink, error) {
	var out []audit.Sink
	if f := c.Anchors.File; f != "" {
		if !filepath.IsAbs(f) {
			return nil, fmt.Errorf("audit.anchors.file %q: want an absolute path", f)
		}
		out = append(out, audit.FileSink{Path: f})
	}
	if s := c.Anchors.Syslog; s != nil && s.Addr != "" {
		if s.Network != "" && s.Network != "udp" && s.Network != "tcp" {
			return nil, fmt.Errorf("audit.anchors.syslog.network %q: want udp or tcp", s.Network)
		}
		out = append(out, audit.SyslogSink{Network: s.Network, Addr: s.Addr})
	}
	if w := c.Anchors.Webhook; w != nil && w.URL != "" {
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("audit.anchors.webhook.url: want an http or https URL")
		}
		out = append(out, &audit.WebhookSink{URL: w.URL, Headers: w.Headers, Secret: w.Secret, Client: pol.Client(10 * time.Second)})
	}
	return out, nil
}

// openAudit builds the audit trail of the app (a.store and a.auditKey are
// open): its sinks, its last anchor read back from the anchor file, and
// seals a trail written before the key.
func (a *Node) openAudit(ctx context.Context) error {
	if a.cfg.Audit.AnchorInterval <= 0 {
		a.cfg.Audit.AnchorInterval = Duration(30 * time.Second)
	}
	sinks, err := a.cfg.Audit.sinks(a.cfg.egress())
	if err != nil {
		return err
	}
	var last *audit.Anchor
	if f := a.cfg.Audit.Anchors.File; f != "" {
		an, ok, err := audit.ReadAnchorFile(f)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if ok {
			last = &an
		}
	}
	a.trail = audit.NewTrail(a.store, audit.TrailOptions{Key: a.auditKey, Sinks: sinks, Last: last, Logger: a.log})
	if err := a.trail.Seal(ctx); err != nil {
		return err
	}
	// Check the trail against the last anchor at once: a truncated trail
	// is logged at start (the server runs on, and verify reports it).
	_, _ = a.trail.Anchor(ctx)
	return nil
}

// auditRecorder returns the response stage's recorder (nil before it is
// open).
func (a *Node) auditRecorder() *audit.Recorder {
	if a.respond == nil {
		return nil
	}
	return a.respond.audit
}

// redactURL replaces the password of a URL (postgres://user:pw@host/db)
// by "sha256:<12 hex>"; any other string is returned as it is.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	pw, ok := u.User.Password()
	if !ok {
		return s
	}
	sum := sha256.Sum256([]byte(pw))
	u.User = url.UserPassword(u.User.Username(), "sha256:"+hex.EncodeToString(sum[:6]))
	return u.String()
}
