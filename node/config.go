package node

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vigil-iot/vigil/detect/baseline"
	"github.com/vigil-iot/vigil/ingest"
	"github.com/vigil-iot/vigil/internal/egress"
)

var busPrefix = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Config is a node's configuration: defaults, then the config file,
// then flags. Every field has a working default, so `vigil serve` runs with
// no file at all.
type Config struct {
	// DataDir holds the SQLite database, the embedded NATS store, the CA,
	// the server certificate and the keys.
	DataDir string `yaml:"data_dir"`
	// Listen is the API address.
	Listen string `yaml:"listen"`
	// InsecureHTTP serves plain HTTP; allowed only on a loopback address.
	InsecureHTTP bool `yaml:"insecure_http"`
	// Hosts are extra names and addresses for the server certificate.
	Hosts []string `yaml:"hosts"`

	// NATSURL points at an external NATS JetStream; empty embeds one.
	NATSURL string `yaml:"nats_url"`
	// Partitions is the number of event partitions on the bus.
	Partitions int `yaml:"partitions"`
	// BusMaxBytes bounds the event stream; a full stream answers 429.
	BusMaxBytes int64 `yaml:"bus_max_bytes"`
	// BusPrefix namespaces the bus's subjects and streams (<prefix>.events.N,
	// <PREFIX>_EVENTS), so several deployments can share a NATS cluster.
	BusPrefix string `yaml:"bus_prefix"`
	// BusReplicas is the replication factor of the streams on a NATS
	// cluster (1 on the embedded server).
	BusReplicas int `yaml:"bus_replicas"`
	// Store selects the database (storeconfig.go).
	Store StoreConfig `yaml:"store"`
	// SecretsKeyFile is the operator's key (a file of at least 32 bytes,
	// mode 0600) that encrypts the private keys the nodes share through a
	// postgres store (sharedkeys.go); required with store.driver postgres.
	// Default: $VIGIL_SECRETS_KEY_FILE.
	SecretsKeyFile string `yaml:"secrets_key_file"`

	// Cluster makes this node one of several (clusterwire.go).
	Cluster ClusterConfig `yaml:"cluster"`

	// Retention is how long events are kept.
	Retention Duration `yaml:"retention"`
	// RetroIntel is how far back the new indicators of an intel feed are
	// checked against stored events, by a retro-hunt (0: not at all).
	RetroIntel Duration `yaml:"retro_intel"`
	// RulesDirs are extra threshold rule directories, loaded after the
	// rules built into the binary (rules/threshold).
	RulesDirs []string `yaml:"rules_dirs"`
	// SigmaDirs are Sigma rule directories, loaded after Vigil's own IoT
	// rule pack (rules/sigma).
	SigmaDirs []string `yaml:"sigma_dirs"`
	// SigmaMapping is a Sigma mapping config file (logsources, field maps,
	// placeholder values for the expand modifier; docs/sigma.md). Empty:
	// the built-in one.
	SigmaMapping string `yaml:"sigma_mapping"`
	// HeartbeatSilence is how long a device may send no health sample
	// before it is reported as silent.
	HeartbeatSilence Duration `yaml:"heartbeat_silence"`
	// Baseline configures the learned-behaviour detector (detect/baseline).
	Baseline BaselineConfig `yaml:"baseline"`
	// DedupWindow merges alerts with the same dedup key.
	DedupWindow Duration `yaml:"dedup_window"`
	// IncidentWindow groups alerts on one device or entity into one incident.
	IncidentWindow Duration `yaml:"incident_window"`
	// ServerAddresses are the server's own addresses or networks (as
	// "10.0.0.5" or "10.0.0.0/24"), on top of the listen address, the
	// addresses in hosts and those of the host's interfaces: alerts that
	// name them are not grouped into one incident by them.
	ServerAddresses []string `yaml:"server_addresses"`
	// ReplayAfter: evidence received more than this after its own time is
	// replayed or backfilled; its alerts count in no time to detect.
	ReplayAfter Duration `yaml:"replay_after"`

	// MaxReportBytes and MaxBulkBytes bound request bodies.
	MaxReportBytes int64 `yaml:"max_report_bytes"`
	MaxBulkBytes   int64 `yaml:"max_bulk_bytes"`
	// MaxClockSkew is how far after the server's clock an event may be
	// dated; later events are rejected one by one.
	MaxClockSkew Duration `yaml:"max_clock_skew"`
	// RedactPatterns are extra regular expressions (Go syntax) whose
	// matches ingest replaces by [REDACTED] in event fields, after the
	// built-in credential rules.
	RedactPatterns []string `yaml:"redact_patterns"`

	// PlaybooksDir holds the response playbooks (*.yaml); empty runs the
	// playbooks built into the binary (node/playbooks).
	PlaybooksDir string `yaml:"playbooks_dir"`
	// Response configures the response engine's guards and connectors.
	Response ResponseConfig `yaml:"response"`
	// Update configures the update plans (updateserve.go).
	Update UpdateConfig `yaml:"update"`
	// MQTTIngest, when set, subscribes to the agents' MQTT topics (mqtt.go).
	MQTTIngest *MQTTIngestConfig `yaml:"mqtt_ingest"`
	// Syslog, when it names an address, receives syslog (syslogin.go).
	Syslog *SyslogInConfig `yaml:"syslog"`
	// Export lists the SIEMs alerts are sent to (export.go).
	Export ExportConfig `yaml:"export"`
	// Audit configures where the audit trail's anchors go (auditconfig.go).
	Audit AuditConfig `yaml:"audit"`

	// Outbound is what the server's outbound connections (feeds, TAXII,
	// vulnerability sources, webhooks, SMTP) may reach besides public
	// addresses.
	Outbound OutboundConfig `yaml:"outbound"`

	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
}

