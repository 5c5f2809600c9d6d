package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/postgres"
	"github.com/vigil-iot/vigil/store/storetest"
)

const urlVar = "VIGIL_TEST_POSTGRES_URL"

func testURL(t testing.TB) string {
	url := os.Getenv(urlVar)
	if url == "" {
		t.Skipf("%s is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", urlVar)
	}
	return url
}

// open opens a store in a fresh schema of its own, dropped after the test.
func open(t testing.TB) *postgres.Store {
	t.Helper()
	return openOpts(t, postgres.Options{})
}

// openOpts is open with options (the schema is set here).
func openOpts(t testing.TB, opts postgres.Options) *postgres.Store {
	t.Helper()
	url := testURL(t)
	var b [6]byte
	rand.Read(b[:])
	schema := "vigil_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts.Schema = schema
	s, err := postgres.Open(ctx, url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("cannot drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("cannot drop schema %s: %v", schema, err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	testURL(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
	storetest.RunAuditKey(t, func(t *testing.T, key []byte) store.Store {
		s := openOpts(t, postgres.Options{AuditKey: key})
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestNUL checks that NUL characters, which PostgreSQL text and jsonb
// cannot hold, do not make a batch fail.
func TestNUL(t *testing.T) {
	s := open(t)
	defer s.Close()
	e := vigil.Event{ID: "ev-1", Time: time.Now(), Kind: "auth\x00", Fields: map[string]any{"a\x00b": "x\x00y", "l": []string{"\x00"}}}
	if err := s.PutEvents(t.Context(), []vigil.Event{e}); err != nil {
		t.Fatalf("PutEvents: %v", err)
	}
	got, err := s.GetEvent(t.Context(), "ev-1")
	if err != nil {
		t.Fatalf("GetEvent: %v", err)
	}
	if got.Kind != "auth\uFFFD" || got.Fields["a\uFFFDb"] != "x\uFFFDy" {
		t.Fatalf("stored %+v", got)
	}
	r, err := s.AppendAudit(t.Context(), vigil.AuditRecord{Time: time.Now(), Actor: "a\x00"})
	if err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	list, err := s.ListAudit(t.Context(), 0, 0)
	if err != nil || len(list) != 1 || list[0].Hash != r.Hash || list[0].ComputeHash() != r.Hash {
		t.Fatalf("ListAudit = %+v, %v; appended %+v", list, err, r)
	}
}

// TestBodyAsWritten: the body is stored as the JSON text encoding/json
// makes of the event (keys of Fields sorted), through each write path, and
// field filters still read it. (Bodies with NULs: TestNUL.)
func TestBodyAsWritten(t *testing.T) {
	for _, mode := range []string{"copy", "copy-binary", "insert"} {
		t.Run(mode, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			switch mode {
			case "insert":
				postgres.InsertOnly(s)
			case "copy-binary":
				postgres.BinaryCopy(s)
			}
			base := time.Now().UTC()
			events := []vigil.Event{
				{ID: "ev-1", Time: base, DeviceID: "cam-1", Kind: vigil.KindAuth, Severity: vigil.SeverityHigh,
					Network: &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.0.9"), DstPort: 22},
					Fields:  map[string]any{"user.name": "root\t\\x", "z": 1.5, "a": []string{"p", "q"}, "b": true, "n": "<&>\n"}},
				{ID: "ev-2", Time: base.Add(time.Second), Kind: vigil.KindProcess, Fields: map[string]any{"process.name": "sshd"}},
			}
			if err := s.PutEvents(t.Context(), events); err != nil {
				t.Fatal(err)
			}
			var got []string
			if _, err := s.EventBodiesAfter(t.Context(), 0, 10, func(_ int64, body []byte) error {
				got = append(got, string(body))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			for i, e := range events {
				want, _ := json.Marshal(e)
				if i >= len(got) || got[i] != string(want) {
					t.Fatalf("body %d = %q, want %q", i, got, want)
				}
			}
			list, _, err := s.ListEvents(t.Context(), store.EventFilter{Fields: map[string]string{"user.name": "root\t\\x", "source.ip": "10.0.0.9"}})
			if err != nil || len(list) != 1 || list[0].ID != "ev-1" {
				t.Fatalf("ListEvents by fields = %+v, %v", list, err)
			}
		})
	}
}

func TestReopen(t *testing.T) {
	url := testURL(t)
	s := open(t)
	defer s.Close()
	if err := s.PutEvents(t.Context(), []vigil.Event{{ID: "ev-1", Time: time.Now(), Kind: "auth"}}); err != nil {
		t.Fatal(err)
	}
	// A second node on the same schema finds it migrated and shares it.
	schema := s.Schema()
	s2, err := postgres.Open(t.Context(), url, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	defer s2.Close()
	if _, err := s2.GetEvent(t.Context(), "ev-1"); err != nil {
		t.Fatalf("GetEvent through the second store: %v", err)
	}
}

// BenchmarkPutEvents stores batches of 1000 events with COPY (the
// event sink's path) and, for comparison, with INSERT. Besides events/s,
// which on a shared machine says little, it reports the CPU time per
// event of this process (the client: encoding) and of the PostgreSQL
// backends serving it (read from /proc, so only with PostgreSQL on this
// machine; 0 otherwise).
func BenchmarkPutEvents(b *testing.B) {
	b.Run("copy", func(b *testing.B) { benchPut(b, "copy") })
	b.Run("copy-binary", func(b *testing.B) { benchPut(b, "copy-binary") })
	b.Run("insert", func(b *testing.B) { benchPut(b, "insert") })
}

func benchPut(b *testing.B, mode string) {
	var r [4]byte
	rand.Read(r[:])
	app := "vigilbench" + hex.EncodeToString(r[:])
	b.Setenv("PGAPPNAME", app)
	s := open(b)
	defer s.Close()
	switch mode {
	case "insert":
		postgres.InsertOnly(s)
	case "copy-binary":
		postgres.BinaryCopy(s)
	}
	const batch = 1000
	base := time.Now()
	events := make([]vigil.Event, b.N*batch)
	for i := range events {
		events[i] = vigil.Event{
			ID: fmt.Sprintf("ev-%09d", i), Time: base.Add(time.Duration(i) * time.Millisecond),
			DeviceID: fmt.Sprintf("dev-%03d", i%50), Source: "agent", Kind: vigil.KindAuth,
			Category: "authentication", Action: "login", Outcome: vigil.OutcomeFailure, Severity: vigil.SeverityLow,
			Network: &vigil.Network{Transport: "tcp", SrcIP: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}),
				SrcPort: uint16(30000 + i%20000), DstIP: netip.MustParseAddr("10.0.0.7"), DstPort: 22},
			Fields: map[string]any{"user.name": "root", "process.name": "sshd", "process.pid": float64(1000 + i%5000)},
		}
	}
	// A first batch opens the connections and the day's partitions.
	if err := s.PutEvents(b.Context(), []vigil.Event{{ID: "warm", Time: base, Kind: vigil.KindAuth}}); err != nil {
		b.Fatal(err)
	}
	pids := backendPIDs(b, app)
	server0, client0 := procCPU(pids), selfCPU()
	b.ResetTimer()
	for i := range b.N {
		if err := s.PutEvents(b.Context(), events[i*batch:(i+1)*batch]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	n := float64(b.N * batch)
	b.ReportMetric(n/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(selfCPU()-client0)/n/1e3, "client-µs/event")
	b.ReportMetric(float64(procCPU(backendPIDs(b, app))-server0)/n/1e3, "server-µs/event")
	b.ReportMetric(0, "ns/op")
}

// backendPIDs returns the process ids of the backends serving app.
func backendPIDs(b *testing.B, app string) []int {
	c, err := pgx.Connect(b.Context(), testURL(b))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(b.Context())
	rows, err := c.Query(b.Context(), "SELECT pid FROM pg_stat_activity WHERE application_name = $1", app)
	if err != nil {
		b.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	var out []int
	for _, p := range pids {
		out = append(out, int(p))
	}
	return out
}

// procCPU returns the user and system CPU time of processes, in ns, from
// /proc (0 for those it cannot read).
func procCPU(pids []int) int64 {
	var total int64
	for _, p := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis; utime and
		// stime are the 14th and 15th fields, in clock ticks (100/s).
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += (u + st) * int64(10*time.Millisecond)
	}
	return total
}

// selfCPU returns this process's user and system CPU time in ns.
func selfCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// TestFieldFilterScanBounded: see storetest.FieldScanBounded.
func TestFieldFilterScanBounded(t *testing.T) {
	storetest.FieldScanBounded(t, openOpts(t, postgres.Options{FieldScanRows: 100}))
}

// TestCommandsAcrossHandles checks what two nodes on one database need of
// the command queue: a command enqueued through one handle is told to a
// WatchCommands of the other (LISTEN/NOTIFY), and taken by one of them
// only.
func TestCommandsAcrossHandles(t *testing.T) {
	a := open(t)
	b, err := postgres.Open(t.Context(), testURL(t), postgres.Options{Schema: a.Schema()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	seen := make(chan string, 100)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go b.WatchCommands(ctx, func(dev string) { seen <- dev })
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	deadline := time.After(60 * time.Second)
	for i := 0; ; i++ {
		c := store.QueuedCommand{ID: fmt.Sprintf("c%d", i), DeviceID: "cam-1", Queued: base, Expires: base.Add(time.Hour), Signed: []byte("{}")}
		if _, err := a.EnqueueCommand(t.Context(), c, 0, 0); err != nil {
			t.Fatal(err)
		}
		select {
		case dev := <-seen:
			if dev != "cam-1" {
				t.Fatalf("node b was told of %q", dev)
			}
		case <-deadline:
			t.Fatal("node b was told of none of node a's commands in 60s")
		case <-time.After(200 * time.Millisecond):
			continue
		}
		break
	}
	got, err := b.TakeCommands(t.Context(), "cam-1", base, 0)
	if err != nil || len(got) == 0 {
		t.Fatalf("node b took %d: %v", len(got), err)
	}
	if again, err := a.TakeCommands(t.Context(), "cam-1", base, 0); err != nil || len(again) != 0 {
		t.Fatalf("node a took %d after node b: %v", len(again), err)
	}
}

// BenchmarkCommandAcrossHandles measures what a command queued on one
// node costs until another node, woken by NOTIFY, has taken it: enqueue
// on a, WatchCommands on b tells of the device, TakeCommands on b.
func BenchmarkCommandAcrossHandles(bm *testing.B) {
	a := open(bm)
	b, err := postgres.Open(context.Background(), testURL(bm), postgres.Options{Schema: a.Schema()})
	if err != nil {
		bm.Fatal(err)
	}
	defer b.Close()
	seen := make(chan string, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.WatchCommands(ctx, func(dev string) { seen <- dev })
	base := time.Now()
	// Wait until b listens.
	for i := 0; ; i++ {
		a.EnqueueCommand(ctx, store.QueuedCommand{ID: fmt.Sprintf("warm%d", i), DeviceID: "warm", Queued: base, Expires: base.Add(time.Hour), Signed: []byte("{}")}, 0, 0)
		select {
		case <-seen:
		case <-time.After(100 * time.Millisecond):
			continue
		}
		break
	}
	bm.ResetTimer()
	for i := 0; i < bm.N; i++ {
		if _, err := a.EnqueueCommand(ctx, store.QueuedCommand{ID: fmt.Sprintf("c%d", i), DeviceID: "cam-1", Queued: base, Expires: base.Add(time.Hour), Signed: []byte("{}")}, 100, 1000); err != nil {
			bm.Fatal(err)
		}
		for dev := <-seen; dev != "cam-1"; dev = <-seen {
		}
		got, err := b.TakeCommands(ctx, "cam-1", base, 100)
		if err != nil || len(got) != 1 {
			bm.Fatalf("took %d: %v", len(got), err)
		}
	}
}
