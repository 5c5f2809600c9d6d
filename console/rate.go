package console

import (
	"time"
)

// storedMetric is the counter of events written to the store: its rate is
// the ingest rate the overview shows.
const storedMetric = "vigil_store_events_stored_total"

type rateSample struct {
	at    time.Time
	total float64
}

// ingestRate returns events stored per second over the last minutes,
// from samples of the store's counter taken when pages ask (at most one
// per 5 s, the last 10 minutes kept). It needs two samples: the first
// view of the overview has none.
func (c *Console) ingestRate(now time.Time) (float64, bool) {
	if c.opts.Gatherer == nil {
		return 0, false
	}
	c.rateMu.Lock()
	defer c.rateMu.Unlock()
	if n := len(c.samples); n == 0 || now.Sub(c.samples[n-1].at) >= 5*time.Second {
		total, ok := c.gatherCounter(storedMetric)
		if ok {
			c.samples = append(c.samples, rateSample{now, total})
		}
	}
	for len(c.samples) > 0 && now.Sub(c.samples[0].at) > 10*time.Minute {
		c.samples = c.samples[1:]
	}
	if len(c.samples) < 2 {
		return 0, false
	}
	a, b := c.samples[0], c.samples[len(c.samples)-1]
	dt := b.at.Sub(a.at).Seconds()
	if dt <= 0 || b.total < a.total {
		return 0, false
	}
	return (b.total - a.total) / dt, true
}

func (c *Console) gatherCounter(name string) (float64, bool) {
	mfs, err := c.opts.Gatherer.Gather()
	if err != nil {
		c.log.Warn("cannot gather metrics", "err", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
		return sum, true
	}
	return 0, false
}

// lagMetric is the bus's backlog gauge: batches of a partition not yet
// delivered to a consumer group.
const lagMetric = "vigil_bus_lag"

// busLag returns the backlog of the slowest consumer group (batches, summed
// over its partitions), false when the bus exposes none.
func (c *Console) busLag() (float64, bool) {
	if c.opts.Gatherer == nil {
		return 0, false
	}
	mfs, err := c.opts.Gatherer.Gather()
	if err != nil {
		c.log.Warn("cannot gather metrics", "err", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != lagMetric {
			continue
		}
		byGroup := map[string]float64{}
		for _, m := range mf.GetMetric() {
			g := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "group" {
					g = l.GetValue()
				}
			}
			byGroup[g] += m.GetGauge().GetValue()
		}
		worst := 0.0
		for _, v := range byGroup {
			worst = max(worst, v)
		}
		return worst, true
	}
	return 0, false
}
