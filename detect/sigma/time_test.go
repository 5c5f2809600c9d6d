package sigma

import (
	"testing"
	"time"
)

// parseUTC (the fast path of parseTime) must agree with time.Parse.
func TestParseUTCAgreesWithTimeParse(t *testing.T) {
	for _, v := range []string{"2026-08-21T01:22:14.987Z", "2026-08-21T01:22:14Z", "2024-02-29T23:59:59.123456789Z",
		"2026-01-01T00:00:00.1Z", "2023-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-08-21T01:22:14.Z",
		"2026-08-21T01:22:14.98a7Z", "2026-08-21T24:00:00Z", "2026-08-21T01:22:60Z", "2026-08-21T01:22:14+02:00", "0000-01-01T00:00:00Z"} {
		checkParseUTC(t, v)
	}
}

func FuzzParseUTC(f *testing.F) {
	f.Add("2026-08-21T01:22:14.987Z")
	f.Add("2024-02-29T23:59:59.123456789Z")
	f.Fuzz(checkParseUTC)
}

func checkParseUTC(t *testing.T, v string) {
	a, ok := parseUTC(v)
	if !ok {
		return // parseTime falls back to time.Parse
	}
	b, err := time.Parse(time.RFC3339Nano, v)
	if err != nil || !a.Equal(b) || a.Location() != b.Location() {
		t.Errorf("%q: parseUTC %v, time.Parse %v %v", v, a, b, err)
	}
}
