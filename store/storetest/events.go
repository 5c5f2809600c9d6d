package storetest

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// fullEvent returns an event with every field set.
func fullEvent(id string, at time.Time) vigil.Event {
	return vigil.Event{
		ID:       id,
		Time:     at,
		Received: at.Add(150 * time.Millisecond).In(elsewhere),
		DeviceID: "cam-1",
		Source:   "agent",
		// Provenance is kept as it is.
		Provenance: "device-cert:cam-1",
		Kind:       vigil.KindAuth,
		Category:   "authentication",
		Action:     "login",
		Outcome:    vigil.OutcomeFailure,
		Severity:   vigil.SeverityMedium,
		Network: &vigil.Network{
			Transport: "tcp",
			SrcIP:     netip.MustParseAddr("10.0.0.7"),
			SrcPort:   51515,
			DstIP:     netip.MustParseAddr("fd00::1"),
			DstPort:   23,
		},
		Fields: map[string]any{
			"user.name":        "root",
			"auth.attempts":    3.0,
			"auth.ratio":       0.25,
			"auth.interactive": true,
			"auth.remote":      false,
			"process.args":     []string{"-l", "root", ""},
			"message":          "ünïcode \"quoted\" \\ <tag> & 'single'\n\ttab",
			"empty":            "",
		},
	}
}

func normEvent(e vigil.Event) vigil.Event {
	e.Time = e.Time.UTC()
	e.Received = e.Received.UTC()
	return e
}

func normEvents(es []vigil.Event) []vigil.Event {
	out := make([]vigil.Event, len(es))
	for i, e := range es {
		out[i] = normEvent(e)
	}
	return out
}

func testEventRoundTrip(t *testing.T, s store.Store) {
	full := fullEvent("ev-full", base.In(elsewhere))
	minimal := vigil.Event{ID: "ev-min", Time: base.Add(time.Second), Kind: vigil.KindSystem}
	must(t, s.PutEvents(ctx(t), []vigil.Event{full, minimal}), "PutEvents")
	for _, want := range []vigil.Event{full, minimal} {
		got, err := s.GetEvent(ctx(t), want.ID)
		must(t, err, "GetEvent "+want.ID)
		deepEqual(t, "event "+want.ID, normEvent(got), normEvent(want))
	}
	list, next, err := s.ListEvents(ctx(t), store.EventFilter{})
	must(t, err, "ListEvents")
	if next != "" {
		t.Errorf("ListEvents of 2 events gave a next cursor %q", next)
	}
	deepEqual(t, "listed events", normEvents(list), normEvents([]vigil.Event{minimal, full}))
	n, err := s.CountEvents(ctx(t))
	must(t, err, "CountEvents")
	if n != 2 {
		t.Fatalf("CountEvents = %d, want 2", n)
	}
	must(t, s.PutEvents(ctx(t), nil), "PutEvents(nil)")
}

func testEventDedup(t *testing.T, s store.Store) {
	first := fullEvent("ev-1", base)
	must(t, s.PutEvents(ctx(t), []vigil.Event{first}), "PutEvents")
	again := first
	again.Action = "logout"
	again.Fields = map[string]any{"user.name": "other"}
	second := fullEvent("ev-2", base.Add(time.Second))
	// The retry carries the same id twice in one batch as well.
	must(t, s.PutEvents(ctx(t), []vigil.Event{again, second, again, second}), "PutEvents with duplicates")
	n, err := s.CountEvents(ctx(t))
	must(t, err, "CountEvents")
	if n != 2 {
		t.Fatalf("CountEvents = %d after duplicates, want 2", n)
	}
	got, err := s.GetEvent(ctx(t), "ev-1")
	must(t, err, "GetEvent")
	deepEqual(t, "event kept on duplicate", normEvent(got), normEvent(first))
	list, _, err := s.ListEvents(ctx(t), store.EventFilter{})
	must(t, err, "ListEvents")
	sameIDs(t, "events after duplicates", ids(list, eventID), []string{"ev-2", "ev-1"})
}

