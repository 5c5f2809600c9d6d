package agent

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/agent/collect"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/wire"
)

// DefaultConfigPath is where `vigil-agent run` looks without --config.
const DefaultConfigPath = "/etc/vigil-agent/agent.json"

// DefaultStateDir holds the identity, spool and caches.
const DefaultStateDir = "/var/lib/vigil-agent"

// Duration is a time.Duration written as a Go duration string ("60s").
type Duration time.Duration

// UnmarshalJSON reads "60s" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n float64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("want a duration such as \"60s\", got %s", b)
		}
		*d = Duration(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as \"60s\": %w", err)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Config is the agent's configuration, read from a JSON file (see
// docs/agent.md for every key). Zero values take the defaults.
type Config struct {
	// Server is the base URL ("https://vigil.example:8443"); default: the
	// URL recorded at enrollment.
	Server string `json:"server,omitempty"`
	// StateDir holds key, certificates, spool and caches.
	StateDir string `json:"state_dir,omitempty"`
	// Format of reports: "json" (default) or "xml".
	Format string `json:"format,omitempty"`
	// Transport is "https" (default) or "mqtt": reports published to
	// vigil/<device>/report, commands received on vigil/<device>/cmd,
	// results published to vigil/<device>/result, over MQTT with the
	// agent's certificate (mutual TLS) to MQTTBroker.
	Transport string `json:"transport,omitempty"`
	// MQTTBroker is the broker's host:port (TLS); required with mqtt.
	MQTTBroker string `json:"mqtt_broker,omitempty"`
	// Interval between full reports (default 60s); EventInterval between
	// polls of the event collectors (processes, logins; default 10s),
	// whose events are sent at once.
	Interval      Duration `json:"interval,omitempty"`
	EventInterval Duration `json:"event_interval,omitempty"`

	Class  string `json:"class,omitempty"`
	Vendor string `json:"vendor,omitempty"`
	Model  string `json:"model,omitempty"`

	FirmwareFile    string   `json:"firmware_file,omitempty"`
	FirmwareCommand []string `json:"firmware_command,omitempty"`
	AuthLogs        []string `json:"auth_logs,omitempty"`
	FIMPaths        []string `json:"fim_paths,omitempty"`
	MetricsFile     string   `json:"metrics_file,omitempty"`
	MetricsCommand  []string `json:"metrics_command,omitempty"`
	DiskMounts      []string `json:"disk_mounts,omitempty"`
	// Disable lists collectors not to run: system, packages, health,
	// network, processes, authlog, fim, metrics, dos, hardware, smart.
	Disable []string `json:"disable,omitempty"`
	// DoSThresholds tune the dos collector (zero fields: defaults).
	DoSThresholds collect.DoSThresholds `json:"dos_thresholds,omitempty"`
	// ClockJump is how far the wall clock may move apart from the time
	// since boot between two reports before it is a clock jump (default
	// 1m); FlashWearLevel is the eMMC life-time estimate (1-11) from which
	// flash wear is reported (default 9: 80-90% used).
	ClockJump      Duration `json:"clock_jump,omitempty"`
	FlashWearLevel int      `json:"flash_wear_level,omitempty"`
	// ProcessEvents is where process starts come from: "connector" (the
	// default: the kernel's process connector, /proc polling when it is
	// not permitted) or "poll" (/proc polling only).
	ProcessEvents string `json:"process_events,omitempty"`

	// SpoolMaxBytes bounds the spool (default 16 MiB).
	SpoolMaxBytes int64 `json:"spool_max_bytes,omitempty"`
	// BackfillInterval paces the sending of spooled reports after a
	// reconnect (default 200ms between reports).
	BackfillInterval Duration `json:"backfill_interval,omitempty"`
	// MaxBackoff bounds the wait between retries (default 5m).
	MaxBackoff Duration `json:"max_backoff,omitempty"`

	// Commands enables the command channel (default off).
	Commands bool `json:"commands,omitempty"`
	// PolicyFile is the local command policy (default
	// /etc/vigil-agent/policy.json); without it every command is refused.
	PolicyFile string `json:"policy_file,omitempty"`
	// PollWait is the long-poll duration (default 30s).
	PollWait Duration `json:"poll_wait,omitempty"`
	// IsolateTimeout undoes an isolation when no exchange with the server
	// succeeds for this long after it (default 10m).
	IsolateTimeout Duration `json:"isolate_timeout,omitempty"`
	Firewall       string   `json:"firewall,omitempty"`
	ServiceCommand []string `json:"service_command,omitempty"`
	ParamFile      string   `json:"param_file,omitempty"`
	Installer      []string `json:"installer,omitempty"`
	Rollback       []string `json:"rollback,omitempty"`
	RebootCommand  []string `json:"reboot_command,omitempty"`
	// ShutdownCommand replaces poweroff (or halt, as the policy's shutdown
	// says) for the shutdown command, which the policy must allow.
	ShutdownCommand []string `json:"shutdown_command,omitempty"`
	// UpdateKey pins the server's public update key (base64 Ed25519, from
	// `vigil update key`). The agent verifies update artifacts with the
	// key its server handed at enrollment or renewal (state_dir/update.pub);
	// when both exist they must be equal, else every update is refused.
	// An agent enrolled before its server handed the key uses the pin
	// alone. Never the command key: with neither, updates are refused.
	UpdateKey string `json:"update_key,omitempty"`
	// Update names the installer of update artifacts (script, dpkg, opkg,
	// apk, ab, command; see command.InstallConfig); without it the
	// installer and rollback templates above are used. The installed
	// artifacts are kept under state_dir/updates for the rollback command.
	Update *command.InstallConfig `json:"update,omitempty"`

	// Root prefixes /proc, /sys, /etc and /var for the collectors (tests).
	Root string `json:"root,omitempty"`
}

