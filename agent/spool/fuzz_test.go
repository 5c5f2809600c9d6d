package spool

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// frame encodes records as they are on disk.
func frame(recs ...string) []byte {
	var b []byte
	for _, r := range recs {
		b = binary.BigEndian.AppendUint32(b, uint32(len(r)))
		b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE([]byte(r)))
		b = append(b, r...)
	}
	return b
}

// validRecords returns the records of a segment's valid prefix from off,
// and where that prefix ends.
func validRecords(seg []byte, off int64) ([]string, int64) {
	var out []string
	for off >= 0 && off+headerLen <= int64(len(seg)) {
		n := int64(binary.BigEndian.Uint32(seg[off:]))
		if n > MaxRecordBytes || off+headerLen+n > int64(len(seg)) {
			break
		}
		rec := seg[off+headerLen : off+headerLen+n]
		if crc32.ChecksumIEEE(rec) != binary.BigEndian.Uint32(seg[off+4:]) {
			break
		}
		out = append(out, string(rec))
		off += headerLen + n
	}
	return out, off
}

// FuzzOpen opens a spool directory holding arbitrary segment files and an
// arbitrary cursor file, as a power cut or a failing flash may leave them.
// layout says which files exist: bit 0 the cursor, bit 1 segment 1, bit 2
// segment 2, whose sequence number is 2, 3, 7 or 8 by bits 3-4.
//
// Open must succeed; the records it counts must be the ones Peek returns,
// each once, in order, then ErrEmpty; the valid records of the segments
// after the cursor's must all be returned, in order, after those of the
// cursor's segment; a corrupt or torn part of a segment the cursor has not
// passed must be counted as dropped, once (opening again changes nothing);
// and the spool must keep working: a record appended comes back, and
// after a restart nothing is pending.
func FuzzOpen(f *testing.F) {
	recs := frame("one", "two", "three")
	f.Add(uint8(0b00111), []byte(`{"seg":1,"off":0,"dropped":0}`), recs, frame("four"))
	f.Add(uint8(0b00111), []byte(`{"seg":1,"off":11,"dropped":2}`), recs, frame("four"))
	f.Add(uint8(0b00111), []byte(`{"seg":1,"off":5}`), recs, frame("four"))
	f.Add(uint8(0b00111), []byte(`{"seg":1,"off":1000}`), recs, frame("four"))
	f.Add(uint8(0b01111), []byte(`{"seg":2,"off":0}`), recs, frame("four"))
	f.Add(uint8(0b11111), []byte(`{"seg":18446744073709551615,"off":-1}`), recs, frame("four"))
	f.Add(uint8(0b00111), []byte(``), recs, frame("four"))
	f.Add(uint8(0b00111), []byte(`{"seg":1,"off":0`), recs, frame("four"))
	f.Add(uint8(0b00111), []byte("\x00\x00\x00\x00"), recs, frame("four"))
	f.Add(uint8(0b00110), []byte(nil), recs[:len(recs)-2], frame("four", "five")[:13])
	f.Add(uint8(0b00110), []byte(nil), append(frame("one"), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0), frame("four"))
	f.Add(uint8(0b00110), []byte(nil), append(frame("one"), append([]byte{0, 0, 0, 3, 1, 2, 3, 4, 'x', 'y', 'z'}, frame("two")...)...), frame("four"))
	f.Add(uint8(0b00010), []byte(nil), []byte{}, []byte(nil))
	f.Add(uint8(0b00000), []byte(`{"seg":5,"off":8}`), []byte(nil), []byte(nil))
	f.Fuzz(func(t *testing.T, layout uint8, cursorFile, seg1, seg2 []byte) {
		dir := t.TempDir()
		write := func(name string, b []byte) {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		seq2 := []uint64{2, 3, 7, 8}[layout>>3&3]
		segs := map[uint64][]byte{}
		if layout&1 != 0 {
			write("cursor", cursorFile)
		}
		if layout&2 != 0 {
			write(segName(1), seg1)
			segs[1] = seg1
		}
		if layout&4 != 0 {
			write(segName(seq2), seg2)
			segs[seq2] = seg2
		}
		opts := Options{NoSync: true, MaxBytes: 1 << 20, SegmentBytes: 1 << 16}
		s, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		defer func() { s.Close() }()
		// Opening again changes nothing: the repair is done, and its drops
		// are not counted twice.
		n, dropped := s.Len(), s.Dropped()
		s.Close()
		if s, err = Open(dir, opts); err != nil {
			t.Fatalf("open again: %v", err)
		}
		if s.Len() != n || s.Dropped() != dropped {
			t.Fatalf("opened again: %d pending, %d dropped; first %d and %d", s.Len(), s.Dropped(), n, dropped)
		}

		// What a well-formed cursor says: segments before its own were
		// delivered, and its own up to its offset.
		var cur cursor
		validCursor := layout&1 != 0 && json.Unmarshal(cursorFile, &cur) == nil
		if !validCursor {
			cur = cursor{}
		}
		var after []string // records of the segments after the cursor's
		lost := false      // a corrupt part the cursor has not passed
		for _, seq := range []uint64{1, seq2} {
			b, ok := segs[seq]
			if !ok || seq < cur.Seg {
				continue
			}
			var off int64
			if seq == cur.Seg {
				off = cur.Off
			}
			rs, end := validRecords(b, 0)
			if seq != cur.Seg {
				after = append(after, rs...)
			}
			if end < int64(len(b)) && (seq != cur.Seg || off <= end) {
				lost = true
			}
		}
		if lost && s.Dropped() <= cur.Dropped {
			t.Errorf("a corrupt part was dropped without being counted: dropped %d, cursor said %d", s.Dropped(), cur.Dropped)
		}

		var got []string
		for i := 0; ; i++ {
			rec, err := s.Peek()
			if errors.Is(err, ErrEmpty) {
				break
			}
			if err != nil {
				t.Fatalf("peek %d: %v", i, err)
			}
			if i >= n {
				t.Fatalf("Len was %d, Peek gives more records: %q", n, rec)
			}
			got = append(got, string(rec))
			if err := s.Ack(); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
		if len(got) != n || s.Len() != 0 {
			t.Fatalf("Len was %d, Peek gave %d records (%q), Len now %d", n, len(got), got, s.Len())
		}
		if len(got) < len(after) || fmt.Sprint(got[len(got)-len(after):]) != fmt.Sprint(after) {
			t.Fatalf("records %q do not end with the later segments' %q", got, after)
		}

		// The spool keeps working, and remembers what was delivered.
		if err := s.Append([]byte("new")); err != nil {
			t.Fatal(err)
		}
		if rec, err := s.Peek(); err != nil || !bytes.Equal(rec, []byte("new")) {
			t.Fatalf("after append: %q, %v", rec, err)
		}
		if err := s.Ack(); err != nil {
			t.Fatal(err)
		}
		dropped = s.Dropped()
		s.Close()
		s, err = Open(dir, opts)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if s.Len() != 0 || s.Dropped() != dropped {
			t.Fatalf("after restart: %d pending, %d dropped (was %d)", s.Len(), s.Dropped(), dropped)
		}
		if _, err := s.Peek(); !errors.Is(err, ErrEmpty) {
			t.Fatalf("after restart: peek: %v", err)
		}
	})
}