func testEventConcurrentPut(t *testing.T, s store.Store) {
	// Writers overlap: each id is sent by two of them.
	const writers, perWriter = 4, 200
	errs := make(chan error, writers*perWriter)
	runConcurrently(writers, func(w int) {
		var batch []vigil.Event
		for i := range perWriter {
			k := (w/2)*perWriter + i
			batch = append(batch, vigil.Event{ID: name("ev", k), Time: base.Add(time.Duration(k) * time.Millisecond), Kind: vigil.KindNetwork})
			if len(batch) == 50 {
				errs <- s.PutEvents(ctx(t), batch)
				batch = nil
			}
		}
	})
	close(errs)
	for err := range errs {
		must(t, err, "concurrent PutEvents")
	}
	n, err := s.CountEvents(ctx(t))
	must(t, err, "CountEvents")
	if want := int64(writers / 2 * perWriter); n != want {
		t.Fatalf("CountEvents = %d, want %d", n, want)
	}
}

func testEventInvalid(t *testing.T, s store.Store) {
	good := vigil.Event{ID: "ev-good", Time: base, Kind: vigil.KindAuth}
	err := s.PutEvents(ctx(t), []vigil.Event{{Time: base, Kind: vigil.KindAuth}, good})
	wantCode(t, err, vigil.EINVALID, "PutEvents with an event without id")
	got, err := s.GetEvent(ctx(t), "ev-good")
	must(t, err, "the valid event of a batch with an invalid one must be stored")
	deepEqual(t, "valid event", normEvent(got), normEvent(good))
	n, err := s.CountEvents(ctx(t))
	must(t, err, "CountEvents")
	if n != 1 {
		t.Fatalf("CountEvents = %d, want 1", n)
	}
}

func testEventNotFound(t *testing.T, s store.Store) {
	_, err := s.GetEvent(ctx(t), "no-such-event")
	wantCode(t, err, vigil.ENOTFOUND, "GetEvent of a missing event")
	must(t, s.PutEvents(ctx(t), []vigil.Event{{ID: "ev-1", Time: base, Kind: vigil.KindAuth}}), "PutEvents")
	_, err = s.GetEvent(ctx(t), "ev-2")
	wantCode(t, err, vigil.ENOTFOUND, "GetEvent of a missing event")
}

// filterEvents is the data set of the filter tests: 60 events at distinct
// times with fixed fields and Fields of every type.
func filterEvents() []vigil.Event {
	kinds := []string{vigil.KindAuth, vigil.KindProcess, vigil.KindNetwork, vigil.KindHealth}
	actions := []string{"login", "exec", "connect", "listen", ""}
	users := []string{"root", "admin", "pi"}
	var out []vigil.Event
	for i := range 60 {
		e := vigil.Event{
			ID:       name("ev", i),
			Time:     base.Add(time.Duration(i) * time.Second),
			DeviceID: name("dev", i%3),
			Source:   []string{"agent", "sensor"}[i%2],
			Kind:     kinds[i%4],
			Category: "cat" + fmt.Sprint(i%2),
			Action:   actions[i%5],
			Outcome:  []string{vigil.OutcomeSuccess, vigil.OutcomeFailure, ""}[i%3],
			Severity: vigil.Severity(i % 6),
			Fields: map[string]any{
				"count": float64(i % 6),
				"ratio": float64(i%4) / 2,
				"ok":    i%2 == 0,
				"list":  []string{"a", fmt.Sprint(i % 2)},
			},
		}
		if i%7 != 0 {
			e.Fields["user.name"] = users[i%3]
		}
		if i%2 == 0 {
			e.Network = &vigil.Network{
				Transport: []string{"tcp", "udp"}[i%4/2],
				SrcIP:     netip.AddrFrom4([4]byte{10, 0, 0, byte(i % 4)}),
				SrcPort:   uint16(40000 + i),
				DstIP:     netip.MustParseAddr("192.168.1.1"),
				DstPort:   []uint16{22, 23}[i%3%2],
			}
		} else if i%5 == 0 {
			// No 5-tuple: a "source.ip" field from Fields stands in.
			e.Fields["source.ip"] = "10.0.0.3"
		}
		out = append(out, e)
	}
	return out
}

