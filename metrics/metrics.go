// Package metrics holds what Vigil's stages share about Prometheus
// metrics. Each stage defines and names its own metrics; this package
// only registers them.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg and returns it; when a collector with the
// same description is registered already (two stages of one process, a
// restart in tests), it returns that one instead, so both update the same
// series. A nil reg registers nothing. Any other registration error is
// returned with c.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if old, ok := are.ExistingCollector.(C); ok {
			return old, nil
		}
	}
	return c, err
}
