// Package heartbeat detects devices that stop reporting. It remembers when
// each device last sent a health sample (by the server's receive time, so a
// device's wrong clock cannot hide its silence) and, on each tick of the
// detection stage, raises one alert for every device silent for longer
// than the allowed gap. A device that reports again is re-armed.
//
// State is in memory: after a restart a device is watched again from its
// next report. Sigma rules cannot express silence (they run on events that
// arrive), which is why this is a detector of its own.
package heartbeat

import (
	"context"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect"
)

// RuleID is the rule id of the alerts this detector raises.
const RuleID = "vigil-device-silent"

// DefaultSilence is the gap after which a device counts as silent: five
// report intervals of the agent's default 60 s.
const DefaultSilence = 5 * time.Minute

// Options configure a Detector.
type Options struct {
	// Silence is the allowed gap between two health samples of a device;
	// DefaultSilence when zero.
	Silence time.Duration
}

// Detector raises an alert when a device stops sending health samples.
// Detect and Tick may run concurrently.
type Detector struct {
	silence time.Duration
	parts   sync.Map // partition → *shard
}

type shard struct {
	mu   sync.Mutex
	devs map[string]*device
}

type device struct {
	last    time.Time // receive time of the latest health sample
	eventID string
	alerted bool
}

var (
	_ detect.Detector = (*Detector)(nil)
	_ detect.Ticker   = (*Detector)(nil)
)

// New returns a detector.
func New(opts Options) *Detector {
	if opts.Silence <= 0 {
		opts.Silence = DefaultSilence
	}
	return &Detector{silence: opts.Silence}
}

// Name returns "heartbeat".
func (d *Detector) Name() string { return "heartbeat" }

// Detect records the health samples of devices.
func (d *Detector) Detect(_ context.Context, partition int, ev *vigil.Event, _ func(vigil.Alert)) {
	if ev.Kind != vigil.KindHealth || ev.DeviceID == "" {
		return
	}
	at := ev.Received
	if at.IsZero() {
		at = ev.Time
	}
	v, _ := d.parts.Load(partition)
	s, _ := v.(*shard)
	if s == nil {
		v, _ = d.parts.LoadOrStore(partition, &shard{devs: map[string]*device{}})
		s = v.(*shard)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dv := s.devs[ev.DeviceID]
	if dv == nil {
		dv = &device{}
		s.devs[ev.DeviceID] = dv
	}
	if at.After(dv.last) {
		dv.last, dv.eventID, dv.alerted = at, ev.ID, false
	}
}

// Tick raises an alert for each device silent for longer than the allowed
// gap at now, once per silence.
func (d *Detector) Tick(_ context.Context, now time.Time, emit func(vigil.Alert)) {
	d.parts.Range(func(_, v any) bool {
		s := v.(*shard)
		s.mu.Lock()
		defer s.mu.Unlock()
		for id, dv := range s.devs {
			if dv.alerted || now.Sub(dv.last) <= d.silence {
				continue
			}
			dv.alerted = true
			emit(vigil.Alert{
				Detector: "heartbeat",
				RuleID:   RuleID,
				Title:    "Device stopped reporting",
				Severity: vigil.SeverityMedium,
				// Loss of view (ICS) and service stop: an agent that goes
				// quiet is stopped, unplugged or taken over.
				Tags:           []string{"attack.impact", "attack.t0829", "attack.t1489"},
				DeviceID:       id,
				EventIDs:       []string{dv.eventID},
				FirstEventTime: dv.last,
				LastEventTime:  dv.last,
				Fields: map[string]any{
					"heartbeat.last_seen":      dv.last.UTC().Format(time.RFC3339Nano),
					"heartbeat.silent_seconds": now.Sub(dv.last).Seconds(),
				},
			})
		}
		return true
	})
}