// matchEvent is the reference semantics of store.EventFilter.
func matchEvent(e vigil.Event, f store.EventFilter) bool {
	if f.DeviceID != "" && e.DeviceID != f.DeviceID {
		return false
	}
	if f.Kind != "" && e.Kind != f.Kind {
		return false
	}
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !e.Time.Before(f.Until) {
		return false
	}
	for k, v := range f.Fields {
		got, _ := e.FieldString(k) // an absent field reads as ""
		if got != v {
			return false
		}
	}
	return true
}

func testEventFilters(t *testing.T, s store.Store) {
	all := filterEvents()
	// Store in an order other than time order.
	shuffled := slices.Clone(all)
	slices.Reverse(shuffled[20:])
	must(t, s.PutEvents(ctx(t), shuffled), "PutEvents")
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	cases := []store.EventFilter{
		{},
		{DeviceID: "dev-001"},
		{DeviceID: "dev-none"},
		{Kind: vigil.KindAuth},
		{Since: at(10)},
		{Until: at(10)},
		{Since: at(10), Until: at(20)},
		{Since: at(10).Add(time.Nanosecond), Until: at(20).Add(time.Nanosecond)},
		{Since: at(10).In(elsewhere), Until: at(20).In(elsewhere)},
		{DeviceID: "dev-002", Kind: vigil.KindProcess, Since: at(5), Until: at(50)},
		{Fields: map[string]string{"event.action": "login"}},
		{Fields: map[string]string{"action": "connect"}},
		{Fields: map[string]string{"user.name": "root"}},
		{Fields: map[string]string{"user.name": "nobody"}},
		{Fields: map[string]string{"device.id": "dev-002"}},
		{Fields: map[string]string{"event.id": "ev-007"}},
		{Fields: map[string]string{"event.kind": vigil.KindNetwork}},
		{Fields: map[string]string{"event.source": "sensor"}},
		{Fields: map[string]string{"event.category": "cat1"}},
		{Fields: map[string]string{"event.outcome": vigil.OutcomeFailure}},
		{Fields: map[string]string{"event.severity": "3"}},
		{Fields: map[string]string{"network.transport": "udp"}},
		{Fields: map[string]string{"source.ip": "10.0.0.2"}},
		{Fields: map[string]string{"source.ip": "10.0.0.3"}},
		{Fields: map[string]string{"source.port": "40010"}},
		{Fields: map[string]string{"destination.ip": "192.168.1.1"}},
		{Fields: map[string]string{"destination.port": "23"}},
		{Fields: map[string]string{"count": "4"}},
		{Fields: map[string]string{"ratio": "1.5"}},
		{Fields: map[string]string{"ok": "true"}},
		{Fields: map[string]string{"ok": "false"}},
		{Fields: map[string]string{"list": "a,1"}},
		{Fields: map[string]string{"user.name": "pi", "event.action": "exec"}},
		{DeviceID: "dev-000", Kind: vigil.KindAuth, Since: at(3), Fields: map[string]string{"user.name": "root", "ok": "true"}},
		{Fields: map[string]string{"no.such.field": "x"}},
	}
	for _, f := range cases {
		want := filterSlice(all, func(e vigil.Event) bool { return matchEvent(e, f) })
		newestFirst(want, func(e vigil.Event) time.Time { return e.Time }, eventID)
		for _, limit := range []int{1000, 4} {
			got := walk(t, limit, func(p store.Page) ([]vigil.Event, string, error) {
				g := f
				g.Page = p
				return s.ListEvents(ctx(t), g)
			})
			sameIDs(t, fmt.Sprintf("ListEvents(%+v) limit %d", f, limit), ids(got, eventID), ids(want, eventID))
			if limit == 1000 && len(got) > 0 {
				deepEqual(t, fmt.Sprintf("ListEvents(%+v) events", f), normEvents(got), normEvents(want))
			}
		}
	}
}

// testEventFilterHostile checks that field names are data, never SQL: a
// store either rejects them (EINVALID) or matches no event.
func testEventFilterHostile(t *testing.T, s store.Store) {
	must(t, s.PutEvents(ctx(t), filterEvents()), "PutEvents")
	for _, name := range []string{
		"x' OR '1'='1", `x") OR 1=1 --`, `user.name"`, `a\b`, "$", "[0]", "fields", "*", "user.name' --",
	} {
		got, _, err := s.ListEvents(ctx(t), store.EventFilter{Fields: map[string]string{name: "root"}})
		if err != nil {
			wantCode(t, err, vigil.EINVALID, fmt.Sprintf("ListEvents with field name %q", name))
			continue
		}
		if len(got) != 0 {
			t.Fatalf("ListEvents with field name %q matched %d events", name, len(got))
		}
	}
}

