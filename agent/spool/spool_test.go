package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func drain(t *testing.T, s *Spool) []string {
	t.Helper()
	var out []string
	for {
		b, err := s.Peek()
		if errors.Is(err, ErrEmpty) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
		if err := s.Ack(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOrderAndRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSync: true, SegmentBytes: 64, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := s.Append(fmt.Appendf(nil, "rec-%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Deliver three, peek a fourth without ack, then "crash".
	for range 3 {
		s.Peek()
		s.Ack()
	}
	if b, _ := s.Peek(); string(b) != "rec-03" {
		t.Fatalf("peek: %q", b)
	}
	s.Close()
	s, err = Open(dir, Options{NoSync: true, SegmentBytes: 64, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 17 {
		t.Fatalf("len after restart: %d, want 17", s.Len())
	}
	got := drain(t, s)
	if len(got) != 17 || got[0] != "rec-03" || got[16] != "rec-19" {
		t.Fatalf("got %q", got)
	}
	if s.Len() != 0 || s.Dropped() != 0 {
		t.Fatalf("len %d dropped %d", s.Len(), s.Dropped())
	}
	s.Append([]byte("after"))
	if got := drain(t, s); len(got) != 1 || got[0] != "after" {
		t.Fatalf("got %q", got)
	}
}

func TestBoundDropsOldest(t *testing.T) {
	dir := t.TempDir()
	opts := Options{NoSync: true, MaxBytes: 1000, SegmentBytes: 250}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	rec := make([]byte, 92) // 100 bytes on disk
	for i := range 30 {
		rec[0] = byte(i)
		if err := s.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	if s.Bytes() > opts.MaxBytes {
		t.Fatalf("spool holds %d bytes, over %d", s.Bytes(), opts.MaxBytes)
	}
	dropped := s.Dropped()
	if dropped == 0 || uint64(s.Len())+dropped != 30 {
		t.Fatalf("len %d + dropped %d != 30", s.Len(), dropped)
	}
	s.Close()
	s, _ = Open(dir, opts)
	if s.Dropped() != dropped {
		t.Fatalf("drop count not persisted: %d, want %d", s.Dropped(), dropped)
	}
	got := drain(t, s)
	if len(got) != 30-int(dropped) || got[0][0] != byte(dropped) || got[len(got)-1][0] != 29 {
		t.Fatalf("kept %d records, first %d", len(got), got[0][0])
	}
	s.ResetDropped(dropped)
	if s.Dropped() != 0 {
		t.Fatal("ResetDropped")
	}
}

func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, Options{NoSync: true})
	s.Append([]byte("one"))
	s.Append([]byte("two"))
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	f, _ := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{0, 0, 0, 9, 1, 2}) // a half-written header
	f.Close()
	s, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Append([]byte("three"))
	if got := drain(t, s); len(got) != 3 || got[2] != "three" {
		t.Fatalf("got %q", got)
	}
}