// LoadConfig reads a config file; unknown keys are errors.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("cannot read config: %w", err)
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("cannot read config %s: %w", path, err)
	}
	if err := c.fill(); err != nil {
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// fill sets defaults and checks values.
func (c *Config) fill() error {
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	switch strings.ToLower(c.Format) {
	case "", "json":
		c.Format = string(wire.FormatJSON)
	case "xml":
		c.Format = string(wire.FormatXML)
	default:
		return fmt.Errorf("format %q: want json or xml", c.Format)
	}
	switch c.Transport {
	case "", "https":
		c.Transport = "https"
	case "mqtt":
		if c.MQTTBroker == "" {
			return fmt.Errorf("transport mqtt needs mqtt_broker (host:port)")
		}
	default:
		return fmt.Errorf("transport %q: want https or mqtt", c.Transport)
	}
	def := func(d *Duration, v time.Duration) {
		if *d <= 0 {
			*d = Duration(v)
		}
	}
	def(&c.Interval, 60*time.Second)
	def(&c.EventInterval, 10*time.Second)
	def(&c.BackfillInterval, 200*time.Millisecond)
	def(&c.MaxBackoff, 5*time.Minute)
	def(&c.PollWait, 30*time.Second)
	def(&c.IsolateTimeout, 10*time.Minute)
	if c.FlashWearLevel < 0 || c.FlashWearLevel > 11 {
		return fmt.Errorf("flash_wear_level %d: want 1 to 11 (the eMMC life-time estimate)", c.FlashWearLevel)
	}
	if c.PolicyFile == "" {
		c.PolicyFile = "/etc/vigil-agent/policy.json"
	}
	if _, err := c.updateKey(); err != nil {
		return err
	}
	if c.Update != nil {
		if _, err := command.NewInstaller(*c.Update, nil); err != nil {
			return fmt.Errorf("update: %w", err)
		}
	}
	if c.Server != "" && !strings.HasPrefix(c.Server, "https://") {
		return fmt.Errorf("server %q: must be an https:// URL", c.Server)
	}
	switch c.ProcessEvents {
	case "":
		c.ProcessEvents = "connector"
	case "connector", "poll":
	default:
		return fmt.Errorf("process_events %q: want connector or poll", c.ProcessEvents)
	}
	for _, d := range c.Disable {
		switch d {
		case "system", "packages", "health", "network", "processes", "authlog", "fim", "metrics", "dos", "hardware":
		default:
			return fmt.Errorf("disable: unknown collector %q", d)
		}
	}
	return nil
}

func (c *Config) enabled(name string) bool {
	for _, d := range c.Disable {
		if d == name {
			return false
		}
	}
	return true
}

// updateKey decodes UpdateKey (nil when empty).
func (c *Config) updateKey() (ed25519.PublicKey, error) {
	if c.UpdateKey == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(c.UpdateKey)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("update_key: want the base64 Ed25519 public key `vigil update key` prints")
	}
	return ed25519.PublicKey(b), nil
}
