package hunt

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// TestCacheAgrees runs every query of the agreement test with and without
// a Cache, as events are stored, sealed and the clock moves, and wants
// the same results: aggregations, pages of events and their cursors.
func TestCacheAgrees(t *testing.T) {
	s := openStore(t)
	evs := genEvents(2*SegmentRows+5000, 11)
	now := t0
	big := NewCacheAt(0, func() time.Time { return now })
	small := NewCacheAt(256<<10, func() time.Time { return now }) // evicts
	check := func(stage string) {
		t.Helper()
		for _, qs := range queries {
			for _, full := range []string{qs + " | stats count by device.id, event.kind", qs} {
				q, err := Parse(full, t0)
				if err != nil {
					t.Fatalf("%s: %v", full, err)
				}
				want, err := Run(t.Context(), s, q, Options{Limit: 50})
				if err != nil {
					t.Fatalf("%s: %v", full, err)
				}
				wb, _ := json.Marshal(want)
				for i, c := range []*Cache{big, small, big} {
					got, err := Run(t.Context(), s, q, Options{Limit: 50, Cache: c})
					if err != nil {
						t.Fatalf("%s: %v", full, err)
					}
					if gb, _ := json.Marshal(got); string(gb) != string(wb) {
						t.Fatalf("%s, %q, cache %d: got %.300s\nwant %.300s", stage, full, i, gb, wb)
					}
					if got.Next != "" {
						want2, err := Run(t.Context(), s, q, Options{Limit: 50, Cursor: got.Next})
						if err != nil {
							t.Fatal(err)
						}
						got2, err := Run(t.Context(), s, q, Options{Limit: 50, Cursor: got.Next, Cache: c})
						if err != nil {
							t.Fatal(err)
						}
						a, _ := json.Marshal(want2)
						b, _ := json.Marshal(got2)
						if string(a) != string(b) {
							t.Fatalf("%s, %q, cache %d, second page differs", stage, full, i)
						}
					}
				}
			}
		}
	}
	put := func(evs []vigil.Event) {
		t.Helper()
		if err := s.PutEvents(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
	}
	put(evs[:3000])
	check("tail only")
	put(evs[3000:3100])
	check("tail grown")
	put(evs[3100 : 2*SegmentRows+2000])
	if n, err := Seal(t.Context(), s, 1<<62); err != nil || n != 2 {
		t.Fatalf("Seal = %d, %v", n, err)
	}
	check("sealed")
	put(evs[2*SegmentRows+2000:])
	check("tail after seal grown")
	now = now.Add(TailTTL)
	check("tail expired")
	if h, m, b := big.Stats(); h == 0 || m == 0 || b == 0 {
		t.Errorf("big cache: %d hits, %d misses, %d bytes", h, m, b)
	}
	if _, _, b := small.Stats(); b > 256<<10 {
		t.Errorf("small cache holds %d bytes, over its budget", b)
	}
}
