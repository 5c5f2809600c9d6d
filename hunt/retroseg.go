package hunt

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
)

// rowEvents rebuilds stored events from a segment's columns, as
// decodeEvent gives them from the row store (but Received, which no
// detector reads), for the rows the segment marks exact: a retro-hunt
// reads the small columns rather than every event's JSON. Each distinct
// value is converted once per segment.
type rowEvents struct {
	seg   *segment
	fixed [14]*colValues // by index in fixedFields
	other []*colValues   // the columns of Fields, by name
}

type colValues struct {
	name  string
	col   *column
	vals  []any        // per dictionary entry: the value as decodeEvent gives it
	strs  []string     // per dictionary entry: the text (fixed members)
	addrs []netip.Addr // per dictionary entry, for source.ip and destination.ip
}

// Indexes of fixedFields.
const (
	fxID = iota
	fxDevice
	fxSource
	fxProvenance
	fxKind
	fxCategory
	fxAction
	fxOutcome
	fxSeverity
	fxTransport
	fxSrcIP
	fxSrcPort
	fxDstIP
	fxDstPort
)

func newRowEvents(seg *segment) *rowEvents {
	re := &rowEvents{seg: seg}
	for _, name := range seg.names {
		col := seg.cols[name]
		cv := &colValues{name: name, col: col}
		fx := -1
		for i, f := range fixedFields {
			if f == name {
				fx = i
			}
		}
		if fx >= 0 {
			cv.strs = make([]string, len(col.dict))
			for i := 1; i < len(col.dict); i++ {
				if fx == fxID {
					// One per row: pointing into the column; an event
					// of its own gets a copy (rowEvents.own).
					cv.strs[i] = col.dict[i]
				} else {
					cv.strs[i] = strings.Clone(col.dict[i])
				}
			}
			if fx == fxSrcIP || fx == fxDstIP {
				cv.addrs = make([]netip.Addr, len(col.dict))
				for i := 1; i < len(col.dict); i++ {
					cv.addrs[i], _ = netip.ParseAddr(col.dict[i])
				}
			}
			re.fixed[fx] = cv
			continue
		}
		cv.vals = make([]any, len(col.dict))
		for i := 1; i < len(col.dict); i++ {
			cv.vals[i] = rowValue(col.kinds[i], col.dict[i])
		}
		re.other = append(re.other, cv)
	}
	return re
}

// rowValue is a field value of kind and text as decodeEvent (with
// store.NormalizeFields) gives it.
func rowValue(kind byte, text string) any {
	switch kind {
	case kNumber:
		f, _ := strconv.ParseFloat(text, 64)
		return f
	case kBool:
		return text == "true"
	case kList:
		var l []string
		if json.Unmarshal([]byte(text), &l) != nil || l == nil {
			l = []string{}
		}
		return l
	}
	return strings.Clone(text)
}

func (cv *colValues) str(i int) string {
	if cv == nil {
		return ""
	}
	return cv.strs[cv.col.ids[i]]
}

func (cv *colValues) num(i int) float64 {
	if cv == nil || cv.col.ids[i] == 0 {
		return 0
	}
	f, _ := strconv.ParseFloat(cv.strs[cv.col.ids[i]], 64)
	return f
}

// fill sets ev to row i, its Fields in fields (cleared first) and its
// Network in nw when it has one.
func (re *rowEvents) fill(ev *vigil.Event, i int, fields map[string]any, nw *vigil.Network) {
	f := &re.fixed
	*ev = vigil.Event{
		ID: f[fxID].str(i), Time: time.Unix(0, re.seg.times[i]).UTC(), DeviceID: f[fxDevice].str(i),
		Source: f[fxSource].str(i), Provenance: f[fxProvenance].str(i), Kind: f[fxKind].str(i),
		Category: f[fxCategory].str(i), Action: f[fxAction].str(i), Outcome: f[fxOutcome].str(i),
		Severity: vigil.Severity(f[fxSeverity].num(i)),
	}
	*nw = vigil.Network{Transport: f[fxTransport].str(i), SrcPort: uint16(f[fxSrcPort].num(i)), DstPort: uint16(f[fxDstPort].num(i))}
	if c := f[fxSrcIP]; c != nil {
		nw.SrcIP = c.addrs[c.col.ids[i]]
	}
	if c := f[fxDstIP]; c != nil {
		nw.DstIP = c.addrs[c.col.ids[i]]
	}
	if *nw != (vigil.Network{}) {
		ev.Network = nw
	}
	clear(fields)
	for _, cv := range re.other {
		if id := cv.col.ids[i]; id != 0 {
			fields[cv.name] = cv.vals[id]
		}
	}
	if len(fields) > 0 {
		ev.Fields = fields
	}
}

