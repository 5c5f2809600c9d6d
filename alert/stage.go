package alert

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
	"github.com/vigil-iot/vigil/store"
)

// DefaultGroup is the bus consumer group of the alert stage.
const DefaultGroup = "alerts"

// IncidentAssigner puts an alert into an incident.
//
// Contract: Assign sets a.IncidentID to the incident the alert belongs to
// and has stored that incident when it returns nil. It is called for new
// and for merged alerts alike; a merged alert arrives with the IncidentID
// it got before, which Assign keeps when that incident can still take it.
// An error with vigil.ErrorCode EINVALID is about the alert (the stage
// stores it without incident); any other error makes the stage retry.
type IncidentAssigner interface {
	Assign(ctx context.Context, a *vigil.Alert) error
}

// Options configure a Stage. Zero values take the defaults.
type Options struct {
	// Group is the bus consumer group (DefaultGroup when empty).
	Group string
	Dedup DedupOptions
	// Assigner puts alerts into incidents; nil stores alerts without one.
	Assigner IncidentAssigner
	// Suppressor drops silenced alerts; nil suppresses nothing.
	Suppressor *Suppressor
	// Exceptions keeps alerts an exception covers from being raised and
	// counts them in it; nil excepts nothing.
	Exceptions *Excepter
	// Clock dates alerts that come without a Created time.
	Clock vigil.Clock
	// Logger gets the stage's logs (component=alert).
	Logger *slog.Logger
	// Registerer registers the metrics; nil registers none.
	Registerer prometheus.Registerer
	// OnStored, when set, is called with every alert stored (new or
	// merged), after it was stored: for the response stage or a demo.
	OnStored func(a vigil.Alert, o Outcome)
}

// Stage consumes alerts from the bus, deduplicates, suppresses, assigns
// incidents and stores them.
type Stage struct {
	bus   bus.Bus
	dedup *Deduper
	opts  Options
	log   *slog.Logger

	total        *prometheus.CounterVec
	deduplicated prometheus.Counter
	suppressed   prometheus.Counter
	excepted     prometheus.Counter
	rejected     prometheus.Counter
}

// NewStage returns an alert stage reading b and writing st.
func NewStage(b bus.Bus, st store.Alerts, opts Options) (*Stage, error) {
	if opts.Group == "" {
		opts.Group = DefaultGroup
	}
	if opts.Clock == nil {
		opts.Clock = vigil.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Stage{
		bus:   b,
		dedup: NewDeduper(st, opts.Dedup),
		opts:  opts,
		log:   opts.Logger.With("component", "alert"),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_alerts_total",
			Help: "Alerts raised by detectors and stored, merged or not, by severity.",
		}, []string{"severity"}),
		deduplicated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_alerts_deduplicated_total",
			Help: "Alerts merged into an earlier alert with the same dedup key.",
		}),
		suppressed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_alerts_suppressed_total",
			Help: "Alerts dropped by a suppression rule.",
		}),
		excepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_alerts_excepted_total",
			Help: "Alerts not raised because an exception covers them (each exception counts its own).",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_alerts_rejected_total",
			Help: "Alerts dropped because they were malformed.",
		}),
	}
	if r := opts.Registerer; r != nil {
		for _, m := range []prometheus.Collector{s.total, s.deduplicated, s.suppressed, s.excepted, s.rejected} {
			if err := r.Register(m); err != nil {
				return nil, fmt.Errorf("cannot register alert metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Deduper returns the stage's deduper.
func (s *Stage) Deduper() *Deduper { return s.dedup }

// Run consumes alerts until ctx ends; it returns nil then, or the bus's error.
func (s *Stage) Run(ctx context.Context) error {
	s.log.Info("alert stage started", "group", s.opts.Group, "dedup_window", s.dedup.Window())
	return s.bus.ConsumeAlerts(ctx, s.opts.Group, s.Handle)
}

// Handle processes one batch of alerts in order. A malformed alert is
// logged, counted and skipped; the rest of the batch goes through. A store
// or incident failure returns an error so the bus redelivers the batch;
// alerts already handled are then recognized by id and not counted twice.
func (s *Stage) Handle(ctx context.Context, alerts []vigil.Alert) error {
	for i := range alerts {
		if err := s.handle(ctx, alerts[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *Stage) handle(ctx context.Context, a vigil.Alert) error {
	if err := Normalize(&a, s.opts.Clock.Now()); err != nil {
		s.rejected.Inc()
		s.log.Warn("alert rejected", "alert", a.ID, "rule", a.RuleID, "err", err)
		return nil
	}
	if rule, ok := s.opts.Suppressor.Suppressed(&a); ok {
		s.suppressed.Inc()
		s.log.Debug("alert suppressed", "alert", a.ID, "rule", a.RuleID, "device", a.DeviceID, "reason", rule.Reason)
		return nil
	}
	if _, ok, err := s.opts.Exceptions.Match(ctx, &a); err != nil {
		return err
	} else if ok {
		s.excepted.Inc()
		return nil
	}
	r, err := s.dedup.Merge(ctx, a)
	if err != nil {
		return err
	}
	if r.Outcome == Redelivered {
		return nil
	}
	if s.opts.Assigner != nil {
		err := s.opts.Assigner.Assign(ctx, &r.Alert)
		switch {
		case vigil.ErrorCode(err) == vigil.EINVALID:
			s.log.Warn("alert stored without incident", "alert", r.Alert.ID, "err", err)
		case err != nil:
			return fmt.Errorf("cannot assign alert %s to an incident: %w", r.Alert.ID, err)
		}
	}
	if err := s.dedup.Save(ctx, r); err != nil {
		return err
	}
	sev := a.Severity.String()
	if sev == "" {
		sev = "unset"
	}
	s.total.WithLabelValues(sev).Inc()
	if r.Outcome == Merged {
		s.deduplicated.Inc()
	} else {
		s.log.Info("alert", "alert", r.Alert.ID, "rule", r.Alert.RuleID, "device", r.Alert.DeviceID,
			"severity", r.Alert.Severity, "incident", r.Alert.IncidentID, "title", r.Alert.Title)
	}
	if s.opts.OnStored != nil {
		s.opts.OnStored(r.Alert, r.Outcome)
	}
	return nil
}
