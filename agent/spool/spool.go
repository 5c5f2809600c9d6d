package spool

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Defaults.
const (
	DefaultMaxBytes     = 16 << 20
	DefaultSegmentBytes = 1 << 20
	// MaxRecordBytes bounds one record.
	MaxRecordBytes = 8 << 20
)

// ErrEmpty is returned by Peek when every record was delivered.
var ErrEmpty = errors.New("spool is empty")

const headerLen = 8

// maxSeq bounds segment numbers (a cursor naming a larger one is corrupt):
// the next segment's number must not wrap around.
const maxSeq = 1 << 62

// Options configures a Spool.
type Options struct {
	// MaxBytes bounds the segment files together (default 16 MiB).
	MaxBytes int64
	// SegmentBytes is the size at which a new segment starts (default
	// 1 MiB, at most MaxBytes/4).
	SegmentBytes int64
	// NoSync skips fsync after each append (tests, or flash wear).
	NoSync bool
}

// Spool is a bounded on-disk queue of records.
type Spool struct {
	dir  string
	opts Options

	mu      sync.Mutex
	segs    []segment // oldest first; the last is the one written
	w       *os.File
	cur     cursor
	records int // undelivered records
	peeked  int64
}

type segment struct {
	seq     uint64
	size    int64
	records int // records in the segment (all, delivered or not)
}

type cursor struct {
	Seg     uint64 `json:"seg"`
	Off     int64  `json:"off"`
	Dropped uint64 `json:"dropped"`
}

func segName(seq uint64) string { return fmt.Sprintf("seg-%020d.log", seq) }