// event returns row i as a new event.
func (re *rowEvents) event(i int) *vigil.Event {
	n := 0
	for _, cv := range re.other {
		if cv.col.ids[i] != 0 {
			n++
		}
	}
	ev := new(vigil.Event)
	re.fill(ev, i, make(map[string]any, n), new(vigil.Network))
	ev.ID = strings.Clone(ev.ID)
	return ev
}

// own returns a copy of a rebuilt event that shares nothing with a
// segment's columns or with ev: the event's own.
func own(ev *vigil.Event) *vigil.Event {
	c := new(vigil.Event)
	*c = *ev
	c.ID = strings.Clone(ev.ID)
	if ev.Fields != nil {
		c.Fields = maps.Clone(ev.Fields)
	}
	if ev.Network != nil {
		nw := *ev.Network
		c.Network = &nw
	}
	return c
}

// errStopRows ends a read of the row store at a sequence number.
var errStopRows = errors.New("stop")

// maxInexact is the share of a segment's rows that may need their body
// from the row store (read one by one) before the whole segment is read
// as rows: one row in maxInexact (a test allows all).
var maxInexact = 8

// read sends the stored events up to sequence number total, in store
// order, as batches on out (taking them from free): sealed segments
// whose rows can be rebuilt from their columns as segment rows, skipping
// those wholly outside the time range [lo, hi); the others, and the
// events not sealed yet, as bodies from the row store.
func (r *Retro) read(ctx context.Context, total, lo, hi int64, free, out chan *bodyBatch) error {
	get := func() (*bodyBatch, error) {
		select {
		case b := <-free:
			b.reset()
			return b, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	send := func(b *bodyBatch) error {
		select {
		case out <- b:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	after := int64(0)
	// rows sends the row store's events after `after` up to upto.
	rows := func(upto int64) error {
		for after < upto {
			b, err := get()
			if err != nil {
				return err
			}
			n, err := r.Src.EventBodiesAfter(ctx, after, retroBatch, func(seq int64, body []byte) error {
				if seq > upto {
					return errStopRows
				}
				after = seq
				b.add(seq, body)
				return nil
			})
			if err != nil && !errors.Is(err, errStopRows) {
				return err
			}
			if err != nil || n < retroBatch {
				after = upto // nothing more stored up to there
			}
			b.after = after
			if err := send(b); err != nil {
				return err
			}
		}
		return nil
	}
	infos, err := r.Src.Segments(ctx, time.Time{}, time.Time{})
	if err != nil {
		return err
	}
	slices.Reverse(infos) // oldest first
	for _, si := range infos {
		if si.Last > total || si.First <= after {
			break // sealed after the job started: read as rows
		}
		if err := rows(si.First - 1); err != nil {
			return err
		}
		if si.MaxTime.UnixNano() < lo || si.MinTime.UnixNano() >= hi {
			// Wholly outside the time range: not read.
			b, err := get()
			if err != nil {
				return err
			}
			after, b.after = si.Last, si.Last
			if err := send(b); err != nil {
				return err
			}
			continue
		}
		_, _, inexact, exact, err := decodeMetaRows(si.Meta)
		if err != nil || !exact || len(inexact) > si.Rows/maxInexact {
			// A segment sealed before rows were marked, or with many
			// rows the columns do not rebuild: read as rows.
			if err := rows(si.Last); err != nil {
				return err
			}
			continue
		}
		cols, err := r.Src.SegmentColumns(ctx, si.First, nil)
		if err != nil {
			return err
		}
		seg, err := decodeSegment(si, cols)
		if err != nil {
			return err
		}
		if err := r.sendSegment(ctx, newRowEvents(seg), get, send); err != nil {
			return err
		}
		after = si.Last
	}
	return rows(total)
}

// sendSegment sends a segment's rows in batches, with the bodies of its
// inexact rows read from the row store.
func (r *Retro) sendSegment(ctx context.Context, re *rowEvents, get func() (*bodyBatch, error), send func(*bodyBatch) error) error {
	seg := re.seg
	next := 0 // of seg.inexact
	for from := 0; from < len(seg.seqs); from += retroBatch {
		to := min(from+retroBatch, len(seg.seqs))
		b, err := get()
		if err != nil {
			return err
		}
		b.re, b.lo = re, from
		b.seqs = append(b.seqs, seg.seqs[from:to]...)
		for row := from; row < to; row++ {
			if next < len(seg.inexact) && seg.inexact[next] == row {
				next++
				k := -1
				seq := seg.seqs[row]
				if _, err := r.Src.EventBodiesAfter(ctx, seq-1, 1, func(s int64, body []byte) error {
					if s == seq {
						k = b.addBody(body)
					}
					return nil
				}); err != nil {
					return err
				}
				// k < 0: no longer stored (retention), rebuilt as the
				// columns have it.
				b.bodyIdx = append(b.bodyIdx, k)
				continue
			}
			b.bodyIdx = append(b.bodyIdx, -1)
		}
		b.after = seg.seqs[to-1]
		if err := send(b); err != nil {
			return err
		}
	}
	return nil
}