// OutboundConfig is the config key "outbound".
type OutboundConfig struct {
	// Allow lists CIDRs, addresses and host names that outbound
	// connections may reach although they are loopback, private,
	// link-local, CGNAT, cloud metadata, ... (internal/egress).
	Allow []string `yaml:"allow"`
}

// egress is the outbound policy of the config (validate checked it).
func (c *Config) egress() *egress.Policy {
	p, err := egress.New(c.Outbound.Allow)
	if err != nil {
		panic(err)
	}
	return p
}

// DefaultConfig is the config of a node with no file and no flags: a data
// dir ./vigil-data, the API on 127.0.0.1:8443, embedded NATS and SQLite.
func DefaultConfig() Config {
	return Config{
		DataDir:          "vigil-data",
		Listen:           "127.0.0.1:8443",
		Partitions:       8,
		BusMaxBytes:      4 << 30,
		Retention:        Duration(30 * 24 * time.Hour),
		RetroIntel:       Duration(7 * 24 * time.Hour),
		DedupWindow:      Duration(10 * time.Minute),
		HeartbeatSilence: Duration(5 * time.Minute),
		Baseline:         BaselineConfig{Enabled: true, Learn: Duration(baseline.DefaultLearn), Window: Duration(baseline.DefaultWindow), Checkpoint: Duration(time.Minute)},
		IncidentWindow:   Duration(30 * time.Minute),
		ReplayAfter:      Duration(time.Hour),
		MaxReportBytes:   1 << 20,
		MaxBulkBytes:     16 << 20,
		MaxClockSkew:     Duration(ingest.DefaultMaxFuture),
		LogLevel:         "info",
	}
}

// LoadConfig reads a YAML file over c (the defaults, usually). Unknown keys are errors;
// ${VAR} references are expanded from the environment first.
func LoadConfig(path string, c *Config) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read config: %w", err)
	}
	b = []byte(os.ExpandEnv(string(b)))
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("cannot parse config %s: %w", path, err)
	}
	return nil
}

