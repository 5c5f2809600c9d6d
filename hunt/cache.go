package hunt

import (
	"container/list"
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-iot/vigil/store"
)

// Cache keeps the decoded columns of sealed segments between runs, so
// that hunts over the same fields (device.id, event.kind, _time, ...) do
// not read and decode them from the store again. A sealed segment never
// changes but when it is sealed again by a newer version (Upgrade), which
// makes its header longer (version 2 adds the rows not rebuilt exactly):
// entries are keyed by the segment's range and header size, so a
// resealed segment is read afresh; entries of segments
// dropped by retention are never asked for again and age out. The least
// recently used entries are dropped beyond the byte budget.
//
// A Cache belongs to one store: the same sequence numbers in another
// store are other events. It is safe for concurrent use; nil caches
// nothing.
type Cache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	lru   list.List // of *cacheEntry, most recently used first
	byKey map[cacheKey]*list.Element

	hits, misses int64

	// now tells the time of the cached tail (default time.Now).
	now    func() time.Time
	tailMu sync.Mutex
	tail   *tailState
}

// TailTTL is how long the unsealed tail read for one run is reused by the
// next runs (each reads only the events stored after it) before it is
// read again whole. Like the sealer, which seals only events stored at
// least one round before, this lets a store whose transactions commit
// out of sequence order (PostgreSQL) show a late event within TailTTL.
const TailTTL = 10 * time.Second

// maxTailRows bounds the tail a Cache keeps: a tail longer than that
// (the sealer behind) is read for each run.
const maxTailRows = 4 * tailBatch

type tailState struct {
	after int64 // the sealed seq the tail starts after
	last  int64 // the last seq read
	since time.Time
	b     *builder
	p     fastjson.Parser
	snap  *segment
}

// DefaultCacheBytes is a Cache's budget when NewCache is given 0.
const DefaultCacheBytes = 512 << 20

type cacheKey struct {
	first, last int64
	metaSize    int    // a segment sealed again has another header
	field       string // "" for the header: seqs, times, inexact rows
}

// rangeLister is what a store may offer to list segments without their
// headers (Meta nil, MetaSize set) and read one header: with the headers
// kept in a Cache, a hunt then reads only the headers it has not kept
// (the SQLite store).
type rangeLister interface {
	SegmentRanges(ctx context.Context, since, until time.Time) ([]store.SegmentInfo, error)
	SegmentMeta(ctx context.Context, first int64) ([]byte, error)
}

// listSegments lists the segments of [since, until), without their
// headers when the store can and there is a cache to keep them.
func listSegments(ctx context.Context, src store.Analytics, since, until time.Time, c *Cache) ([]store.SegmentInfo, error) {
	if rl, ok := src.(rangeLister); ok && c != nil {
		return rl.SegmentRanges(ctx, since, until)
	}
	return src.Segments(ctx, since, until)
}

type cacheEntry struct {
	key  cacheKey
	size int64
	col  *column // nil: the segment has no such field
	meta *segment
}

// NewCache returns a cache of at most maxBytes (0: DefaultCacheBytes)
// of decoded columns.
func NewCache(maxBytes int64) *Cache {
	return NewCacheAt(maxBytes, time.Now)
}

// NewCacheAt is NewCache with the clock that times the cached tail.
func NewCacheAt(maxBytes int64, now func() time.Time) *Cache {
	if maxBytes <= 0 {
		maxBytes = DefaultCacheBytes
	}
	return &Cache{max: maxBytes, byKey: map[cacheKey]*list.Element{}, now: now}
}

