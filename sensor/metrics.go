package sensor

import (
	"github.com/prometheus/client_golang/prometheus"

	vmetrics "github.com/vigil-iot/vigil/metrics"
)

// metrics mirror Stats in Prometheus, updated at each batch flush (not per
// packet, which would cost an atomic add on the hot path).
type metrics struct {
	counts *prometheus.CounterVec // what
	flows  prometheus.Gauge
	last   Stats
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		counts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_sensor_total",
			Help: "What the sensor saw, by what: packets, bytes, events, anomalies, flows, flows_evicted, flows_expired, undecoded, orphans, retransmissions, out_of_order, gaps, devices, fragments, reassembled, fragments_dropped, filtered.",
		}, []string{"what"}),
		flows: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_sensor_flows_active",
			Help: "Flows in the sensor's flow table.",
		}),
	}
	m.counts = register(reg, m.counts)
	m.flows = register(reg, m.flows)
	return m
}

// register registers c, or returns the collector registered already with
// the same description (several instances may share one registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	c, _ = vmetrics.Register(reg, c)
	return c
}

// sync adds what s counted since the last call.
func (m *metrics) sync(s Stats, active int) {
	if m == nil {
		return
	}
	add := func(what string, now, before uint64) {
		if now > before {
			m.counts.WithLabelValues(what).Add(float64(now - before))
		}
	}
	l := m.last
	add("packets", s.Packets, l.Packets)
	add("bytes", s.Bytes, l.Bytes)
	add("events", s.Events, l.Events)
	add("anomalies", s.Anomalies, l.Anomalies)
	add("flows", s.Flows, l.Flows)
	add("flows_evicted", s.FlowsEvicted, l.FlowsEvicted)
	add("flows_expired", s.FlowsExpired, l.FlowsExpired)
	add("undecoded", s.Undecoded, l.Undecoded)
	add("orphans", s.Orphans, l.Orphans)
	add("retransmissions", s.Retransmissions, l.Retransmissions)
	add("out_of_order", s.OutOfOrder, l.OutOfOrder)
	add("gaps", s.Gaps, l.Gaps)
	add("devices", s.Devices, l.Devices)
	add("fragments", s.Fragments, l.Fragments)
	add("reassembled", s.Reassembled, l.Reassembled)
	add("fragments_dropped", s.FragsDropped, l.FragsDropped)
	add("filtered", s.Filtered, l.Filtered)
	m.last = s
	m.flows.Set(float64(active))
}