// checkNewestFirst fails unless events are ordered by time, newest first.
func checkNewestFirst(t *testing.T, what string, events []vigil.Event) {
	t.Helper()
	for i := 1; i < len(events); i++ {
		if events[i].Time.After(events[i-1].Time) {
			t.Fatalf("%s: %s (%s) listed after %s (%s)", what, events[i].ID, events[i].Time, events[i-1].ID, events[i-1].Time)
		}
	}
}

// tiedEvents returns n events over only a few distinct times, so that
// pages end in the middle of a run of equal times.
func tiedEvents(prefix string, n int) []vigil.Event {
	out := make([]vigil.Event, n)
	for i := range out {
		out[i] = vigil.Event{ID: name(prefix, i), Time: base.Add(time.Duration(i%5) * time.Second), DeviceID: name("dev", i%2), Kind: vigil.KindAuth}
	}
	return out
}

func testEventPagination(t *testing.T, s store.Store) {
	events := tiedEvents("ev", 63)
	must(t, s.PutEvents(ctx(t), events[:40]), "PutEvents")
	must(t, s.PutEvents(ctx(t), events[40:]), "PutEvents")
	for _, limit := range []int{1, 7, 9, 21, 63, 64} {
		got := walk(t, limit, func(p store.Page) ([]vigil.Event, string, error) {
			return s.ListEvents(ctx(t), store.EventFilter{Page: p})
		})
		what := fmt.Sprintf("pages of %d", limit)
		noDuplicates(t, what, ids(got, eventID))
		checkNewestFirst(t, what, got)
		sameIDs(t, what, sortedCopy(ids(got, eventID)), ids(events, eventID))
	}
	// Pagination with a filter that keeps every other event.
	got := walk(t, 5, func(p store.Page) ([]vigil.Event, string, error) {
		return s.ListEvents(ctx(t), store.EventFilter{DeviceID: "dev-001", Page: p})
	})
	want := filterSlice(events, func(e vigil.Event) bool { return e.DeviceID == "dev-001" })
	sameIDs(t, "filtered pages", sortedCopy(ids(got, eventID)), ids(want, eventID))
	checkNewestFirst(t, "filtered pages", got)
}

func testEventPaginationConcurrent(t *testing.T, s store.Store) {
	original := tiedEvents("ev", 100)
	must(t, s.PutEvents(ctx(t), original), "PutEvents")

	// Between pages, events are inserted newer than everything, older than
	// everything, and at the very time the last page ended on.
	var (
		got    []vigil.Event
		cursor string
		extra  int
	)
	for page := 0; ; page++ {
		list, next, err := s.ListEvents(ctx(t), store.EventFilter{Page: store.Page{Limit: 6, Cursor: cursor}})
		must(t, err, "ListEvents")
		got = append(got, list...)
		if next == "" {
			break
		}
		last := list[len(list)-1].Time
		ins := []vigil.Event{
			{ID: name("new", extra), Time: base.Add(time.Hour), Kind: vigil.KindAuth},
			{ID: name("new", extra+1), Time: base.Add(-time.Hour), Kind: vigil.KindAuth},
			{ID: name("new", extra+2), Time: last, Kind: vigil.KindAuth},
		}
		extra += len(ins)
		must(t, s.PutEvents(ctx(t), ins), "PutEvents between pages")
		cursor = next
	}
	checkPaginationUnderInserts(t, got, original)

	// The same with a writer running during the whole walk.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			e := vigil.Event{ID: name("bg", i), Time: base.Add(time.Duration(i%7-3) * time.Second), Kind: vigil.KindAuth}
			if err := s.PutEvents(ctx(t), []vigil.Event{e}); err != nil {
				t.Errorf("background PutEvents: %v", err)
				return
			}
		}
	}()
	got = walk(t, 8, func(p store.Page) ([]vigil.Event, string, error) {
		return s.ListEvents(ctx(t), store.EventFilter{Page: p})
	})
	close(stop)
	wg.Wait()
	checkPaginationUnderInserts(t, got, original)
}

