package store

import (
	"context"
	"time"

	"github.com/vigil-iot/vigil"
)

// Analytics keeps the event history in the form hunts read fast: sealed
// segments, each the events of a run of store sequence numbers encoded as
// one blob per field (package hunt encodes and decodes them; the store
// keeps them opaque). Events after the last sealed one are read as rows
// (EventsAfter). Segments are immutable; retention (DeleteEventsBefore)
// drops a segment once its newest event is before the cut.
//
// Errors: EINVALID for a segment without rows or with a bad range; any
// other error is internal.
type Analytics interface {
	// EventsAfter returns up to limit stored events whose sequence number
	// is greater than after, in sequence order, with their numbers. The
	// sequence number orders events as they were stored.
	EventsAfter(ctx context.Context, after int64, limit int) ([]SeqEvent, error)
	// EventBodiesAfter calls fn with up to limit stored events whose
	// sequence number is greater than after, in sequence order, as their
	// stored JSON (vigil.Event's encoding; valid only during the call),
	// and returns how many it gave. It stops at the first error of fn.
	EventBodiesAfter(ctx context.Context, after int64, limit int, fn func(seq int64, body []byte) error) (int, error)
	// MaxEventSeq returns the greatest sequence number stored, 0 when no
	// event is stored.
	MaxEventSeq(ctx context.Context) (int64, error)
	// PutSegment stores a sealed segment, its columns with it, in one
	// transaction, replacing one with the same First.
	PutSegment(ctx context.Context, s Segment) error
	// SealedSeq returns the greatest Last of the stored segments, 0 when
	// there is none.
	SealedSeq(ctx context.Context) (int64, error)
	// Segments returns the segments whose time range overlaps [since,
	// until) (zero times: unbounded), newest first (by First descending),
	// without their columns.
	Segments(ctx context.Context, since, until time.Time) ([]SegmentInfo, error)
	// SegmentColumns returns the named columns of the segment starting at
	// first (all when names is nil); a name the segment does not have is
	// left out of the map.
	SegmentColumns(ctx context.Context, first int64, names []string) (map[string][]byte, error)
}

// SeqEvent is a stored event with its sequence number.
type SeqEvent struct {
	Seq   int64
	Event vigil.Event
}

// SegmentInfo describes a sealed segment.
type SegmentInfo struct {
	First, Last      int64 // the sequence numbers it covers, inclusive
	MinTime, MaxTime time.Time
	Rows             int
	// Meta is the segment's own header (sequence numbers and times, as
	// package hunt encodes them).
	Meta []byte
	// MetaSize, when not 0, is the size of the header in bytes: a
	// listing that leaves Meta out (the SQLite store's SegmentRanges)
	// says so how big it is.
	MetaSize int
}

// Segment is a sealed segment with its columns by field name.
type Segment struct {
	SegmentInfo
	Columns map[string][]byte
}

// CheckSegment checks the argument of PutSegment.
func CheckSegment(s Segment) error {
	if s.Rows <= 0 || s.First <= 0 || s.Last < s.First || len(s.Meta) == 0 {
		return vigil.Errorf(vigil.EINVALID, "segment %d-%d: %d rows, want rows and a range", s.First, s.Last, s.Rows)
	}
	return nil
}
