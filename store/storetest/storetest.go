package storetest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// Run runs the conformance suite. open must return a new, empty store for
// each call; Run closes it when the subtest ends (cleanups registered by
// open run after that).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	fresh := func(t *testing.T) store.Store {
		t.Helper()
		s := open(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Events/RoundTrip", testEventRoundTrip},
		{"Events/Dedup", testEventDedup},
		{"Events/ConcurrentPut", testEventConcurrentPut},
		{"Events/Invalid", testEventInvalid},
		{"Events/NotFound", testEventNotFound},
		{"Events/Filters", testEventFilters},
		{"Events/FilterNames", testEventFilterHostile},
		{"Events/Pagination", testEventPagination},
		{"Events/PaginationConcurrentInserts", testEventPaginationConcurrent},
		{"Events/Limits", testEventLimits},
		{"Events/BadPage", testEventBadPage},
		{"Events/Retention", testEventRetention},
		{"Events/RetentionKeepsEvidence", testRetentionKeepsEvidence},
		{"Devices/RoundTrip", testDeviceRoundTrip},
		{"Devices/List", testDeviceList},
		{"Devices/Health", testHealth},
		{"Devices/MergeReports", testDeviceMergeReports},
		{"Alerts/RoundTrip", testAlertRoundTrip},
		{"Alerts/DedupKey", testAlertDedupKey},
		{"Alerts/List", testAlertList},
		{"Incidents/RoundTrip", testIncidentRoundTrip},
		{"Incidents/List", testIncidentList},
		{"Actions/RoundTrip", testActionRoundTrip},
		{"Actions/List", testActionList},
		{"Audit/Chain", testAuditChain},
		{"Audit/Concurrent", testAuditConcurrent},
		{"Audit/List", testAuditList},
		{"Baselines/RoundTrip", testBaselines},
		{"Exceptions/RoundTrip", testExceptions},
		{"SavedQueries/RoundTrip", testSavedQueries},
		{"Catalogs/RoundTrip", testCatalogs},
		{"Catalogs/ClaimsConcurrent", testClaimsConcurrent},
		{"RetroJobs/RoundTrip", testRetroJobs},
		{"Exceptions/Counters", testExceptionCounters},
		{"Priority/Sort", testPrioritySort},
		{"Users", testUsers},
		{"Sessions", testSessions},
		{"Tokens", testTokens},
		{"Tokens/Concurrent", testTokensConcurrent},
		{"EnrollTokens", testEnrollTokens},
		{"EnrollTokens/Concurrent", testEnrollTokensConcurrent},
		{"Revocations", testRevocations},
		{"Artifacts/RoundTrip", testArtifacts},
		{"UpdatePlans/RoundTrip", testUpdatePlans},
		{"Graph/Merge", testGraphMerge},
		{"Graph/Query", testGraphQuery},
		{"Graph/Invalid", testGraphInvalid},
		{"Graph/Concurrent", testGraphConcurrent},
		{"Graph/Retention", testGraphRetention},
		{"Analytics/Segments", testAnalytics},
		{"Commands", testCommands},
		{"Commands/Concurrent", testCommandsConcurrent},
		{"Commands/Watch", testCommandsWatch},
		{"Commands/ByDevice", testDeviceCommands},
		{"Secrets", testSecrets},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, fresh(t)) })
	}
}

// base is the suite's reference time: nanoseconds set, so that stores
// must keep full precision.
var base = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// elsewhere is a zone other than UTC: stored times come back equal once
// both sides are in UTC.
var elsewhere = time.FixedZone("UTC+2", 2*3600)

func ctx(t *testing.T) context.Context { return t.Context() }

func wantCode(t *testing.T, err error, code, what string) {
	t.Helper()
	if got := vigil.ErrorCode(err); got != code {
		t.Fatalf("%s: error code %q (err %v), want %q", what, got, err, code)
	}
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func deepEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("%s differs\n got: %s\nwant: %s\n(got %#v)", what, g, w, got)
	}
}

// walk reads every page of a list, checking that pages hold at most limit
// items and that the last page, and only it, has an empty cursor.
func walk[T any](t *testing.T, limit int, list func(p store.Page) ([]T, string, error)) []T {
	t.Helper()
	var (
		all    []T
		cursor string
	)
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatal("pagination does not end")
		}
		items, next, err := list(store.Page{Limit: limit, Cursor: cursor})
		must(t, err, "list page")
		if limit > 0 && len(items) > limit {
			t.Fatalf("page of %d items, limit %d", len(items), limit)
		}
		all = append(all, items...)
		if next == "" {
			return all
		}
		if len(items) == 0 {
			t.Fatal("empty page with a next cursor")
		}
		cursor = next
	}
}

// ids returns the ids of items, in order.
func ids[T any](items []T, id func(T) string) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, id(it))
	}
	return out
}

func eventID(e vigil.Event) string       { return e.ID }
func deviceID(d vigil.Device) string     { return d.ID }
func alertID(a vigil.Alert) string       { return a.ID }
func incidentID(i vigil.Incident) string { return i.ID }
func actionID(a vigil.Action) string     { return a.ID }

func sameIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got ids %v, want %v", what, got, want)
	}
}

// newestFirst sorts items by a time, newest first, then by id descending
// (the suite gives distinct times wherever it checks an exact order).
func newestFirst[T any](items []T, at func(T) time.Time, id func(T) string) {
	slices.SortStableFunc(items, func(a, b T) int {
		if c := at(b).Compare(at(a)); c != 0 {
			return c
		}
		return cmp.Compare(id(b), id(a))
	})
}

func filterSlice[T any](items []T, keep func(T) bool) []T {
	var out []T
	for _, it := range items {
		if keep(it) {
			out = append(out, it)
		}
	}
	return out
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func noDuplicates(t *testing.T, what string, ids []string) {
	t.Helper()
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("%s: %s listed twice", what, id)
		}
		seen[id] = true
	}
}

// runConcurrently runs fn(i) for i in [0, n) in parallel and waits.
func runConcurrently(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i)
		}()
	}
	wg.Wait()
}

func name(prefix string, i int) string { return fmt.Sprintf("%s-%03d", prefix, i) }
