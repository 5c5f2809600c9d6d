package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-iot/vigil/bus"
)

var _ bus.Bus = (*Bus)(nil)

// Bus is the NATS JetStream implementation of bus.Bus. It is safe for
// concurrent use.
type Bus struct {
	cfg Config
	log *slog.Logger
	m   *metrics

	emb *embedded // the embedded server, nil for an external one
	nc  *nats.Conn
	js  jetstream.JetStream

	queues []*partitionQueue // per partition: ordered, merging publisher

	eventsStream string
	alertsStream string
	eventsSubj   string // prefix of event subjects, "<prefix>.events."
	alertsSubj   string

	pubMu     sync.Mutex
	pubErr    error  // the last publish failure, until a later publish succeeds
	pubGen    uint64 // counts publish failures
	pubErrGen uint64 // pubGen when pubErr was recorded

	kick      chan struct{} // wakes the watchdog after a publish failure
	stopWatch context.CancelFunc
	watchDone chan struct{}

	closeOnce sync.Once
}

// Open connects to NATS (starting the embedded server when cfg.URL is
// empty), creates or updates the streams and the consumers of cfg.Groups,
// and returns the bus. Invalid configuration is an EINVALID *vigil.Error.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &Bus{
		cfg:          cfg,
		log:          cfg.Logger.With("component", "bus"),
		m:            newMetrics(cfg.Registerer),
		eventsStream: streamName(cfg.Prefix, "EVENTS"),
		alertsStream: streamName(cfg.Prefix, "ALERTS"),
		eventsSubj:   cfg.Prefix + ".events.",
		alertsSubj:   cfg.Prefix + ".alerts",
		kick:         make(chan struct{}, 1),
	}
	opts := []nats.Option{
		nats.Name("vigil"),
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			b.log.Info("reconnected to NATS", "url", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			b.log.Warn("NATS async error", "err", err)
		}),
	}
	if cfg.URL == "" {
		var ns *server.Server
		if ns, err = startEmbedded(cfg, b.log); err != nil {
			return nil, err
		}
		b.emb = &embedded{s: ns, cfg: listenConfig(cfg, ns)}
		// In process, reconnecting costs nothing: after a restart of the
		// server (see watch), do not wait the default 2s.
		opts = append(opts, nats.InProcessServer(b.emb), nats.ReconnectWait(100*time.Millisecond))
		b.nc, err = nats.Connect("", opts...)
	} else {
		b.nc, err = nats.Connect(cfg.URL, opts...)
	}
	if err != nil {
		b.stopServer()
		return nil, fmt.Errorf("cannot connect to NATS: %w", err)
	}
	b.js, err = jetstream.New(b.nc,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxPending),
		jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout))
	if err == nil {
		err = b.untilReady(ctx, "streams and consumers", cfg.StartupWait, b.setup)
	}
	for range cfg.Partitions {
		b.queues = append(b.queues, &partitionQueue{
			b:     b,
			merge: cfg.DedupWindow <= 0,
			limit: int(b.nc.MaxPayload()) - headerRoom,
		})
	}
	if err != nil {
		b.Close()
		return nil, err
	}
	if b.emb != nil {
		wctx, cancel := context.WithCancel(context.Background())
		b.stopWatch, b.watchDone = cancel, make(chan struct{})
		go func() {
			defer close(b.watchDone)
			b.watch(wctx)
		}()
	}
	return b, nil
}

// startEmbedded starts an in-process NATS server with JetStream on disk.
func startEmbedded(cfg Config, log *slog.Logger) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "vigil",
		JetStream:  true,
		StoreDir:   cfg.DataDir,
		DontListen: true,
		NoSigs:     true,
		SyncAlways: cfg.SyncAlways,
	}
	if cfg.ListenAddr != "" {
		host, port, err := net.SplitHostPort(cfg.ListenAddr)
		if err != nil {
			return nil, fmt.Errorf("cannot parse NATS listen address %q: %w", cfg.ListenAddr, err)
		}
		opts.DontListen = false
		opts.Host = host
		if opts.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("cannot parse NATS listen address %q: %w", cfg.ListenAddr, err)
		}
		if opts.Port == 0 {
			opts.Port = server.RANDOM_PORT // for NATS, 0 means its default port
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cannot create the embedded NATS server: %w", err)
	}
	ns.SetLoggerV2(serverLogger{log.With("server", "nats")}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("cannot start the embedded NATS server in %s: not ready after 30s", cfg.DataDir)
	}
	return ns, nil
}

