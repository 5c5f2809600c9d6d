package hunt

import (
	"net/netip"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// lossyEvents are events whose JSON the columns cannot give back as
// decodeEvent reads it: a segment marks their rows, and a retro-hunt
// reads those from the row store.
func lossyEvents(t0 time.Time) []vigil.Event {
	ev := func(i int, f func(e *vigil.Event)) vigil.Event {
		e := vigil.Event{ID: "lossy-" + string(rune('a'+i)), Time: t0.Add(time.Duration(i) * time.Second), DeviceID: "dev-l", Kind: vigil.KindProcess,
			Fields: map[string]any{"process.name": "x"}}
		f(&e)
		return e
	}
	return []vigil.Event{
		ev(0, func(e *vigil.Event) { e.Fields["source"] = "shadowed by the event's source" }),
		ev(1, func(e *vigil.Event) { e.Fields["source.ip"] = "10.0.0.1" }), // a 5-tuple name among the fields
		ev(2, func(e *vigil.Event) { e.Fields["nested"] = map[string]any{"a": "b"} }),
		ev(3, func(e *vigil.Event) { e.Fields["n"] = nil }),
		ev(4, func(e *vigil.Event) { e.Fields["ports"] = []any{22.0, "ssh"} }),
		ev(5, func(e *vigil.Event) { e.Network = &vigil.Network{} }),
		ev(6, func(e *vigil.Event) { e.Time = e.Time.In(time.FixedZone("UTC+2", 7200)) }),
	}
}

// TestRowsRebuiltExactly: every row a segment does not mark is rebuilt
// from the columns as decodeEvent reads the stored JSON (but Received),
// over the pack's test events, generated ones and the lossy ones, which
// are all marked; most rows are not.
func TestRowsRebuiltExactly(t *testing.T) {
	for name, s := range map[string]eventStore{"sqlite": openStore(t), "postgres": openPostgresOrNil(t)} {
		if s == nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			evs := append(packEvents(t), genEvents(700, 9)...)
			lossy := lossyEvents(t0)
			evs = append(evs, lossy...)
			evs = append(evs, genEvents(100, 10)...)
			for i := range evs[len(evs)-100:] {
				evs[len(evs)-100+i].ID += "-2"
			}
			if err := s.PutEvents(t.Context(), evs); err != nil {
				t.Fatal(err)
			}
			if _, err := seal(t.Context(), s, int64(len(evs)), 64); err != nil {
				t.Fatal(err)
			}
			infos, err := s.Segments(t.Context(), time.Time{}, time.Time{})
			if err != nil || len(infos) < 10 {
				t.Fatalf("%d segments, %v", len(infos), err)
			}
			var p fastjson.Parser
			exact, marked := 0, map[string]bool{}
			for _, si := range infos {
				cols, err := s.SegmentColumns(t.Context(), si.First, nil)
				if err != nil {
					t.Fatal(err)
				}
				seg, err := decodeSegment(si, cols)
				if err != nil || !seg.exact {
					t.Fatalf("segment %d: %v, exact %v", si.First, err, seg.exact)
				}
				re := newRowEvents(seg)
				inexact := map[int]bool{}
				for _, r := range seg.inexact {
					inexact[r] = true
				}
				for row, seq := range seg.seqs {
					var want vigil.Event
					if _, err := s.EventBodiesAfter(t.Context(), seq-1, 1, func(_ int64, body []byte) error {
						want, err = decodeEvent(&p, body)
						return err
					}); err != nil {
						t.Fatal(err)
					}
					if inexact[row] {
						marked[want.ID] = true
						continue
					}
					exact++
					got := re.event(row)
					want.Received = time.Time{}
					if len(want.Fields) == 0 {
						want.Fields = nil
					}
					if !reflect.DeepEqual(*got, want) {
						t.Fatalf("row %d (seq %d) rebuilt as\n%#v\nstored\n%#v", row, seq, *got, want)
					}
				}
			}
			for _, e := range lossy {
				if !marked[e.ID] {
					t.Errorf("lossy event %s not marked", e.ID)
				}
			}
			if exact < len(evs)*3/4 {
				t.Errorf("%d of %d rows rebuilt from the columns; want most", exact, len(evs))
			}
			t.Logf("%d of %d rows rebuilt from the columns, %d read as rows", exact, len(evs), len(marked))
		})
	}
}

