package node

import (
	"context"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/ingest/httpin"
	"github.com/vigil-iot/vigil/store"
)

// identities answers httpin.Identities from the inventory: a device has
// an enrolled identity when its record carries an enrollment time
// (vigil.Device.Enrolled, set by Node.enrolled). Answers are cached, since
// a bulk request may name thousands of devices: "enrolled" for good (and
// set at once by markEnrolled in this process), "not enrolled" for
// notEnrolledTTL, so that a device enrolled through another server node
// is refused to tokens soon after.
type identities struct {
	devices store.Devices
	clock   vigil.Clock

	mu    sync.Mutex
	known map[string]time.Time // device id → when "not enrolled" expires; zero: enrolled
}

// notEnrolledTTL is how long a "not enrolled" answer is cached, and
// maxIdentities bounds the cache (it is emptied when full).
const (
	notEnrolledTTL = 30 * time.Second
	maxIdentities  = 100000
)

var _ httpin.Identities = (*identities)(nil)

func newIdentities(d store.Devices, clock vigil.Clock) *identities {
	return &identities{devices: d, clock: clock, known: map[string]time.Time{}}
}

// Enrolled reports whether the device has an enrolled identity.
func (s *identities) Enrolled(ctx context.Context, id string) (bool, error) {
	now := s.clock.Now()
	s.mu.Lock()
	until, ok := s.known[id]
	s.mu.Unlock()
	if ok && (until.IsZero() || now.Before(until)) {
		return until.IsZero(), nil
	}
	d, err := s.devices.GetDevice(ctx, id)
	if err != nil && vigil.ErrorCode(err) != vigil.ENOTFOUND {
		return false, err
	}
	enrolled := err == nil && !d.Enrolled.IsZero()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.known) >= maxIdentities {
		s.forgetNotEnrolled()
	}
	if enrolled {
		s.known[id] = time.Time{}
	} else if _, marked := s.known[id]; !marked || !s.known[id].IsZero() {
		s.known[id] = now.Add(notEnrolledTTL)
	}
	return enrolled || s.known[id].IsZero(), nil
}

// markEnrolled records that the device enrolled just now.
func (s *identities) markEnrolled(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.known) >= maxIdentities {
		s.forgetNotEnrolled()
	}
	s.known[id] = time.Time{}
}

// forgetNotEnrolled empties the cache but for enrolled devices; the caller
// holds mu.
func (s *identities) forgetNotEnrolled() {
	for id, until := range s.known {
		if !until.IsZero() {
			delete(s.known, id)
		}
	}
}
