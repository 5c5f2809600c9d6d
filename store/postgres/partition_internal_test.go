package postgres

import (
	"testing"
	"time"
)

// FuzzPartitionName: a partition's name gives back its day, and no other
// name parses but those partitionName makes.
func FuzzPartitionName(f *testing.F) {
	for _, s := range []string{"events_p20261207", "events_p19700101", "events_default", "events_p2026120", "events_p20261332", "events_p-0010101"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		day, ok := parsePartitionName(name)
		if ok && partitionName(day) != name {
			t.Fatalf("%q parses as day %d, named %q", name, day, partitionName(day))
		}
	})
}

func TestDayOf(t *testing.T) {
	f := func(at time.Time, want string) {
		t.Helper()
		if got := partitionName(dayOf(at.UnixNano())); got != want {
			t.Errorf("partition of %s = %s, want %s", at, got, want)
		}
	}
	f(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), "events_p20261207")
	f(time.Date(2026, 12, 7, 23, 59, 59, 999999999, time.UTC), "events_p20261207")
	f(time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC), "events_p19691231")
	f(time.Date(2026, 12, 7, 1, 0, 0, 0, time.FixedZone("x", 3*3600)), "events_p20261206")
}
