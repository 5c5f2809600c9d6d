package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/postgres"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// partitionNames lists the partitions of the events table in schema.
func partitionNames(t *testing.T, schema string) []string {
	t.Helper()
	c, err := pgx.Connect(t.Context(), testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(t.Context())
	rows, err := c.Query(t.Context(), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = (quote_ident($1) || '.events')::regclass ORDER BY 1`, schema)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func day(t time.Time) int64 { return t.UnixNano() / int64(24*time.Hour) }

func ids(events []vigil.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.ID)
	}
	slices.Sort(out)
	return out
}

// TestPartitions: events land in day partitions created on demand and
// ahead, times far off in the default partition; retention drops the days
// before the cut whole, keeps the evidence of open alerts, and deletes the
// rest before the cut.
func TestPartitions(t *testing.T) {
	now := time.Date(2031, 7, 10, 6, 0, 0, 0, time.UTC) // any date works: the store's clock is set
	s := openOpts(t, postgres.Options{Clock: fixedClock{now}})
	defer s.Close()
	ev := func(id string, at time.Time) vigil.Event {
		return vigil.Event{ID: id, Time: at, Kind: vigil.KindAuth, DeviceID: "dev-1"}
	}
	events := []vigil.Event{
		ev("old", now.AddDate(0, 0, -30)),      // outside the window: default partition
		ev("yesterday", now.AddDate(0, 0, -1)), // its own day
		ev("evidence", now.AddDate(0, 0, -1)),  // cited by an open alert
		ev("early", now.Add(-5*time.Hour)),     // today, before the cut
		ev("late", now.Add(time.Hour)),         // today, after the cut
		ev("future", now.AddDate(0, 0, 1)),     // tomorrow, created ahead
		ev("far", now.AddDate(1, 0, 0)),        // a wrong clock: default partition
	}
	if err := s.PutEvents(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"events_default",
		postgres.PartitionName(day(now) - 1), postgres.PartitionName(day(now)),
		postgres.PartitionName(day(now) + 1), postgres.PartitionName(day(now) + 2),
	}
	slices.Sort(want)
	if got := partitionNames(t, s.Schema()); !slices.Equal(got, want) {
		t.Fatalf("partitions = %v, want %v", got, want)
	}
	// A redelivered batch is skipped, COPY or not.
	if err := s.PutEvents(t.Context(), events[1:3]); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountEvents(t.Context()); err != nil || n != int64(len(events)) {
		t.Fatalf("CountEvents after a redelivery = %d, %v; want %d", n, err, len(events))
	}
	if err := s.PutAlert(t.Context(), vigil.Alert{ID: "al-1", RuleID: "r", DeviceID: "dev-1", Created: now, EventIDs: []string{"evidence"}}); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteEventsBefore(t.Context(), now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 { // old, yesterday, early
		t.Fatalf("DeleteEventsBefore removed %d, want 3", n)
	}
	if got := partitionNames(t, s.Schema()); slices.Contains(got, postgres.PartitionName(day(now)-1)) {
		t.Fatalf("yesterday's partition is still there: %v", got)
	}
	left, _, err := s.ListEvents(t.Context(), store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(left), []string{"evidence", "far", "future", "late"}; !slices.Equal(got, want) {
		t.Fatalf("events after retention = %v, want %v", got, want)
	}
	if _, err := s.GetEvent(t.Context(), "evidence"); err != nil {
		t.Fatalf("GetEvent of kept evidence: %v", err)
	}
}

// TestPartitionsWholeDays: with RetainWholeDays, retention keeps the day
// of the cut whole.
func TestPartitionsWholeDays(t *testing.T) {
	now := time.Date(2031, 7, 10, 6, 0, 0, 0, time.UTC)
	s := openOpts(t, postgres.Options{Clock: fixedClock{now}, RetainWholeDays: true})
	defer s.Close()
	events := []vigil.Event{
		{ID: "yesterday", Time: now.AddDate(0, 0, -1), Kind: vigil.KindAuth},
		{ID: "early", Time: now.Add(-5 * time.Hour), Kind: vigil.KindAuth},
	}
	if err := s.PutEvents(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteEventsBefore(t.Context(), now.Add(-time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("DeleteEventsBefore = %d, %v; want 1 (yesterday's partition)", n, err)
	}
	if _, err := s.GetEvent(t.Context(), "early"); err != nil {
		t.Fatalf("GetEvent of an event of the cut's day: %v", err)
	}
}

// TestMigrateUnpartitioned: a store of a version before partitioning, with
// events, is migrated on Open: every event is kept with its seq, and the
// day partitions the store creates take their days' rows out of the
// default partition.
func TestMigrateUnpartitioned(t *testing.T) {
	url := testURL(t)
	old := postgres.MigrationsBefore("PARTITION BY RANGE")
	if len(old) == 0 {
		t.Fatal("no migration partitions the events table")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "vigil_test_" + hex.EncodeToString(b[:])
	c, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	t.Cleanup(func() { c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE") })
	for _, q := range []string{"CREATE SCHEMA " + schema, "SET search_path = " + schema,
		"CREATE TABLE vigil_schema_version (version integer NOT NULL)",
		fmt.Sprintf("INSERT INTO vigil_schema_version VALUES (%d)", len(old))} {
		if _, err := c.Exec(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	for i, q := range old {
		if _, err := c.Exec(t.Context(), q); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
	}
	now := time.Date(2031, 7, 10, 6, 0, 0, 0, time.UTC)
	var events []vigil.Event
	for i := range 100 {
		events = append(events, vigil.Event{ID: fmt.Sprintf("ev-%03d", i), Time: now.Add(-time.Duration(i) * 30 * time.Minute), Kind: vigil.KindAuth})
	}
	for _, e := range events {
		if _, err := c.Exec(t.Context(), `INSERT INTO events(id, time, device_id, kind, source, category, action, outcome, severity, body)
			VALUES ($1, $2, '', $3, '', '', '', '', 0, $4)`, e.ID, e.Time.UnixNano(), e.Kind,
			fmt.Sprintf(`{"id":%q,"time":%q,"kind":%q}`, e.ID, e.Time.Format(time.RFC3339Nano), e.Kind)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := postgres.Open(t.Context(), url, postgres.Options{Schema: schema, Clock: fixedClock{now}})
	if err != nil {
		t.Fatalf("Open of an unpartitioned store: %v", err)
	}
	defer s.Close()
	if n, err := s.CountEvents(t.Context()); err != nil || n != 100 {
		t.Fatalf("CountEvents after migration = %d, %v; want 100", n, err)
	}
	// Today's partition took today's rows (ev-000 to ev-012) from the default.
	var inToday, maxSeq int64
	if err := c.QueryRow(t.Context(), "SELECT count(*) FROM "+postgres.PartitionName(day(now))).Scan(&inToday); err != nil || inToday != 13 {
		t.Fatalf("rows in today's partition = %d, %v; want 13", inToday, err)
	}
	if err := c.QueryRow(t.Context(), "SELECT max(seq) FROM events").Scan(&maxSeq); err != nil || maxSeq != 100 {
		t.Fatalf("max(seq) = %d, %v; want 100 (seq kept)", maxSeq, err)
	}
	if err := s.PutEvents(t.Context(), []vigil.Event{{ID: "new", Time: now, Kind: vigil.KindAuth}}); err != nil {
		t.Fatal(err)
	}
	after, err := s.EventsAfter(t.Context(), 100, 10)
	if err != nil || len(after) != 1 {
		t.Fatalf("EventsAfter(100) = %d events, %v; want the new one", len(after), err)
	}
	list, _, err := s.ListEvents(t.Context(), store.EventFilter{Page: store.Page{Limit: 1000}})
	if err != nil || len(list) != 101 || list[0].ID != "new" || list[100].ID != "ev-099" {
		t.Fatalf("ListEvents after migration: %d events, %v", len(list), err)
	}
}

// TestCopyEscapes: the characters COPY's text format escapes come back
// as stored, in columns and in the body.
func TestCopyEscapes(t *testing.T) {
	s := open(t)
	defer s.Close()
	odd := "a\\b\tc\nd\re\\N\\."
	e := vigil.Event{ID: "ev\t1", Time: time.Now(), Kind: odd, DeviceID: odd, Fields: map[string]any{odd: odd}}
	if err := s.PutEvents(t.Context(), []vigil.Event{e}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetEvent(t.Context(), "ev\t1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != odd || got.DeviceID != odd || got.Fields[odd] != odd {
		t.Fatalf("stored %+v", got)
	}
	list, _, err := s.ListEvents(t.Context(), store.EventFilter{Kind: odd, DeviceID: odd})
	if err != nil || len(list) != 1 {
		t.Fatalf("ListEvents by the odd kind = %d events, %v", len(list), err)
	}
}
