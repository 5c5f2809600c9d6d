package alert

import (
	"slices"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
)

// Suppression silences alerts of one rule, one device, or one rule on one
// device, until an expiry. Empty RuleID or DeviceID match any.
type Suppression struct {
	RuleID   string `json:"rule_id,omitempty"`
	DeviceID string `json:"device_id,omitempty"`
	// Until is when the suppression ends (exclusive); zero never ends.
	Until  time.Time `json:"until,omitzero"`
	Reason string    `json:"reason,omitempty"`
}

// Matches reports whether s silences a raised at time at.
func (s Suppression) Matches(a *vigil.Alert, at time.Time) bool {
	if s.RuleID != "" && s.RuleID != a.RuleID {
		return false
	}
	if s.DeviceID != "" && s.DeviceID != a.DeviceID {
		return false
	}
	return s.Until.IsZero() || at.Before(s.Until)
}

// Suppressor holds suppression rules in memory. Alerts are matched at
// their Created time, so a replay is suppressed as the live run was.
// Safe for concurrent use.
type Suppressor struct {
	mu    sync.Mutex
	rules []Suppression
}

// NewSuppressor returns a Suppressor with the given rules.
func NewSuppressor(rules ...Suppression) (*Suppressor, error) {
	s := &Suppressor{}
	for _, r := range rules {
		if err := s.Add(r); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Add adds a rule, replacing one with the same rule id and device.
// Errors: EINVALID for a rule that names neither rule nor device (it would
// silence everything).
func (s *Suppressor) Add(r Suppression) error {
	if r.RuleID == "" && r.DeviceID == "" {
		return vigil.Errorf(vigil.EINVALID, "suppression needs a rule_id, a device_id or both")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = slices.DeleteFunc(s.rules, func(x Suppression) bool {
		return x.RuleID == r.RuleID && x.DeviceID == r.DeviceID
	})
	s.rules = append(s.rules, r)
	return nil
}

// Remove deletes the rule with that rule id and device and reports whether
// there was one.
func (s *Suppressor) Remove(ruleID, deviceID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.rules)
	s.rules = slices.DeleteFunc(s.rules, func(x Suppression) bool {
		return x.RuleID == ruleID && x.DeviceID == deviceID
	})
	return len(s.rules) != n
}

// Rules returns the rules not expired at now.
func (s *Suppressor) Rules(now time.Time) []Suppression {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = slices.DeleteFunc(s.rules, func(x Suppression) bool {
		return !x.Until.IsZero() && !now.Before(x.Until)
	})
	return slices.Clone(s.rules)
}

// Suppressed returns the rule that silences a, if any, matched at a.Created.
func (s *Suppressor) Suppressed(a *vigil.Alert) (Suppression, bool) {
	if s == nil {
		return Suppression{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.rules {
		if r.Matches(a, a.Created) {
			return r, true
		}
	}
	return Suppression{}, false
}
