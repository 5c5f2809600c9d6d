package sqlite

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// TestSegmentRanges: segments listed without their headers say how big
// the header is, and SegmentMeta reads it.
func TestSegmentRanges(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "v.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	meta := bytes.Repeat([]byte{2, 7}, 5000)
	for i, first := range []int64{1, 11} {
		sg := store.Segment{SegmentInfo: store.SegmentInfo{First: first, Last: first + 9, Rows: 10, MinTime: base.Add(time.Duration(i) * time.Hour),
			MaxTime: base.Add(time.Duration(i)*time.Hour + time.Minute), Meta: meta[:len(meta)-i]}, Columns: map[string][]byte{"a": {1}}}
		if err := s.PutSegment(t.Context(), sg); err != nil {
			t.Fatal(err)
		}
	}
	infos, err := s.SegmentRanges(t.Context(), base.Add(30*time.Minute), time.Time{})
	if err != nil || len(infos) != 1 || infos[0].First != 11 || infos[0].Meta != nil || infos[0].MetaSize != len(meta)-1 || infos[0].Rows != 10 {
		t.Fatalf("SegmentRanges = %+v, %v", infos, err)
	}
	all, err := s.Segments(t.Context(), time.Time{}, time.Time{})
	if err != nil || len(all) != 2 || !bytes.Equal(all[1].Meta, meta) || all[1].MetaSize != len(meta) {
		t.Fatalf("Segments = %d, %v", len(all), err)
	}
	if m, err := s.SegmentMeta(t.Context(), 11); err != nil || !bytes.Equal(m, meta[:len(meta)-1]) {
		t.Fatalf("SegmentMeta = %d bytes, %v", len(m), err)
	}
	if _, err := s.SegmentMeta(t.Context(), 5); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("SegmentMeta of no segment: %v", err)
	}
}
