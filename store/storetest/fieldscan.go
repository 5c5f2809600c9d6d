package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// FieldScanBounded checks a store opened to read at most 100 events per
// ListEvents call with field filters (sqlite and postgres
// Options.FieldScanRows = 100): a call that stopped there returns what it
// found with a cursor, and following the cursors finds every match, in
// order, once. s must be empty.
func FieldScanBounded(t *testing.T, s store.Events) {
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
	// 73 matches in pages of 10 are 8 calls; 1000 events read at most 100
	// at a time are at least 10.
	if calls < 10 {
		t.Fatalf("%d calls read 1000 events: the scan is not bounded at 100", calls)
	}
	// Without fields, nothing changes: one page.
	page, next, err := s.ListEvents(ctx, store.EventFilter{DeviceID: "d1", Page: store.Page{Limit: 5}})
	if err != nil || len(page) != 5 || next == "" || page[0].ID != "e0999" {
		t.Fatalf("plain list: %d events, next %q, %v", len(page), next, err)
	}
}
