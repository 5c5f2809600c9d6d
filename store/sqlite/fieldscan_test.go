package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/sqlite"
)

// TestFieldFilterScanBounded: a ListEvents with a field filter reads at
// most FieldScanRows events per call; a call that stopped there returns
// what it found with a cursor, and following the cursors finds every
// match, in order, once.
func TestFieldFilterScanBounded(t *testing.T) {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{FieldScanRows: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	evs := make([]vigil.Event, 1000)
	var want []string
	for i := range evs {
		evs[i] = vigil.Event{ID: fmt.Sprintf("e%04d", i), DeviceID: "d1", Kind: "auth", Time: t0.Add(time.Duration(i) * time.Second),
			Fields: map[string]any{"user.name": "alice"}}
		if i%30 == 0 || (i >= 500 && i < 540) { // rare, then a dense run
			evs[i].Fields["user.name"] = "root"
		}
	}
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Fields["user.name"] == "root" {
			want = append(want, evs[i].ID)
		}
	}
	if err := s.PutEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	f := store.EventFilter{Fields: map[string]string{"user.name": "root"}, Page: store.Page{Limit: 10}}
	var got []string
	calls := 0
	for {
		page, next, err := s.ListEvents(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		calls++
		if len(page) > 10 {
			t.Fatalf("page of %d, want at most 10", len(page))
		}
		for _, e := range page {
			got = append(got, e.ID)
		}
		if next == "" {
			break
		}
		if calls > 100 {
			t.Fatal("the cursor does not move")
		}
		f.Cursor = next
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paged matches\n got %v\nwant %v", got, want)
	}
	// 1000 events, at most 100 read per call: at least 10 calls.
	if calls < 10 {
		t.Fatalf("%d calls read 1000 events: the scan is not bounded at 100", calls)
	}
	// With a device and without fields, nothing changes: one page.
	page, next, err := s.ListEvents(ctx, store.EventFilter{DeviceID: "d1", Page: store.Page{Limit: 5}})
	if err != nil || len(page) != 5 || next == "" || page[0].ID != "e0999" {
		t.Fatalf("plain list: %d events, next %q, %v", len(page), next, err)
	}
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