// Open opens or creates the spool in dir.
func Open(dir string, opts Options) (*Spool, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	opts.SegmentBytes = min(opts.SegmentBytes, max(opts.MaxBytes/4, 1))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create spool: %w", err)
	}
	s := &Spool{dir: dir, opts: opts, peeked: -1}
	// A cursor that cannot be read (a power cut between its write and its
	// rename on a file system that does not order them, a failing flash)
	// is replaced: delivery starts again at the oldest record (at least
	// once: the server deduplicates), and the drop count it held is lost.
	repaired := false
	if b, err := os.ReadFile(filepath.Join(dir, "cursor")); err == nil {
		if err := json.Unmarshal(b, &s.cur); err != nil || s.cur.Seg > maxSeq {
			s.cur = cursor{}
			repaired = true
		}
	}
	read := s.cur
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot open spool: %w", err)
	}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, "seg-") || !strings.HasSuffix(n, ".log") {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(n, "seg-"), ".log"), 10, 64)
		if err != nil || n != segName(seq) || seq > maxSeq {
			continue // not a name the spool gives (seg-1.log would be read twice)
		}
		s.segs = append(s.segs, segment{seq: seq})
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].seq < s.segs[j].seq })
	// Segments wholly before the cursor were delivered.
	for len(s.segs) > 0 && s.segs[0].seq < s.cur.Seg {
		os.Remove(s.path(s.segs[0].seq))
		s.segs = s.segs[1:]
	}
	if len(s.segs) == 0 {
		// Numbering goes on after the cursor's segment: a segment numbered
		// below it would be taken as delivered at the next start.
		s.cur.Off = 0
	} else if s.cur.Seg < s.segs[0].seq {
		s.cur.Seg, s.cur.Off = s.segs[0].seq, 0
	}
	for i := range s.segs {
		sg := &s.segs[i]
		at := int64(0)
		if sg.seq == s.cur.Seg {
			at = s.cur.Off
		}
		resume, lost, err := s.scan(sg, at)
		if err != nil {
			return nil, err
		}
		if sg.seq == s.cur.Seg {
			s.cur.Off = resume
		}
		if lost {
			s.cur.Dropped++
		}
	}
	if len(s.segs) == 0 {
		if err := s.newSegment(max(s.cur.Seg, 1)); err != nil {
			return nil, err
		}
		s.cur.Seg = s.segs[0].seq
	} else {
		last := s.segs[len(s.segs)-1]
		w, err := os.OpenFile(s.path(last.seq), os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("cannot open spool segment: %w", err)
		}
		s.w = w
	}
	// Count the undelivered records.
	for _, sg := range s.segs {
		if sg.seq == s.cur.Seg {
			n, err := s.countFrom(sg.seq, s.cur.Off)
			if err != nil {
				return nil, err
			}
			s.records += n
		} else if sg.seq > s.cur.Seg {
			s.records += sg.records
		}
	}
	// What was repaired, and the drops counted, hold from now on.
	if repaired || s.cur != read {
		if err := s.saveCursor(); err != nil {
			s.w.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *Spool) path(seq uint64) string { return filepath.Join(s.dir, segName(seq)) }

// scan counts the records of a segment, from its start or, for the
// cursor's segment, from the cursor's offset at, and returns where
// delivery resumes in the segment: at, or the start of the record at
// lies in, or the end of the file when at is past it. What cannot be read
// after that (a record torn by a power cut, a corrupt one and what
// follows it: the records are not framed to find the next one) is cut
// off, and lost is set: at least one record was dropped.
func (s *Spool) scan(sg *segment, at int64) (resume int64, lost bool, err error) {
	f, err := os.OpenFile(s.path(sg.seq), os.O_RDWR, 0)
	if err != nil {
		return 0, false, fmt.Errorf("cannot open spool segment: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, false, fmt.Errorf("cannot open spool segment: %w", err)
	}
	size := fi.Size()
	at = max(at, 0)
	// The records from the start; resume is the last boundary up to at.
	var off int64
	for {
		if off <= at {
			resume = off
		}
		_, n, err := readRecord(f, off, size)
		if err != nil {
			break
		}
		off += n
		sg.records++
	}
	end := off
	if at > end {
		// The cursor is past the records read from the start: records
		// from it (the part before is delivered whatever it holds), else
		// the file ends there as far as delivery goes.
		resume, end = min(at, size), min(at, size)
		sg.records = 0
		for {
			_, n, err := readRecord(f, end, size)
			if err != nil {
				break
			}
			end += n
			sg.records++
		}
	}
	if end < size {
		if err := f.Truncate(end); err != nil {
			return 0, false, fmt.Errorf("cannot repair spool segment %s: %w", f.Name(), err)
		}
		lost = true
	}
	sg.size = end
	return resume, lost, nil
}

func (s *Spool) countFrom(seq uint64, off int64) (int, error) {
	f, err := os.Open(s.path(seq))
	if err != nil {
		return 0, fmt.Errorf("cannot open spool segment: %w", err)
	}
	defer f.Close()
	n := 0
	for {
		_, l, err := readRecord(f, off, -1)
		if err != nil {
			return n, nil
		}
		off += l
		n++
	}
}

// readRecord reads the record at off of a file of size bytes (-1: not
// known) and returns it and its length on disk.
func readRecord(f *os.File, off, size int64) ([]byte, int64, error) {
	var h [headerLen]byte
	if _, err := f.ReadAt(h[:], off); err != nil {
		return nil, 0, io.EOF
	}
	n := binary.BigEndian.Uint32(h[:4])
	if n > MaxRecordBytes {
		return nil, 0, errors.New("corrupt record length")
	}
	if size >= 0 && off+headerLen+int64(n) > size {
		return nil, 0, io.EOF // torn, or a corrupt length: not worth a buffer
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, off+headerLen); err != nil {
		return nil, 0, io.EOF
	}
	if crc32.ChecksumIEEE(buf) != binary.BigEndian.Uint32(h[4:]) {
		return nil, 0, errors.New("corrupt record checksum")
	}
	return buf, int64(n) + headerLen, nil
}

func (s *Spool) newSegment(seq uint64) error {
	if s.w != nil {
		s.w.Close()
	}
	w, err := os.OpenFile(s.path(seq), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("cannot create spool segment: %w", err)
	}
	s.w = w
	s.segs = append(s.segs, segment{seq: seq})
	return nil
}

func (s *Spool) total() int64 {
	var t int64
	for _, sg := range s.segs {
		t += sg.size
	}
	return t
}

// Append adds a record. When the spool is over its bound, the oldest
// segments are deleted first and their undelivered records counted as
// dropped.
func (s *Spool) Append(rec []byte) error {
	if len(rec) > MaxRecordBytes || int64(len(rec))+headerLen > s.opts.MaxBytes {
		return fmt.Errorf("cannot spool a record of %d bytes: larger than the spool allows", len(rec))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	last := &s.segs[len(s.segs)-1]
	if last.size > 0 && last.size+int64(len(rec))+headerLen > s.opts.SegmentBytes {
		if err := s.newSegment(last.seq + 1); err != nil {
			return err
		}
		last = &s.segs[len(s.segs)-1]
	}
	buf := make([]byte, headerLen+len(rec))
	binary.BigEndian.PutUint32(buf, uint32(len(rec)))
	binary.BigEndian.PutUint32(buf[4:], crc32.ChecksumIEEE(rec))
	copy(buf[headerLen:], rec)
	if _, err := s.w.Write(buf); err != nil {
		return fmt.Errorf("cannot spool record: %w", err)
	}
	if !s.opts.NoSync {
		if err := s.w.Sync(); err != nil {
			return fmt.Errorf("cannot spool record: %w", err)
		}
	}
	last.size += int64(len(buf))
	last.records++
	s.records++
	for s.total() > s.opts.MaxBytes && len(s.segs) > 1 {
		if err := s.dropOldest(); err != nil {
			return err
		}
	}
	return nil
}

// dropOldest deletes the oldest segment, counting what was undelivered.
func (s *Spool) dropOldest() error {
	old := s.segs[0]
	lost := old.records
	if old.seq == s.cur.Seg {
		n, err := s.countFrom(old.seq, s.cur.Off)
		if err != nil {
			return err
		}
		lost = n
	} else if old.seq < s.cur.Seg {
		lost = 0
	}
	if err := os.Remove(s.path(old.seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot drop spool segment: %w", err)
	}
	s.segs = s.segs[1:]
	s.records -= lost
	s.cur.Dropped += uint64(lost)
	if s.cur.Seg <= old.seq {
		s.cur.Seg, s.cur.Off = s.segs[0].seq, 0
		s.peeked = -1
	}
	return s.saveCursor()
}

// Peek returns the oldest undelivered record, or ErrEmpty.
func (s *Spool) Peek() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.records == 0 {
			return nil, ErrEmpty
		}
		f, err := os.Open(s.path(s.cur.Seg))
		if err != nil {
			return nil, fmt.Errorf("cannot read spool: %w", err)
		}
		size := int64(-1)
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		rec, n, err := readRecord(f, s.cur.Off, size)
		f.Close()
		if err == nil {
			s.peeked = n
			return rec, nil
		}
		// End of this segment: move to the next one.
		i := s.index(s.cur.Seg)
		if i < 0 || i == len(s.segs)-1 {
			return nil, ErrEmpty
		}
		os.Remove(s.path(s.cur.Seg))
		s.segs = append(s.segs[:i], s.segs[i+1:]...)
		s.cur.Seg, s.cur.Off = s.segs[i].seq, 0
		if err := s.saveCursor(); err != nil {
			return nil, err
		}
	}
}

func (s *Spool) index(seq uint64) int {
	for i, sg := range s.segs {
		if sg.seq == seq {
			return i
		}
	}
	return -1
}

// Ack removes the record Peek returned.
func (s *Spool) Ack() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peeked < 0 {
		return errors.New("cannot ack: no record was peeked")
	}
	s.cur.Off += s.peeked
	s.peeked = -1
	s.records--
	return s.saveCursor()
}

func (s *Spool) saveCursor() error {
	b, _ := json.Marshal(s.cur)
	p := filepath.Join(s.dir, "cursor")
	if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("cannot save spool cursor: %w", err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("cannot save spool cursor: %w", err)
	}
	return nil
}

// Len returns the number of undelivered records.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records
}

// Bytes returns the size of the segment files.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total()
}

// Dropped returns how many records were dropped since ResetDropped.
func (s *Spool) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.Dropped
}

// ResetDropped subtracts n from the drop count, once it was reported.
func (s *Spool) ResetDropped(n uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur.Dropped -= min(n, s.cur.Dropped)
	return s.saveCursor()
}

// Close closes the segment being written.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return nil
	}
	err := s.w.Close()
	s.w = nil
	return err
}
