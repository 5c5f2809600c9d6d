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

func openT(t *testing.T, dir string) *Spool {
	t.Helper()
	s, err := Open(dir, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestUnreadableCursor: a cursor file that does not parse (left empty or
// zeroed by a power cut) no longer stops the spool from opening: delivery
// starts again at the oldest record.
func TestUnreadableCursor(t *testing.T) {
	for _, c := range []string{"", "\x00\x00\x00\x00", `{"seg":1,"off":`, `{"seg":9223372036854775808}`} {
		dir := t.TempDir()
		s := openT(t, dir)
		s.Append([]byte("one"))
		s.Append([]byte("two"))
		s.Peek()
		s.Ack()
		s.Close()
		if err := os.WriteFile(filepath.Join(dir, "cursor"), []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
		s = openT(t, dir)
		if got := drain(t, s); fmt.Sprint(got) != "[one two]" {
			t.Errorf("cursor %q: got %q", c, got)
		}
		s.Close()
	}
}

// TestCursorPastData: a cursor past the end of its segment (with NoSync,
// a power cut can keep the cursor and lose the records it passed) used to
// make every record appended after the restart unreachable: Peek read at
// the cursor, past them, and said the spool was empty while Len did not.
func TestCursorPastData(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	s.Append([]byte("one"))
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, "cursor"), []byte(`{"seg":1,"off":4096}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir)
	if s.Len() != 0 {
		t.Fatalf("len %d: the cursor says the record was delivered", s.Len())
	}
	s.Append([]byte("two"))
	if got := drain(t, s); fmt.Sprint(got) != "[two]" {
		t.Fatalf("got %q", got)
	}
	// A cursor inside a record resumes at the record's start.
	s.Append([]byte("three"))
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, "cursor"), []byte(`{"seg":1,"off":13}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir)
	if got := drain(t, s); fmt.Sprint(got) != "[two three]" {
		t.Fatalf("got %q", got)
	}
	s.Close()
}

// TestCorruptRecordDropped: a corrupt record ends what can be read of its
// segment (records carry no mark to find the next one): the records before
// it and the other segments are delivered, the rest is cut and counted as
// dropped, once.
func TestCorruptRecordDropped(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{NoSync: true, SegmentBytes: 40, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"rec-1", "rec-2", "rec-3", "rec-4", "rec-5"} {
		s.Append([]byte(r)) // 13 bytes each: three a segment
	}
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	if len(segs) != 2 {
		t.Fatalf("%d segments", len(segs))
	}
	b, _ := os.ReadFile(segs[0])
	b[13+8] ^= 1 // rec-2's payload
	os.WriteFile(segs[0], b, 0o600)
	for range 2 {
		s, err = Open(dir, Options{NoSync: true, SegmentBytes: 40, MaxBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if s.Len() != 3 || s.Dropped() != 1 {
			t.Fatalf("len %d, dropped %d; want 3 and 1", s.Len(), s.Dropped())
		}
		s.Close()
	}
	s, _ = Open(dir, Options{NoSync: true, SegmentBytes: 40, MaxBytes: 1 << 20})
	if got := drain(t, s); fmt.Sprint(got) != "[rec-1 rec-4 rec-5]" {
		t.Fatalf("got %q", got)
	}
	s.Close()
}

// TestNumberingGoesOnAfterCursor: when the cursor's segment is gone (a
// power cut before its creation reached the disk), new segments are
// numbered after it; they used to start again at 1, below the cursor, and
// a restart before the next Ack deleted them as delivered.
func TestNumberingGoesOnAfterCursor(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	s.Close()
	os.Remove(filepath.Join(dir, segName(1)))
	os.WriteFile(filepath.Join(dir, "cursor"), []byte(`{"seg":5,"off":0}`), 0o600)
	s = openT(t, dir)
	s.Append([]byte("kept"))
	s.Close()
	s = openT(t, dir)
	if got := drain(t, s); fmt.Sprint(got) != "[kept]" {
		t.Fatalf("got %q", got)
	}
	s.Close()
}

// TestOtherSegmentNames: only the names the spool gives are segments
// (seg-1.log next to seg-00000000000000000001.log was read as the same
// segment twice, its records counted twice).
func TestOtherSegmentNames(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	s.Append([]byte("one"))
	s.Close()
	b, _ := os.ReadFile(filepath.Join(dir, segName(1)))
	os.WriteFile(filepath.Join(dir, "seg-1.log"), b, 0o600)
	s = openT(t, dir)
	if s.Len() != 1 {
		t.Fatalf("len %d, want 1", s.Len())
	}
	if got := drain(t, s); fmt.Sprint(got) != "[one]" {
		t.Fatalf("got %q", got)
	}
	s.Close()
}