// TestMetaRowsRoundTrip: the inexact rows survive encoding; version 1
// segments say nothing about them.
func TestMetaRowsRoundTrip(t *testing.T) {
	b := newBuilder()
	for i := range 10 {
		e := vigil.Event{ID: "e", Time: t0.Add(time.Duration(i)), Kind: "k", Network: &vigil.Network{SrcIP: netip.MustParseAddr("10.0.0.1")}}
		if i == 0 || i == 3 || i == 9 {
			e.Fields = map[string]any{"kind": "alias"}
		}
		b.add(int64(i+1), &e)
	}
	enc := b.finish().encode()
	_, _, inexact, exact, err := decodeMetaRows(enc.Meta)
	if err != nil || !exact || !reflect.DeepEqual(inexact, []int{0, 3, 9}) {
		t.Fatalf("inexact = %v, exact %v, %v", inexact, exact, err)
	}
	v1 := append([]byte{1}, enc.Meta[1:len(enc.Meta)-4]...)
	if seqs, _, inexact, exact, err := decodeMetaRows(v1); err != nil || exact || inexact != nil || len(seqs) != 10 {
		t.Fatalf("version 1: %v %v %v %v", seqs, inexact, exact, err)
	}
}

// openPostgresOrNil is openPostgres, nil without VIGIL_TEST_POSTGRES_URL.
func openPostgresOrNil(t *testing.T) eventStore {
	if os.Getenv("VIGIL_TEST_POSTGRES_URL") == "" {
		t.Log("VIGIL_TEST_POSTGRES_URL is not set: SQLite only")
		return nil
	}
	return openPostgres(t)
}

// TestUpgradeSealsOldSegmentsAgain: a version 1 segment (no marks) is
// sealed again with its rows marked; a version 2 one is left alone.
func TestUpgradeSealsOldSegmentsAgain(t *testing.T) {
	s := openStore(t)
	evs := append(genEvents(93, 3), lossyEvents(t0.Add(time.Hour))...) // the lossy ones in the newest segment
	if err := s.PutEvents(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	if _, err := seal(t.Context(), s, int64(len(evs)), 50); err != nil {
		t.Fatal(err)
	}
	infos, err := s.Segments(t.Context(), time.Time{}, time.Time{})
	if err != nil || len(infos) != 2 {
		t.Fatalf("%d segments, %v", len(infos), err)
	}
	// Make the newest (with the lossy events) as version 1 wrote it.
	cols, err := s.SegmentColumns(t.Context(), infos[0].First, nil)
	if err != nil {
		t.Fatal(err)
	}
	seqs, times, inexact, _, err := decodeMetaRows(infos[0].Meta)
	if err != nil || len(inexact) < len(lossyEvents(t0)) {
		t.Fatalf("inexact %v, %v", inexact, err)
	}
	old := (&segment{seqs: seqs, times: times}).encode()
	v1 := old.Meta[:len(old.Meta)-1] // no marks: one zero byte
	v1[0] = 1
	seg := infos[0]
	seg.Meta = v1
	if err := s.PutSegment(t.Context(), store.Segment{SegmentInfo: seg, Columns: cols}); err != nil {
		t.Fatal(err)
	}
	n, err := Upgrade(t.Context(), s)
	if err != nil || n != 1 {
		t.Fatalf("Upgrade = %d, %v; want 1", n, err)
	}
	infos, _ = s.Segments(t.Context(), time.Time{}, time.Time{})
	if _, _, again, exact, err := decodeMetaRows(infos[0].Meta); err != nil || !exact || !reflect.DeepEqual(again, inexact) {
		t.Fatalf("after Upgrade: inexact %v (want %v), exact %v, %v", again, inexact, exact, err)
	}
	if n, err := Upgrade(t.Context(), s); err != nil || n != 0 {
		t.Fatalf("Upgrade again = %d, %v; want 0", n, err)
	}
}
