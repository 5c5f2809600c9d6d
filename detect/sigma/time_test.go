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

// TestEventTimeCache checks the minute cache against the parser on a
// stream of times that shares minutes, crosses them, and holds other
// forms and invalid times.
func TestEventTimeCache(t *testing.T) {
	var m minuteCache
	base := time.Date(2026, 2, 28, 23, 58, 30, 0, time.UTC)
	var in []string
	for i := 0; i < 400; i++ {
		tm := base.Add(time.Duration(i) * 737 * time.Millisecond)
		in = append(in, tm.Format(time.RFC3339Nano), tm.Format("2006-01-02T15:04:05Z"), tm.Format("2006-01-02T15:04:05.000000Z"))
	}
	// Invalid and other forms right after a time of the same minute.
	in = append(in, "2026-03-01T00:01:00Z", "2026-03-01T00:01:60Z", "2026-03-01T00:01:0xZ", "2026-03-01T00:01:05.Z", "2026-03-01T00:01:05.1234567890Z",
		"2026-03-01T00:01:05+02:00", "2026-03-01T00:01:05.5", "1724172076", "2026-03-01T00:01:05.12a4Z", "",
		"2026-03-01T00:01:5Z", "2026-03-01T00:01:05.123456789Z", "2026-03-01T00:01:65Z")
	for _, v := range in {
		got, gok := m.eventTime(v)
		want, wok := parseTime(v)
		if gok != wok || !got.Equal(want) {
			t.Errorf("%q: cache gives %v %v, parser %v %v", v, got, gok, want, wok)
		}
	}
}