// readTail returns the events stored after the sealed seq as segments,
// newest last: read whole without a cache, else reusing the tail read
// before when it starts at the same sealed seq and is younger than
// TailTTL, reading only the events stored since.
func readTail(ctx context.Context, src store.Analytics, sealed int64, c *Cache) ([]*segment, error) {
	if c == nil {
		return readTailWhole(ctx, src, sealed)
	}
	c.tailMu.Lock()
	defer c.tailMu.Unlock()
	now := c.now()
	t := c.tail
	if t == nil || t.after != sealed || now.Sub(t.since) >= TailTTL || now.Before(t.since) {
		t = &tailState{after: sealed, last: sealed, since: now, b: newBuilder()}
	}
	c.tail = nil // until it is whole again
	added := false
	for {
		var berr error
		n, err := src.EventBodiesAfter(ctx, t.last, tailBatch, func(seq int64, body []byte) error {
			t.last = seq
			if berr == nil {
				berr = t.b.addJSON(&t.p, seq, body)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if berr != nil {
			return nil, berr
		}
		added = added || n > 0
		if t.b.rows > maxTailRows {
			return readTailWhole(ctx, src, sealed)
		}
		if n < tailBatch {
			break
		}
	}
	if added || t.snap == nil {
		t.snap = t.b.snapshot()
	}
	c.tail = t
	if len(t.snap.seqs) == 0 {
		return nil, nil
	}
	return []*segment{t.snap}, nil
}

// readTailWhole reads the events after sealed in segments of tailBatch.
func readTailWhole(ctx context.Context, src store.Analytics, sealed int64) ([]*segment, error) {
	var (
		tail []*segment
		p    fastjson.Parser
	)
	for after := sealed; ; {
		b := newBuilder()
		var berr error
		n, err := src.EventBodiesAfter(ctx, after, tailBatch, func(seq int64, body []byte) error {
			after = seq
			if berr == nil {
				berr = b.addJSON(&p, seq, body)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if berr != nil {
			return nil, berr
		}
		if n == 0 {
			break
		}
		tail = append(tail, b.finish())
		if n < tailBatch {
			break
		}
	}
	return tail, nil
}

// snapshot returns the rows added so far as a segment that later adds do
// not change (they only append past its lengths).
func (b *builder) snapshot() *segment {
	s := &segment{seqs: b.seg.seqs[:len(b.seg.seqs):len(b.seg.seqs)], times: b.seg.times[:len(b.seg.times):len(b.seg.times)],
		inexact: b.seg.inexact[:len(b.seg.inexact):len(b.seg.inexact)], exact: b.seg.exact, cols: make(map[string]*column, len(b.seg.cols))}
	for name, col := range b.seg.cols {
		cp := *col
		cp.ids = cp.ids[:b.rows:b.rows]
		cp.dict = cp.dict[:len(cp.dict):len(cp.dict)]
		cp.kinds = cp.kinds[:len(cp.kinds):len(cp.kinds)]
		s.cols[name] = &cp
		s.names = append(s.names, name)
	}
	sort.Strings(s.names)
	return s
}

// Stats returns how many lookups found their column and how many did
// not, and the bytes held.
func (c *Cache) Stats() (hits, misses, bytes int64) {
	if c == nil {
		return 0, 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses, c.size
}

func (c *Cache) get(k cacheKey) (*cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[k]
	if !ok {
		c.misses++
		return nil, false
	}
	c.hits++
	c.lru.MoveToFront(el)
	return el.Value.(*cacheEntry), true
}

func (c *Cache) put(e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.size > c.max/4 {
		return
	}
	if el, ok := c.byKey[e.key]; ok {
		c.size -= el.Value.(*cacheEntry).size
		c.lru.Remove(el)
	}
	c.byKey[e.key] = c.lru.PushFront(e)
	c.size += e.size
	for c.size > c.max {
		el := c.lru.Back()
		old := el.Value.(*cacheEntry)
		c.lru.Remove(el)
		delete(c.byKey, old.key)
		c.size -= old.size
	}
}

func metaSize(info store.SegmentInfo) int {
	if info.Meta != nil {
		return len(info.Meta)
	}
	return info.MetaSize
}

// readSegment reads the named columns of a sealed segment (nil: every
// column, which bypasses the cache), through the cache when there is one.
func readSegment(ctx context.Context, src store.Analytics, info store.SegmentInfo, fields []string, c *Cache) (*segment, error) {
	if info.Meta == nil && (c == nil || fields == nil) {
		if rl, ok := src.(rangeLister); ok {
			meta, err := rl.SegmentMeta(ctx, info.First)
			if err != nil {
				return nil, err
			}
			info.Meta = meta
		}
	}
	if c == nil || fields == nil {
		cols, err := src.SegmentColumns(ctx, info.First, fields)
		if err != nil {
			return nil, err
		}
		return decodeSegment(info, cols)
	}
	ver := metaSize(info)
	mk := cacheKey{first: info.First, last: info.Last, metaSize: ver}
	var meta *segment
	if e, ok := c.get(mk); ok {
		meta = e.meta
	} else {
		if info.Meta == nil {
			rl, ok := src.(rangeLister)
			if !ok {
				return nil, fmt.Errorf("cannot read segment %d: no header", info.First)
			}
			b, err := rl.SegmentMeta(ctx, info.First)
			if err != nil {
				return nil, err
			}
			info.Meta = b
		}
		m, err := decodeSegment(info, nil)
		if err != nil {
			return nil, err
		}
		meta = m
		c.put(&cacheEntry{key: mk, meta: m, size: int64(16*len(m.seqs) + 8*len(m.inexact) + 64)})
	}
	s := &segment{seqs: meta.seqs, times: meta.times, inexact: meta.inexact, exact: meta.exact, cols: make(map[string]*column, len(fields))}
	var missing []string
	for _, f := range fields {
		if e, ok := c.get(cacheKey{first: info.First, last: info.Last, metaSize: ver, field: f}); ok {
			if e.col != nil {
				s.cols[f] = e.col
				s.names = append(s.names, f)
			}
			continue
		}
		missing = append(missing, f)
	}
	if len(missing) > 0 {
		cols, err := src.SegmentColumns(ctx, info.First, missing)
		if err != nil {
			return nil, err
		}
		for _, f := range missing {
			e := &cacheEntry{key: cacheKey{first: info.First, last: info.Last, metaSize: ver, field: f}, size: int64(64 + len(f))}
			if b, ok := cols[f]; ok {
				col, err := decodeColumn(b, len(meta.seqs))
				if err != nil {
					return nil, err
				}
				e.col = col
				e.size += int64(len(b) + 4*len(col.ids) + 17*len(col.dict))
				s.cols[f] = col
				s.names = append(s.names, f)
			}
			c.put(e)
		}
	}
	sort.Strings(s.names)
	return s, nil
}
