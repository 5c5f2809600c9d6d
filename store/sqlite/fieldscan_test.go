package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/sqlite"
	"github.com/vigil-iot/vigil/store/storetest"
)

// TestFieldFilterScanBounded: see storetest.FieldScanBounded.
func TestFieldFilterScanBounded(t *testing.T) {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{FieldScanRows: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.FieldScanBounded(t, s)
}

// BenchmarkListEventsFieldFilter lists events with a field filter that
// matches nothing, the worst case: every selected event is read.
//
//	go test -run '^$' -bench ListEventsFieldFilter -benchtime 5x ./store/sqlite/
func BenchmarkListEventsFieldFilter(b *testing.B) {
	const total = 300000
	s, err := sqlite.Open(filepath.Join(b.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	evs := benchEvents(total)
	for i := 0; i < total; i += 1000 {
		if err := s.PutEvents(ctx, evs[i:i+1000]); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		f    store.EventFilter
	}{
		{"nomatch", store.EventFilter{Fields: map[string]string{"user.name": "nobody"}}},
		{"action", store.EventFilter{Fields: map[string]string{"event.action": "logout"}}},
		{"device+nomatch", store.EventFilter{DeviceID: "dev-007", Fields: map[string]string{"user.name": "nobody"}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				if _, _, err := s.ListEvents(ctx, c.f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
