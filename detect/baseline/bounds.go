package baseline

// HealthBounds returns, for one device, the upper bound of normal its own
// baseline has learned for each health gauge with enough samples to
// judge, keyed by the gauge's name in Show ("cpu_pct", "memory_pct",
// "temperature", "connections", "distinct_remotes", "egress_bytes"). A
// bound is the value above which the detector takes a sample for an
// outlier: the robust bound of the device's history, and at least the
// floor under which the gauge is not judged at all (a CPU at 12 % against
// a median of 3 % is no news).
//
// ok is false when the device has no normal of its own to compare with:
// unknown to this detector's partitions, still learning (it would be
// judged against its cohort), or with no gauge learned enough.
//
// HealthBounds is read only (it learns nothing and raises nothing) and
// safe for concurrent use with the other methods; it locks each partition
// in turn for a map lookup.
func (d *Detector) HealthBounds(deviceID string) (bounds map[string]float64, ok bool) {
	k := float32(d.opts.K)
	for _, n := range d.Partitions() {
		p := d.part(n)
		p.mu.Lock()
		if e := p.lookup(deviceID); e != nil && e.tele != nil && p.judgeOf(e, e.last) == judgeDevice {
			for g := range numGauge {
				st, gp := &e.tele.host[g], &gauges[g]
				if st.n < minGaugeSamples {
					continue
				}
				if bounds == nil {
					bounds = map[string]float64{}
				}
				bounds[gp.name] = float64(max(gaugeBound(st, k, gp), gp.minValue))
			}
		}
		p.mu.Unlock()
		if bounds != nil {
			return bounds, true
		}
	}
	return nil, false
}