// Validate checks c and makes DataDir absolute; Open wants a validated
// config.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("data_dir: must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if c.Partitions < 1 || c.Partitions > 1024 {
		return fmt.Errorf("partitions: %d is not in 1..1024", c.Partitions)
	}
	if c.Retention <= 0 {
		return fmt.Errorf("retention: must be positive")
	}
	if _, err := egress.New(c.Outbound.Allow); err != nil {
		return fmt.Errorf("outbound.allow: %w", err)
	}
	if c.ReplayAfter <= 0 {
		return fmt.Errorf("replay_after: must be positive")
	}
	if _, err := c.ownAddrs(); err != nil {
		return err
	}
	if c.MaxClockSkew <= 0 {
		return fmt.Errorf("max_clock_skew: must be positive")
	}
	if _, err := ingest.NewRedactor(c.RedactPatterns); err != nil {
		return fmt.Errorf("redact_patterns: %w", err)
	}
	if err := c.Export.validate(c.NATSURL); err != nil {
		return err
	}
	if err := c.Update.validate(); err != nil {
		return err
	}
	if err := c.Store.validate(); err != nil {
		return err
	}
	if err := c.Cluster.validate(c.NATSURL); err != nil {
		return err
	}
	if c.BusPrefix != "" && !busPrefix.MatchString(c.BusPrefix) {
		return fmt.Errorf("bus_prefix: %q: use letters, digits, '_' and '-' (at most 32)", c.BusPrefix)
	}
	if c.BusReplicas < 0 || c.BusReplicas > 5 {
		return fmt.Errorf("bus_replicas: %d is not in 1..5", c.BusReplicas)
	}
	if c.Baseline.Learn <= 0 {
		return fmt.Errorf("baseline.learn: must be positive")
	}
	if c.Baseline.Checkpoint < Duration(time.Second) {
		return fmt.Errorf("baseline.checkpoint: must be at least 1s")
	}
	if c.Baseline.Window < Duration(time.Second) {
		return fmt.Errorf("baseline.window: must be at least 1s")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level: %q is not debug, info, warn or error", c.LogLevel)
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	c.DataDir = abs
	return nil
}

// BaselineConfig configures the learned-behaviour detector.
type BaselineConfig struct {
	// Enabled runs the detector (and its baseline.* event fields, which
	// some pack rules need); on by default.
	Enabled bool `yaml:"enabled"`
	// Learn is how long, in event time, a device and a cohort learn before
	// their baselines judge.
	Learn Duration `yaml:"learn"`
	// Window is the length of the rate windows.
	Window Duration `yaml:"window"`
	// Checkpoint is how often the partitions that changed are saved to
	// the store (a SIGKILL loses at most this much learning).
	Checkpoint Duration `yaml:"checkpoint"`
	// File is a baseline file of `vigil baseline learn` to start from,
	// for the partitions without a checkpoint in the store (flag
	// --baseline of vigil serve).
	File string `yaml:"file"`
}

// Duration is a time.Duration written as a Go duration string in YAML.
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// ownAddrs returns the server's own addresses: server_addresses, the
// listen address and the addresses in hosts. An entry of server_addresses
// that is neither an address nor a network is an error.
func (c *Config) ownAddrs() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range c.ServerAddresses {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("server_addresses[%d]: %q is not an address or a network (10.0.0.5, 10.0.0.0/24)", i, s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	hosts := slices.Clone(c.Hosts)
	if h, _, err := net.SplitHostPort(c.Listen); err == nil {
		hosts = append(hosts, h)
	}
	for _, h := range hosts {
		if a, err := netip.ParseAddr(h); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	return out, nil
}

// interfaceAddrs returns the addresses of the host's network interfaces
// (none when they cannot be read).
func interfaceAddrs() []netip.Prefix {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				ip = ip.Unmap()
				out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
			}
		}
	}
	return out
}
