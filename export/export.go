package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
)

// Doc is one encoded alert.
type Doc struct {
	// ID is the alert's id (Elasticsearch's _id, so resends do not duplicate).
	ID string
	// Time is when the alert was raised.
	Time time.Time
	// Severity of the alert (syslog severity).
	Severity vigil.Severity
	// JSON is the encoded document.
	JSON []byte
}

// Sink delivers encoded alerts to one SIEM.
//
// Send returns nil when the receiver accepted every document. When it
// accepted some and refused others it returns an *ItemErrors naming the
// refused ones (by index in docs): those to retry and those to drop. Any
// other error means that none should be assumed accepted. Send is not
// called concurrently. Close releases connections.
type Sink interface {
	Send(ctx context.Context, docs []Doc) error
	Close() error
}

// ItemErrors says which documents of a Send the receiver refused.
type ItemErrors struct {
	// Retry are documents refused for a reason that may pass (overload,
	// a shard unavailable): they are sent again.
	Retry []int
	// Drop are documents refused for good (bad document), with the reason.
	Drop map[int]string
}

func (e *ItemErrors) Error() string {
	return fmt.Sprintf("receiver refused %d documents (%d to retry)", len(e.Retry)+len(e.Drop), len(e.Retry))
}

// Options configure an Exporter.
type Options struct {
	// Name names the sink in logs, metrics and the consumer group
	// ("export-<name>").
	Name string
	// Encoder encodes alerts (default ECS).
	Encoder Encoder
	// Attempts bounds the sends of one delivered batch (default 5); after
	// that the handler fails and the bus redelivers the batch later.
	Attempts int
	// Backoff is the wait after the first failed send, doubled after each
	// (default 1s, at most MaxBackoff, default 30s).
	Backoff, MaxBackoff time.Duration
	// Sleep waits d or until ctx ends (default a timer); tests inject it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger and Registerer (optional).
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Exporter sends the alerts a bus consumer group delivers to a Sink.
type Exporter struct {
	sink Sink
	opts Options
	log  *slog.Logger
	// accepted holds the ids the sink accepted from a batch that then
	// failed as a whole: the bus redelivers the batch, they are not resent.
	accepted map[string]bool

	sent, dropped, retried prometheus.Counter
	// refused counts documents the SIEM refused in a send (to retry or
	// for good); failed counts sends that failed as a whole (the SIEM
	// down, a bad token): per sink, what the SIEM did not take.
	refused, failed prometheus.Counter
}

// New makes an Exporter of sink.
func New(sink Sink, opts Options) (*Exporter, error) {
	if opts.Name == "" {
		return nil, errors.New("cannot make an exporter without a name")
	}
	if opts.Encoder == nil {
		opts.Encoder = ECS
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Exporter{sink: sink, opts: opts, accepted: map[string]bool{},
		log: opts.Logger.With("component", "export", "sink", opts.Name)}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: prometheus.Labels{"sink": opts.Name}})
		if opts.Registerer != nil {
			opts.Registerer.MustRegister(c)
		}
		return c
	}
	e.sent = counter("vigil_export_sent_total", "Alerts the SIEM accepted.")
	e.dropped = counter("vigil_export_dropped_total", "Alerts dropped: refused for good by the SIEM or not encodable.")
	e.retried = counter("vigil_export_retried_total", "Alert sends retried after a failure.")
	e.refused = counter("vigil_export_refused_total", "Documents the SIEM refused in a send, to retry or for good.")
	e.failed = counter("vigil_export_failures_total", "Sends to the SIEM that failed as a whole (unreachable, refused the request).")
	return e, nil
}

// Group is the bus consumer group of the exporter.
func (e *Exporter) Group() string { return "export-" + e.opts.Name }

// Run consumes the bus's alerts in the exporter's durable group until ctx
// ends, then closes the sink.
func (e *Exporter) Run(ctx context.Context, b bus.Bus) error {
	defer e.sink.Close()
	return b.ConsumeAlerts(ctx, e.Group(), e.Handle)
}

// Handle sends one batch of alerts: nil when the SIEM accepted all of
// them (or refused some for good, which are dropped and counted). It
// retries what the SIEM refused for a transient reason, up to Attempts
// sends with backoff, then returns the error so that the bus redelivers
// the batch later; alerts accepted meanwhile are not sent again.
func (e *Exporter) Handle(ctx context.Context, alerts []vigil.Alert) error {
	docs := make([]Doc, 0, len(alerts))
	for _, a := range alerts {
		if e.accepted[a.ID] {
			continue
		}
		b, err := e.opts.Encoder(a)
		if err != nil {
			e.dropped.Inc()
			e.log.Error("alert dropped: cannot encode it", "alert", a.ID, "err", err)
			continue
		}
		docs = append(docs, Doc{ID: a.ID, Time: a.Created, Severity: a.Severity, JSON: b})
	}
	if err := e.deliver(ctx, docs); err != nil {
		return err
	}
	clear(e.accepted)
	return nil
}

// deliver sends docs, retrying what the SIEM refused for a transient
// reason (see Handle); the ids accepted are kept in e.accepted until it
// returns nil.
func (e *Exporter) deliver(ctx context.Context, docs []Doc) error {
	wait := e.opts.Backoff
	for attempt := 1; len(docs) > 0; attempt++ {
		err := e.sink.Send(ctx, docs)
		if err == nil {
			e.sent.Add(float64(len(docs)))
			break
		}
		var ie *ItemErrors
		if errors.As(err, &ie) {
			e.refused.Add(float64(len(ie.Retry) + len(ie.Drop)))
		} else {
			e.failed.Inc()
			ie = &ItemErrors{Retry: make([]int, len(docs))}
			for i := range docs {
				ie.Retry[i] = i
			}
		}
		refused := map[int]bool{}
		for i, why := range ie.Drop {
			refused[i] = true
			e.dropped.Inc()
			e.log.Error("alert dropped: the SIEM refused it", "alert", docs[i].ID, "reason", why)
		}
		var retry []Doc
		for _, i := range ie.Retry {
			refused[i] = true
			retry = append(retry, docs[i])
		}
		for i, d := range docs {
			if !refused[i] {
				e.accepted[d.ID] = true
				e.sent.Inc()
			}
		}
		docs = retry
		if len(docs) == 0 {
			break
		}
		if attempt >= e.opts.Attempts {
			e.log.Warn("SIEM did not accept alerts; the bus will redeliver them", "alerts", len(docs), "err", err)
			return fmt.Errorf("cannot export %d alerts to %s: %w", len(docs), e.opts.Name, err)
		}
		e.retried.Add(float64(len(docs)))
		e.log.Debug("retrying alerts", "alerts", len(docs), "in", wait, "err", err)
		if err := e.opts.Sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, e.opts.MaxBackoff)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
