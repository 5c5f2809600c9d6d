package sensor

import (
	"math"
	"testing"
	"time"
)

func TestSubMatchesTimeSub(t *testing.T) {
	times := []time.Time{
		time.Unix(0, 0), time.Unix(1700000000, 999999999), time.Unix(1700000000, 1), time.Unix(1700000120, 5e8),
		time.Unix(1<<32-1, 999999999), time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(2199, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(math.MaxInt64/2, 0), time.Unix(math.MinInt64/2, 0), {}, time.Unix(1700000000, 0).Local(),
	}
	for _, a := range times {
		for _, b := range times {
			if got, want := sub(a, b), a.Sub(b); got != want {
				t.Errorf("sub(%v, %v) = %v, want %v", a, b, got, want)
			}
		}
	}
}
