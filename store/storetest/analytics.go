package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// testAnalytics: events come back after a sequence number in order,
// segments round-trip with their columns, list by time overlap newest
// first, and go with retention once their newest event is past the cut.
func testAnalytics(t *testing.T, st store.Store) {
	s, ok := st.(store.Analytics)
	if !ok {
		t.Fatalf("%T does not implement store.Analytics", st)
	}
	c := ctx(t)
	if n, err := s.MaxEventSeq(c); err != nil || n != 0 {
		t.Fatalf("MaxEventSeq of an empty store = %d, %v; want 0", n, err)
	}
	var evs []vigil.Event
	for i := range 10 {
		evs = append(evs, vigil.Event{ID: fmt.Sprintf("a%02d", i), Time: base.Add(time.Duration(i) * time.Minute), DeviceID: "d1", Kind: vigil.KindAuth,
			Fields: map[string]any{"user.name": "root", "n": float64(i)}})
	}
	if err := st.PutEvents(c, evs); err != nil {
		t.Fatal(err)
	}
	all, err := s.EventsAfter(c, 0, 100)
	if err != nil || len(all) != 10 {
		t.Fatalf("EventsAfter(0) = %d events, %v; want 10", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatalf("EventsAfter not in seq order: %d after %d", all[i].Seq, all[i-1].Seq)
		}
	}
	if all[3].Event.ID != "a03" || all[3].Event.Fields["user.name"] != "root" {
		t.Errorf("EventsAfter event 3 = %+v", all[3].Event)
	}
	rest, err := s.EventsAfter(c, all[4].Seq, 3)
	if err != nil || len(rest) != 3 || rest[0].Seq != all[5].Seq {
		t.Fatalf("EventsAfter(seq of 5th, 3) = %v, %v; want 3 from the 6th", rest, err)
	}
	var bodies []int64
	n, err := s.EventBodiesAfter(c, all[1].Seq, 5, func(seq int64, body []byte) error {
		var e vigil.Event
		if err := json.Unmarshal(body, &e); err != nil {
			return err
		}
		if e.ID != fmt.Sprintf("a%02d", len(bodies)+2) || e.Fields["user.name"] != "root" {
			t.Errorf("body of seq %d = %s", seq, body)
		}
		bodies = append(bodies, seq)
		return nil
	})
	if err != nil || n != 5 || len(bodies) != 5 || bodies[0] != all[2].Seq || bodies[4] != all[6].Seq {
		t.Fatalf("EventBodiesAfter(3rd, 5) = %d %v, %v; want the 3rd to the 7th", n, bodies, err)
	}
	stop := fmt.Errorf("stop")
	if n, err := s.EventBodiesAfter(c, 0, 5, func(int64, []byte) error { return stop }); err != stop || n != 0 {
		t.Errorf("EventBodiesAfter whose fn fails = %d, %v; want 0 and its error", n, err)
	}
	if m, err := s.MaxEventSeq(c); err != nil || m != all[9].Seq {
		t.Errorf("MaxEventSeq = %d, %v; want %d", m, err, all[9].Seq)
	}

	if n, err := s.SealedSeq(c); err != nil || n != 0 {
		t.Fatalf("SealedSeq with no segment = %d, %v; want 0", n, err)
	}
	seg := func(first, last int64, lo, hi time.Time) store.Segment {
		return store.Segment{
			SegmentInfo: store.SegmentInfo{First: first, Last: last, MinTime: lo, MaxTime: hi, Rows: int(last - first + 1), Meta: []byte{1, 0, 2}},
			Columns:     map[string][]byte{"device.id": {0, 1, 2, 255}, "user.name": []byte("x")},
		}
	}
	err = s.PutSegment(c, store.Segment{SegmentInfo: store.SegmentInfo{First: 1, Last: 0, Meta: []byte{1}}})
	wantCode(t, err, vigil.EINVALID, "PutSegment with no rows")
	if err := s.PutSegment(c, seg(1, 5, base, base.Add(4*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSegment(c, seg(6, 10, base.Add(5*time.Minute), base.Add(9*time.Minute))); err != nil {
		t.Fatal(err)
	}
	// Replacing keeps one segment.
	if err := s.PutSegment(c, seg(6, 10, base.Add(5*time.Minute), base.Add(9*time.Minute))); err != nil {
		t.Fatal(err)
	}
	if n, err := s.SealedSeq(c); err != nil || n != 10 {
		t.Errorf("SealedSeq = %d, %v; want 10", n, err)
	}
	infos, err := s.Segments(c, time.Time{}, time.Time{})
	if err != nil || len(infos) != 2 || infos[0].First != 6 || infos[1].First != 1 {
		t.Fatalf("Segments = %+v, %v; want 6 then 1", infos, err)
	}
	if !infos[1].MinTime.Equal(base) || !infos[1].MaxTime.Equal(base.Add(4*time.Minute)) || infos[1].Rows != 5 || !bytes.Equal(infos[1].Meta, []byte{1, 0, 2}) {
		t.Errorf("segment 1 = %+v", infos[1])
	}
	if infos, _ := s.Segments(c, base.Add(5*time.Minute), time.Time{}); len(infos) != 1 || infos[0].First != 6 {
		t.Errorf("Segments since minute 5 = %+v; want segment 6", infos)
	}
	if infos, _ := s.Segments(c, time.Time{}, base.Add(5*time.Minute)); len(infos) != 1 || infos[0].First != 1 {
		t.Errorf("Segments until minute 5 = %+v; want segment 1", infos)
	}
	cols, err := s.SegmentColumns(c, 1, []string{"device.id", "absent"})
	if err != nil || len(cols) != 1 || !bytes.Equal(cols["device.id"], []byte{0, 1, 2, 255}) {
		t.Errorf("SegmentColumns(device.id, absent) = %v, %v", cols, err)
	}
	if cols, err := s.SegmentColumns(c, 1, nil); err != nil || len(cols) != 2 {
		t.Errorf("SegmentColumns(all) = %v, %v; want 2 columns", cols, err)
	}
	if _, err := st.DeleteEventsBefore(c, base.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if infos, _ := s.Segments(c, time.Time{}, time.Time{}); len(infos) != 1 || infos[0].First != 6 {
		t.Errorf("Segments after retention = %+v; want only 6", infos)
	}
	if cols, _ := s.SegmentColumns(c, 1, nil); len(cols) != 0 {
		t.Errorf("columns of a dropped segment remain: %v", cols)
	}
}
