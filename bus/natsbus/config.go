package natsbus

import (
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vigil-iot/vigil"
)

// Config configures a Bus. The zero value of every field but DataDir (for
// the embedded server) means its default.
type Config struct {
	// URL of an external NATS server or cluster ("nats://host:4222", a
	// comma-separated list for a cluster). Empty starts an embedded server.
	URL string
	// DataDir is the JetStream store directory of the embedded server
	// (e.g. <data dir>/nats). Required when URL is empty.
	DataDir string
	// ListenAddr makes the embedded server also listen on a TCP address
	// ("127.0.0.1:4223"; port 0 picks a free one, see Bus.ClientURL), for
	// debugging with the nats CLI. Empty: in-process connections only.
	ListenAddr string
	// SyncAlways makes the embedded server fsync every write, so that an
	// acknowledged event survives a power loss and not only a process crash.
	// It costs a lot of throughput.
	SyncAlways bool

	// Prefix is the namespace of the subjects and streams: subjects
	// <prefix>.events.<partition> and <prefix>.alerts, streams
	// <PREFIX>_EVENTS and <PREFIX>_ALERTS. Default "vigil". Letters, digits,
	// '_' and '-' only; tests use a unique prefix on a shared server.
	Prefix string
	// Partitions is the number of event partitions. Default 8. Do not lower
	// it on a stream that still holds events: partitions beyond the new
	// count would no longer be consumed.
	Partitions int
	// Replicas is the replication factor of the streams on a cluster.
	// Default 1 (and the only possible value for the embedded server).
	Replicas int

	// Groups are the event consumer groups that must see every event. Open
	// creates their consumers, so events published before a group first
	// consumes are kept for it, and the events stream keeps each event only
	// until every consumer group has acknowledged it (interest retention):
	// MaxEventBytes then bounds the backlog, not the history. With no
	// Groups, the events stream keeps events until MaxEventAge or
	// MaxEventBytes (limits retention). The retention of an existing stream
	// cannot change; Open logs a warning when it differs.
	Groups []string
	// MaxEventBytes bounds the events stream; when it is full, PublishEvents
	// returns bus.ErrBackpressure (discard-new policy). Default 1 GiB.
	MaxEventBytes int64
	// MaxEventAge drops events older than this, acknowledged or not.
	// Default 24h.
	MaxEventAge time.Duration
	// MaxAlertBytes bounds the alerts stream. Default 256 MiB.
	MaxAlertBytes int64
	// MaxAlertAge drops alerts older than this. Default 7 days.
	MaxAlertAge time.Duration
	// DedupWindow, when positive, sets a Nats-Msg-Id header derived from
	// the event ids of each message, so the server drops a message that a
	// retried publish of the same batch sends again within the window. It
	// costs server memory per message. Default 0: no header.
	DedupWindow time.Duration

	// MaxPending bounds the publishes awaiting acknowledgement; beyond it
	// PublishEvents returns bus.ErrBackpressure. Default 4096 messages.
	MaxPending int
	// PublishTimeout bounds the wait for the server's acknowledgement of a
	// publish. Default 10s.
	PublishTimeout time.Duration
	// AckWait is how long the server waits for a consumer's acknowledgement
	// before redelivering; a handler must finish within it. Default 60s.
	AckWait time.Duration
	// MaxAckPending bounds the messages delivered to a consumer and not yet
	// acknowledged. Default 1024.
	MaxAckPending int
	// FetchBatch is the number of messages a partition worker asks for at
	// once. Default 256.
	FetchBatch int
	// FetchWait is how long a fetch waits for messages; it also bounds how
	// long a consumer takes to stop. Default 1s.
	FetchWait time.Duration
	// MaxHandlerBytes bounds the encoded size of the messages merged into
	// one handler call. Default 1 MiB.
	MaxHandlerBytes int
	// Linger is how long a consumer waits for more messages before calling
	// the handler with fewer than MaxHandlerBytes: it trades a little
	// latency for larger batches when messages are small. Default 2ms;
	// negative: no wait.
	Linger time.Duration
	// RetryDelay is the first delay before a batch whose handler failed is
	// handed to it again; it doubles on each consecutive failure up to
	// MaxRetryDelay (at most AckWait/2). Defaults 500ms and 30s.
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration
	// LagInterval is how often the consumer lag gauge is sampled from the
	// server when no message flows. Default 5s.
	LagInterval time.Duration

	// StartupWait bounds how long Open, and KeyValue, keep asking a busy
	// JetStream (requests timing out, leaders being elected, as on a
	// cluster whose nodes start together or one of which just died) to
	// create the streams, consumers and buckets. Default 2m.
	StartupWait time.Duration

	// HealthInterval is how often the bus checks the embedded server's
	// health, and the least delay between two restarts of it after a write
	// error (see Bus.WriteErr). Default 2s.
	HealthInterval time.Duration

	// Logger receives the bus's logs (component=bus); nil discards them.
	Logger *slog.Logger
	// Registerer registers the bus metrics; nil does not register them.
	Registerer prometheus.Registerer
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// withDefaults returns cfg with defaults filled in, or an EINVALID error.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "vigil"
	}
	if !namePattern.MatchString(cfg.Prefix) {
		return cfg, vigil.Errorf(vigil.EINVALID, "bus prefix %q: use letters, digits, '_' and '-' only", cfg.Prefix)
	}
	if cfg.URL == "" && cfg.DataDir == "" {
		return cfg, vigil.Errorf(vigil.EINVALID, "bus: a data dir is required for the embedded NATS server")
	}
	for _, g := range cfg.Groups {
		if err := checkGroup(g); err != nil {
			return cfg, err
		}
	}
	if cfg.Partitions < 0 || cfg.Partitions > 1024 {
		return cfg, vigil.Errorf(vigil.EINVALID, "bus partitions %d: must be between 1 and 1024", cfg.Partitions)
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def64 := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.Partitions, 8)
	def(&cfg.Replicas, 1)
	def64(&cfg.MaxEventBytes, 1<<30)
	defDur(&cfg.MaxEventAge, 24*time.Hour)
	def64(&cfg.MaxAlertBytes, 256<<20)
	defDur(&cfg.MaxAlertAge, 7*24*time.Hour)
	def(&cfg.MaxPending, 4096)
	defDur(&cfg.PublishTimeout, 10*time.Second)
	defDur(&cfg.AckWait, 60*time.Second)
	def(&cfg.MaxAckPending, 1024)
	def(&cfg.FetchBatch, 256)
	if cfg.FetchBatch > cfg.MaxAckPending {
		cfg.FetchBatch = cfg.MaxAckPending
	}
	defDur(&cfg.FetchWait, time.Second)
	def(&cfg.MaxHandlerBytes, 1<<20)
	if cfg.Linger == 0 {
		cfg.Linger = 2 * time.Millisecond
	}
	defDur(&cfg.RetryDelay, 500*time.Millisecond)
	defDur(&cfg.MaxRetryDelay, 30*time.Second)
	cfg.MaxRetryDelay = min(max(cfg.MaxRetryDelay, cfg.RetryDelay), cfg.AckWait/2)
	defDur(&cfg.LagInterval, 5*time.Second)
	defDur(&cfg.HealthInterval, 2*time.Second)
	defDur(&cfg.StartupWait, 2*time.Minute)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

func checkGroup(g string) error {
	if !namePattern.MatchString(g) {
		return vigil.Errorf(vigil.EINVALID, "consumer group %q: use letters, digits, '_' and '-' only", g)
	}
	return nil
}

// streamName returns the stream name of a prefix and a kind ("EVENTS").
func streamName(prefix, kind string) string {
	return strings.ToUpper(prefix) + "_" + kind
}