// checkPaginationUnderInserts checks a walk made while events were being
// inserted: no event twice, newest first, every original event present.
func checkPaginationUnderInserts(t *testing.T, got, original []vigil.Event) {
	t.Helper()
	noDuplicates(t, "pages under inserts", ids(got, eventID))
	checkNewestFirst(t, "pages under inserts", got)
	seen := map[string]bool{}
	for _, e := range got {
		seen[e.ID] = true
	}
	for _, e := range original {
		if !seen[e.ID] {
			t.Fatalf("pages under inserts: %s (stored before the walk) is missing", e.ID)
		}
	}
}

func testEventLimits(t *testing.T, s store.Store) {
	events := make([]vigil.Event, 1005)
	for i := range events {
		events[i] = vigil.Event{ID: fmt.Sprintf("ev-%04d", i), Time: base.Add(time.Duration(i) * time.Millisecond), Kind: vigil.KindHealth}
	}
	must(t, s.PutEvents(ctx(t), events), "PutEvents")
	list, next, err := s.ListEvents(ctx(t), store.EventFilter{})
	must(t, err, "ListEvents")
	if len(list) != 100 || next == "" {
		t.Fatalf("default page: %d events, cursor %q; want 100 and a cursor", len(list), next)
	}
	list, next, err = s.ListEvents(ctx(t), store.EventFilter{Page: store.Page{Limit: 5000}})
	must(t, err, "ListEvents")
	if len(list) != 1000 || next == "" {
		t.Fatalf("page of 5000: %d events, cursor %q; want 1000 (the cap) and a cursor", len(list), next)
	}
	list, next, err = s.ListEvents(ctx(t), store.EventFilter{Page: store.Page{Limit: 1000, Cursor: next}})
	must(t, err, "ListEvents")
	if len(list) != 5 || next != "" {
		t.Fatalf("last page: %d events, cursor %q; want 5 and no cursor", len(list), next)
	}
	if list[4].ID != "ev-0000" {
		t.Fatalf("last event listed is %s, want ev-0000", list[4].ID)
	}
}

func testEventBadPage(t *testing.T, s store.Store) {
	must(t, s.PutEvents(ctx(t), tiedEvents("ev", 10)), "PutEvents")
	_, _, err := s.ListEvents(ctx(t), store.EventFilter{Page: store.Page{Cursor: "not a cursor"}})
	wantCode(t, err, vigil.EINVALID, "ListEvents with a bad cursor")
	_, _, err = s.ListEvents(ctx(t), store.EventFilter{Page: store.Page{Limit: -1}})
	wantCode(t, err, vigil.EINVALID, "ListEvents with a negative limit")
}

func testEventRetention(t *testing.T, s store.Store) {
	var events []vigil.Event
	for i := range 30 {
		events = append(events, vigil.Event{ID: name("ev", i), Time: base.Add(time.Duration(i) * time.Minute), Kind: vigil.KindHealth})
	}
	must(t, s.PutEvents(ctx(t), events), "PutEvents")
	cut := base.Add(10 * time.Minute) // ev-010 is at the cut and stays
	n, err := s.DeleteEventsBefore(ctx(t), cut.In(elsewhere))
	must(t, err, "DeleteEventsBefore")
	if n != 10 {
		t.Fatalf("DeleteEventsBefore removed %d, want 10", n)
	}
	count, err := s.CountEvents(ctx(t))
	must(t, err, "CountEvents")
	if count != 20 {
		t.Fatalf("CountEvents = %d after retention, want 20", count)
	}
	_, err = s.GetEvent(ctx(t), "ev-009")
	wantCode(t, err, vigil.ENOTFOUND, "GetEvent of an event removed by retention")
	_, err = s.GetEvent(ctx(t), "ev-010")
	must(t, err, "GetEvent of the event at the cut")
	left := walk(t, 0, func(p store.Page) ([]vigil.Event, string, error) {
		return s.ListEvents(ctx(t), store.EventFilter{Page: p})
	})
	want := slices.Clone(events[10:])
	slices.Reverse(want)
	sameIDs(t, "events after retention", ids(left, eventID), ids(want, eventID))
	n, err = s.DeleteEventsBefore(ctx(t), cut)
	must(t, err, "DeleteEventsBefore again")
	if n != 0 {
		t.Fatalf("second DeleteEventsBefore removed %d, want 0", n)
	}
	// A deleted id can be stored again (retention is not a tombstone).
	must(t, s.PutEvents(ctx(t), events[:1]), "PutEvents of a deleted id")
	if _, err := s.GetEvent(ctx(t), "ev-000"); err != nil {
		t.Fatalf("GetEvent of a re-stored event: %v", err)
	}
	n, err = s.DeleteEventsBefore(ctx(t), base.Add(time.Hour))
	must(t, err, "DeleteEventsBefore everything")
	if n != 21 {
		t.Fatalf("DeleteEventsBefore removed %d, want 21", n)
	}
	count, err = s.CountEvents(ctx(t))
	must(t, err, "CountEvents")
	if count != 0 {
		t.Fatalf("CountEvents = %d, want 0", count)
	}
}

