package investigate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
)

// ReachScore is the least score of an entity of a blast radius that
// counts as a device reached for an incident's priority: reached, the
// same source or account, a subscribed topic, a shared vulnerability, or
// weaker reasons adding up to as much (same gateway and software). A
// device only in the same subnet does not count.
const ReachScore = 5

// maxReachCache bounds the incidents whose reach is remembered.
const maxReachCache = 10000

// Reach counts the devices of incidents' blast radii, for their priority
// (a function of its Devices method is an incident.BlastRadius). The
// incident's own devices count, plus every device of its blast radius
// scoring at least ReachScore. A blast radius is computed at most once
// per incident every refresh: the correlator asks on each alert it
// assigns, and an alert storm on one incident must not recompute it per
// alert. It is safe for concurrent use.
type Reach struct {
	iv      *Investigator
	refresh time.Duration

	mu    sync.Mutex
	cache map[string]reachEntry
}

type reachEntry struct {
	at      time.Time
	devices int
	why     string
}

// Reach returns a Reach over iv's store that recomputes an incident's
// blast radius when its last answer is older than refresh.
func (iv *Investigator) Reach(refresh time.Duration) *Reach {
	return &Reach{iv: iv, refresh: refresh, cache: make(map[string]reachEntry)}
}

// Devices returns how many devices inc reaches and how that was measured.
func (r *Reach) Devices(ctx context.Context, inc *vigil.Incident) (int, string, error) {
	now := r.iv.clock.Now()
	r.mu.Lock()
	e, ok := r.cache[inc.ID]
	r.mu.Unlock()
	if ok && now.Sub(e.at) < r.refresh && now.Sub(e.at) >= 0 {
		return e.devices, e.why, nil
	}
	br, err := r.iv.blastRadius(ctx, *inc)
	if err != nil {
		return 0, "", fmt.Errorf("cannot measure the blast radius of incident %s: %w", inc.ID, err)
	}
	devices := make(map[string]bool, len(inc.DeviceIDs))
	for _, d := range inc.DeviceIDs {
		devices[d] = true
	}
	own := len(devices)
	for _, im := range br.Items {
		if im.Device != "" && im.Score >= ReachScore {
			devices[im.Device] = true
		}
	}
	e = reachEntry{at: now, devices: len(devices),
		why: fmt.Sprintf("%d in the incident, %d more reached or sharing a weakness (blast radius)", own, len(devices)-own)}
	r.mu.Lock()
	if len(r.cache) >= maxReachCache {
		clear(r.cache)
	}
	r.cache[inc.ID] = e
	r.mu.Unlock()
	return e.devices, e.why, nil
}
