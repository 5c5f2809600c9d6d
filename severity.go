package vigil

import (
	"fmt"
	"strings"
)

// Severity ranks events and alerts. The names are Sigma's rule levels.
type Severity int

// Severities, lowest first. The zero value means "not set".
const (
	SeverityInfo Severity = iota + 1
	SeverityLow
	SeverityMedium
	SeverityHigh
	SeverityCritical
)

var severityNames = [...]string{"", "informational", "low", "medium", "high", "critical"}

// String returns the Sigma level name of s, or "" for the zero value.
func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity reads a severity by its name ("info" is accepted for
// "informational") or by its number 1 to 5.
func ParseSeverity(s string) (Severity, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "info":
		return SeverityInfo, nil
	case "1", "2", "3", "4", "5":
		return Severity(s[0] - '0'), nil
	}
	for i, n := range severityNames {
		if i > 0 && n == s {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("cannot parse severity %q: want informational, low, medium, high or critical", s)
}

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity's name or number.
func (s *Severity) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*s = 0
		return nil
	}
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