// testRetentionKeepsEvidence checks that retention keeps the events open
// alerts cite (no incident, or an open or contained one) and removes those
// of alerts whose incident was closed, once it is.
func testRetentionKeepsEvidence(t *testing.T, s store.Store) {
	var events []vigil.Event
	for i := range 8 {
		events = append(events, vigil.Event{ID: name("ev", i), Time: base.Add(time.Duration(i) * time.Minute), Kind: vigil.KindAuth})
	}
	must(t, s.PutEvents(ctx(t), events), "PutEvents")
	incidents := map[string]vigil.IncidentStatus{
		"inc-open": vigil.IncidentOpen, "inc-contained": vigil.IncidentContained,
		"inc-resolved": vigil.IncidentResolved, "inc-fp": vigil.IncidentFalsePositive,
	}
	for id, st := range incidents {
		inc := fullIncident(id)
		inc.Status = st
		must(t, s.PutIncident(ctx(t), inc), "PutIncident")
	}
	alert := func(id, incident string, evs ...string) {
		a := fullAlert(id)
		a.DedupKey, a.IncidentID, a.EventIDs = id, incident, evs
		must(t, s.PutAlert(ctx(t), a), "PutAlert")
	}
	alert("al-open", "inc-open", "ev-000", "ev-001")
	alert("al-contained", "inc-contained", "ev-002")
	alert("al-none", "", "ev-003")
	alert("al-lost", "inc-not-stored", "ev-004")
	alert("al-resolved", "inc-resolved", "ev-005")
	alert("al-fp", "inc-fp", "ev-006")
	alert("al-noevidence", "inc-open")
	// ev-007 is cited by nobody.

	n, err := s.DeleteEventsBefore(ctx(t), base.Add(time.Hour))
	must(t, err, "DeleteEventsBefore")
	if n != 3 {
		t.Errorf("DeleteEventsBefore removed %d, want 3 (ev-005, ev-006, ev-007)", n)
	}
	for i, kept := range []bool{true, true, true, true, true, false, false, false} {
		_, err := s.GetEvent(ctx(t), name("ev", i))
		switch {
		case kept && err != nil:
			t.Errorf("%s, evidence of an open alert, was removed by retention: %v", name("ev", i), err)
		case !kept && vigil.ErrorCode(err) != vigil.ENOTFOUND:
			t.Errorf("%s: GetEvent after retention: %v, want ENOTFOUND", name("ev", i), err)
		}
	}

	// Once its incident is resolved, the alert's evidence ages out too.
	inc, err := s.GetIncident(ctx(t), "inc-open")
	must(t, err, "GetIncident")
	inc.Status, inc.Resolved = vigil.IncidentResolved, base.Add(2*time.Hour)
	must(t, s.PutIncident(ctx(t), inc), "PutIncident (resolve)")
	n, err = s.DeleteEventsBefore(ctx(t), base.Add(time.Hour))
	must(t, err, "DeleteEventsBefore after resolving")
	if n != 2 {
		t.Errorf("DeleteEventsBefore after resolving removed %d, want 2 (ev-000, ev-001)", n)
	}
	count, err := s.CountEvents(ctx(t))
	must(t, err, "CountEvents")
	if count != 3 {
		t.Errorf("CountEvents = %d, want 3 (ev-002, ev-003, ev-004)", count)
	}
}
