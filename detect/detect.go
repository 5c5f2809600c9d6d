// Package detect is the detection stage: it consumes events from the bus,
// runs every Detector over them and publishes the alerts they raise.
// Detectors live in sub-packages (threshold, sigma, ...); this package owns
// only the Detector contract and the stage that drives them.
package detect

import (
	"context"
	"time"

	"github.com/vigil-iot/vigil"
)

// Detector turns events into alerts.
//
// Contract: Detect is called once per event, in the event's partition
// order. Calls for different partitions may run concurrently, so a
// stateful detector keeps its state per partition (or locks); all events
// of one device are in one partition. Detect must not keep ev after it
// returns, must not block on I/O, and reports alerts by calling emit zero
// or more times before returning. Windows use event time (ev.Time), never
// the wall clock, so a replay detects the same thing.
type Detector interface {
	// Name is the detector's name, stored in Alert.Detector.
	Name() string
	Detect(ctx context.Context, partition int, ev *vigil.Event, emit func(vigil.Alert))
}

// Ticker is implemented by detectors that raise alerts on the passage of
// time rather than on an event (a device that stops reporting). The stage
// calls Tick periodically with the current time.
type Ticker interface {
	Tick(ctx context.Context, now time.Time, emit func(vigil.Alert))
}
