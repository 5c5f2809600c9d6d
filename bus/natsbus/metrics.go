package natsbus

import (
	"github.com/prometheus/client_golang/prometheus"

	vmetrics "github.com/vigil-iot/vigil/metrics"
)

// metrics are the bus's Prometheus collectors.
type metrics struct {
	published     *prometheus.CounterVec // kind
	publishErrors *prometheus.CounterVec // kind, reason
	consumed      *prometheus.CounterVec // kind, group
	handlerErrors *prometheus.CounterVec // kind, group
	badMessages   *prometheus.CounterVec // kind, group
	lag           *prometheus.GaugeVec   // group, partition
	alertLag      *prometheus.GaugeVec   // group
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_bus_published_total",
			Help: "Events and alerts stored on the bus, by kind.",
		}, []string{"kind"}),
		publishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_bus_publish_errors_total",
			Help: "Failed publish calls, by kind and reason (backpressure, invalid, error).",
		}, []string{"kind", "reason"}),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_bus_consumed_total",
			Help: "Events and alerts handled and acknowledged, by kind and consumer group.",
		}, []string{"kind", "group"}),
		handlerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_bus_handler_errors_total",
			Help: "Handler calls that failed and whose batch will be redelivered.",
		}, []string{"kind", "group"}),
		badMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_bus_bad_messages_total",
			Help: "Messages that could not be decoded and were skipped.",
		}, []string{"kind", "group"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_bus_lag",
			Help: "Event messages (batches) in a partition not yet delivered to the consumer group.",
		}, []string{"group", "partition"}),
		alertLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_bus_alert_lag",
			Help: "Alert messages not yet delivered to the consumer group.",
		}, []string{"group"}),
	}
	if reg == nil {
		return m
	}
	// Several buses may share one registry (tests, a restart in one
	// process): reuse what is registered already.
	m.published = register(reg, m.published)
	m.publishErrors = register(reg, m.publishErrors)
	m.consumed = register(reg, m.consumed)
	m.handlerErrors = register(reg, m.handlerErrors)
	m.badMessages = register(reg, m.badMessages)
	m.lag = register(reg, m.lag)
	m.alertLag = register(reg, m.alertLag)
	return m
}

// register registers c, or returns the collector registered already with
// the same description (several instances may share one registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	c, _ = vmetrics.Register(reg, c)
	return c
}