// setup creates or updates the streams and the consumers of cfg.Groups.
func (b *Bus) setup(ctx context.Context) error {
	retention := jetstream.LimitsPolicy
	if len(b.cfg.Groups) > 0 {
		retention = jetstream.InterestPolicy
	}
	events := jetstream.StreamConfig{
		Name:        b.eventsStream,
		Description: "Vigil events, one subject per partition",
		Subjects:    []string{b.eventsSubj + "*"},
		Retention:   retention,
		MaxBytes:    b.cfg.MaxEventBytes,
		MaxAge:      b.cfg.MaxEventAge,
		MaxMsgs:     -1,
		Discard:     jetstream.DiscardNew,
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
		Duplicates:  b.cfg.DedupWindow,
	}
	alerts := jetstream.StreamConfig{
		Name:        b.alertsStream,
		Description: "Vigil alerts",
		Subjects:    []string{b.alertsSubj},
		Retention:   jetstream.LimitsPolicy,
		MaxBytes:    b.cfg.MaxAlertBytes,
		MaxAge:      b.cfg.MaxAlertAge,
		MaxMsgs:     -1,
		Discard:     jetstream.DiscardNew,
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
		Duplicates:  b.cfg.DedupWindow,
	}
	for _, sc := range []jetstream.StreamConfig{events, alerts} {
		if err := b.ensureStream(ctx, sc); err != nil {
			return err
		}
	}
	b.checkPartitions(ctx)
	for _, g := range b.cfg.Groups {
		for p := range b.cfg.Partitions {
			if _, err := b.eventConsumer(ctx, g, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkPartitions warns when the events stream holds events in partitions
// beyond the configured count: they were published with more partitions
// and no consumer will read them.
func (b *Bus) checkPartitions(ctx context.Context) {
	s, err := b.js.Stream(ctx, b.eventsStream)
	if err != nil {
		return
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(b.eventsSubj+"*"))
	if err != nil {
		return
	}
	for subj, n := range info.State.Subjects {
		p, err := strconv.Atoi(strings.TrimPrefix(subj, b.eventsSubj))
		if err == nil && p >= b.cfg.Partitions && n > 0 {
			b.log.Warn("events stream holds events of a partition beyond the configured count; they will not be consumed",
				"subject", subj, "messages", n, "partitions", b.cfg.Partitions)
		}
	}
}

// DeleteGroup deletes the consumers of an event consumer group and of an
// alert consumer group of that name. A group that no longer runs must be
// deleted: with interest retention, the events it has not acknowledged
// stay in the stream until they age out and fill it meanwhile.
func (b *Bus) DeleteGroup(ctx context.Context, group string) error {
	if err := checkGroup(group); err != nil {
		return err
	}
	var errs []error
	del := func(stream, name string) {
		if err := b.js.DeleteConsumer(ctx, stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			errs = append(errs, fmt.Errorf("cannot delete consumer %s of %s: %w", name, stream, err))
		}
	}
	// Partitions may have been more numerous before: list the consumers.
	s, err := b.js.Stream(ctx, b.eventsStream)
	if err != nil {
		return fmt.Errorf("cannot read stream %s: %w", b.eventsStream, err)
	}
	var matching []string
	names := s.ConsumerNames(ctx)
	for name := range names.Name() {
		if rest, ok := strings.CutPrefix(name, group+"-p"); ok {
			if _, err := strconv.Atoi(rest); err == nil {
				matching = append(matching, name)
			}
		}
	}
	if err := names.Err(); err != nil {
		return fmt.Errorf("cannot list consumers of %s: %w", b.eventsStream, err)
	}
	for _, name := range matching {
		del(b.eventsStream, name)
	}
	del(b.alertsStream, group)
	return errors.Join(errs...)
}

// ensureStream creates a stream or updates its limits. A stream that
// exists with a configuration that cannot change (its retention) is kept
// as it is, with a warning.
func (b *Bus) ensureStream(ctx context.Context, sc jetstream.StreamConfig) error {
	if sc.Duplicates <= 0 {
		sc.Duplicates = 2 * time.Minute // the server's default; no ids, no cost
	}
	_, err := b.js.CreateStream(ctx, sc)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("cannot create stream %s: %w", sc.Name, err)
	}
	s, err := b.js.Stream(ctx, sc.Name)
	if err != nil {
		return fmt.Errorf("cannot read stream %s: %w", sc.Name, err)
	}
	old := s.CachedInfo().Config
	if old.Retention != sc.Retention {
		b.log.Warn("stream exists with another retention policy; keeping it",
			"stream", sc.Name, "retention", old.Retention.String(), "wanted", sc.Retention.String())
		sc.Retention = old.Retention
	}
	if _, err := b.js.UpdateStream(ctx, sc); err != nil {
		b.log.Warn("cannot update stream; keeping its configuration", "stream", sc.Name, "err", err)
	}
	return nil
}

// consumerName is the durable name of a group's consumer of a partition.
func consumerName(group string, partition int) string {
	return group + "-p" + strconv.Itoa(partition)
}

// eventConsumer creates or updates the durable consumer of a group for
// one partition.
func (b *Bus) eventConsumer(ctx context.Context, group string, p int) (jetstream.Consumer, error) {
	name := consumerName(group, p)
	c, err := b.js.CreateOrUpdateConsumer(ctx, b.eventsStream, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "Vigil consumer group " + group + ", partition " + strconv.Itoa(p),
		FilterSubject: b.eventsSubj + strconv.Itoa(p),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: b.cfg.MaxAckPending,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create consumer %s on %s: %w", name, b.eventsStream, err)
	}
	return c, nil
}

// alertConsumer creates or updates the durable consumer of a group on the
// alerts stream.
func (b *Bus) alertConsumer(ctx context.Context, group string) (jetstream.Consumer, error) {
	c, err := b.js.CreateOrUpdateConsumer(ctx, b.alertsStream, jetstream.ConsumerConfig{
		Durable:       group,
		Description:   "Vigil consumer group " + group,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: b.cfg.MaxAckPending,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot create consumer %s on %s: %w", group, b.alertsStream, err)
	}
	return c, nil
}

// ClientURL returns the URL other NATS clients can connect to: the
// external server's, or the embedded server's when it listens
// (Config.ListenAddr), or "" when it accepts in-process connections only.
func (b *Bus) ClientURL() string {
	if b.emb == nil {
		return b.cfg.URL
	}
	if b.cfg.ListenAddr == "" {
		return ""
	}
	if s := b.emb.server(); s != nil {
		return s.ClientURL()
	}
	return "nats://" + b.emb.cfg.ListenAddr
}

// Partitions returns the number of event partitions.
func (b *Bus) Partitions() int { return b.cfg.Partitions }

// Close flushes pending acknowledgements, closes the connection and stops
// the embedded server. Consumers should be stopped (their context
// cancelled) first; those still running return an error. Close is
// idempotent.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		if b.stopWatch != nil {
			b.stopWatch()
			<-b.watchDone
		}
		if b.emb != nil {
			b.emb.mu.Lock()
			b.emb.closed = true
			b.emb.mu.Unlock()
		}
		if b.nc != nil {
			if err := b.nc.FlushTimeout(5 * time.Second); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				b.log.Warn("cannot flush before close", "err", err)
			}
			b.nc.Close()
		}
		b.stopServer()
	})
	return nil
}

func (b *Bus) stopServer() {
	if b.emb == nil {
		return
	}
	if s := b.emb.server(); s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// DeleteStreams deletes the streams of the bus's prefix, with their events,
// alerts and consumers. Tests on a shared server call it when done.
func (b *Bus) DeleteStreams(ctx context.Context) error {
	var errs []error
	for _, name := range []string{b.eventsStream, b.alertsStream} {
		if err := b.js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, fmt.Errorf("cannot delete stream %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// serverLogger sends the embedded server's logs to slog.
type serverLogger struct{ l *slog.Logger }

func (s serverLogger) Noticef(format string, v ...any) { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLogger) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s serverLogger) Fatalf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLogger) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLogger) Debugf(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLogger) Tracef(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
